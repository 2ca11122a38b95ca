package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smith/agent/config"
	"smith/heartbeat/api"
	"smith/heartbeat/consoletest"
	"smith/heartbeat/server"
	"smith/heartbeat/store"
	"smith/internal/harness"
)

// A real smith-agent heartbeats to the real console (in process), runs the
// tasks it hands out and ships their results to Kafka as detection_module
// events; the console then holds a result per kind.
func TestAgentWithConsoleShipsTaskResults(t *testing.T) {
	dir := t.TempDir()
	intervals := map[api.TaskKind]time.Duration{}
	for _, k := range api.TaskKinds {
		// file_integrity reads every package's files: minutes on a
		// full host (agent/inventory tests it on a tree).
		if k != api.TaskFileIntegrity {
			intervals[k] = time.Hour
		}
	}
	reg, err := store.Open(filepath.Join(dir, "console.db"), store.Policy{OfflineAfter: time.Minute, TaskIntervals: intervals})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	srv, err := server.New(server.Config{FleetToken: consoletest.FleetToken, ConsolePassword: consoletest.ConsolePassword,
		Registry: reg, Interval: time.Second, Log: consoletest.QuietLog()})
	if err != nil {
		t.Fatal(err)
	}
	console := httptest.NewServer(srv)
	defer console.Close()
	broker, err := harness.NewBroker(harness.BrokerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()

	r := newRing(t)
	cfg := testConfig(dir, r)
	cfg.Agent.Hostname = "console-test-host"
	cfg.Log.Level = "debug"
	cfg.Kafka.Brokers = []string{broker.ListenAddrs()[0]}
	cfg.Heartbeat.URL = console.URL
	cfg.Heartbeat.Token = consoletest.FleetToken
	cfg.Heartbeat.Interval = config.Duration(time.Second)
	a := startAgent(t, dir, cfg)

	deadline := time.Now().Add(60 * time.Second)
	var host api.Host
	for {
		var ok bool
		host, ok = reg.Lookup("console-test-host", time.Now())
		if ok && len(host.Tasks) == len(intervals) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("console has %d task results for the host (registered: %v): %+v", len(host.Tasks), ok, host.Tasks)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !host.Online || host.AgentVersion == "" || host.Kernel == "" {
		t.Errorf("host view: %+v", host)
	}
	items := map[string]int{}
	for _, res := range host.Tasks {
		if res.Error != "" && res.Kind != api.TaskPackages {
			t.Errorf("task %s failed: %s", res.Kind, res.Error)
		}
		items[string(res.Kind)] = res.Items
	}

	// Every item of every successful task is an event in Kafka.
	cl, err := harness.NewTopicReader("", broker.ListenAddrs()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	want := 0
	for _, n := range items {
		want += n
	}
	got := map[string]int{}
	seqs := map[float64]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	total := 0
	for total < want {
		recs, err := cl.Poll(ctx)
		if err != nil {
			logText, _ := os.ReadFile(filepath.Join(dir, "agent.log"))
			t.Fatalf("%d of %d task events in Kafka: %v\n%s", total, want, got, logText)
		}
		for _, rec := range recs {
			var ev map[string]any
			if err := json.Unmarshal(rec.Value, &ev); err != nil {
				t.Fatalf("invalid JSON: %s", rec.Value)
			}
			if ev["data_type"] != "detection_module" || ev["hostname"] != "console-test-host" {
				continue
			}
			kind, _ := ev["task_kind"].(string)
			got[kind]++
			total++
			seqs[ev["seq"].(float64)] = true
			if kind == "users" && ev["name"] == "root" && ev["uid"] != "0" {
				t.Errorf("root user event: %v", ev)
			}
		}
	}
	for kind, n := range items {
		if got[kind] != n {
			t.Errorf("%s: %d events in Kafka, the console was told %d", kind, got[kind], n)
		}
	}
	if len(seqs) != total {
		t.Errorf("%d task events share sequence numbers (%d distinct)", total, len(seqs))
	}
	if items["users"] == 0 || !strings.Contains(host.Tasks[0].Summary+host.Tasks[1].Summary+host.Tasks[2].Summary+host.Tasks[3].Summary+host.Tasks[4].Summary+host.Tasks[5].Summary, "") {
		t.Errorf("no users collected: %v", items)
	}
	stopAgent(t, a)
}
