package store

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"smith/heartbeat/api"
)

// t0 is the tests' starting time: the real time, so no test stands on a
// fixed date.
var t0 = time.Now().UTC().Truncate(time.Second)

func open(t *testing.T, path string) *Registry {
	t.Helper()
	r, err := Open(path, Policy{OfflineAfter: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestEventRateAcrossAgentRestart(t *testing.T) {
	r := open(t, filepath.Join(t.TempDir(), "hosts.db"))
	defer r.Close()
	hb := api.Heartbeat{HostID: "h", Hostname: "h", AgentUptimeSeconds: 100, Counters: api.Counters{EventsRead: 1000}}
	r.heartbeat(&hb, "", t0)

	hb.AgentUptimeSeconds, hb.Counters.EventsRead = 130, 1600
	r.heartbeat(&hb, "", t0.Add(30*time.Second))
	if h, _ := r.Lookup("h", t0); h.EventRate != 20 {
		t.Errorf("steady rate = %v, want 20", h.EventRate)
	}

	// Restarted agent: counters from zero, so the rate is over its uptime.
	hb.AgentUptimeSeconds, hb.Counters.EventsRead = 10, 50
	r.heartbeat(&hb, "", t0.Add(60*time.Second))
	if h, _ := r.Lookup("h", t0); h.EventRate != 5 {
		t.Errorf("rate after restart = %v, want 5", h.EventRate)
	}
}

func TestOnlyKnownTaskKindsAreKept(t *testing.T) {
	r := open(t, filepath.Join(t.TempDir(), "hosts.db"))
	defer r.Close()
	hb := api.Heartbeat{HostID: "h", Hostname: "h", TaskResults: []api.TaskResult{
		{Kind: api.TaskCrontabs, Items: 3}, {Kind: "made_up", Items: 9},
	}}
	r.heartbeat(&hb, "", t0)
	h, _ := r.Lookup("h", t0)
	if len(h.Tasks) != 1 || h.Tasks[0].Kind != api.TaskCrontabs {
		t.Errorf("tasks = %+v", h.Tasks)
	}
}

func TestSecondOpenFailsClearly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hosts.db")
	r := open(t, path)
	defer r.Close()
	_, err := Open(path, Policy{OfflineAfter: time.Minute})
	if err == nil || !strings.Contains(err.Error(), "another smith-console") {
		t.Fatalf("second open: %v", err)
	}
}

func TestFlushWritesOnlyChangedHostsAndReloads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hosts.db")
	r := open(t, path)
	for _, id := range []string{"a", "b"} {
		r.heartbeat(&api.Heartbeat{HostID: id, Hostname: id, Kernel: "k1"}, "", t0)
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := len(r.dirty); n != 0 {
		t.Errorf("%d hosts dirty after flush", n)
	}
	r.heartbeat(&api.Heartbeat{HostID: "a", Hostname: "a", Kernel: "k2"}, "", t0.Add(time.Second))
	if n := len(r.dirty); n != 1 {
		t.Errorf("%d hosts dirty after one heartbeat, want 1", n)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = open(t, path)
	defer r.Close()
	if c := r.Count(t0.Add(time.Second)); c.Total != 2 || c.Online != 2 {
		t.Errorf("reloaded counts = %+v", c)
	}
	if h, _ := r.Lookup("a", t0); h.Kernel != "k2" || !h.FirstSeen.Equal(t0) {
		t.Errorf("reloaded a = %+v", h)
	}
}

func TestOpenRefusesNoTimeout(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "x.db"), Policy{}); err == nil {
		t.Fatal("zero offline timeout accepted")
	}
}

func TestScheduleChangesAcrossStarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hosts.db")
	start := func(users time.Duration) map[string]string {
		r, err := Open(path, Policy{OfflineAfter: time.Minute, TaskIntervals: map[api.TaskKind]time.Duration{api.TaskUsers: users}})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		ch, err := r.ScheduleChanges()
		if err != nil {
			t.Fatal(err)
		}
		return ch
	}
	if ch := start(time.Hour); len(ch) != 0 {
		t.Errorf("first start: %v", ch)
	}
	if ch := start(time.Hour); len(ch) != 0 {
		t.Errorf("same schedule: %v", ch)
	}
	if ch := start(0); len(ch) != 1 || ch["users"] != "1h0m0s -> 0s" {
		t.Errorf("users disabled: %v", ch)
	}
}

// A routine heartbeat (only time and counters changed) writes the host's
// small Seen part, not its whole record; a restart restores both.
func TestRoutineHeartbeatWritesOnlyLastSeen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hosts.db")
	r := open(t, path)
	hb := api.Heartbeat{HostID: "a", Hostname: "a", Kernel: "k1", AgentUptimeSeconds: 10,
		TaskResults: []api.TaskResult{{Kind: api.TaskUsers, Summary: strings.Repeat("u", 900)}}}
	r.heartbeat(&hb, "10.0.0.1", t0)
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	stored := func() (record, seen []byte) {
		t.Helper()
		db := r.db.(*DB)
		db.db.View(func(tx *bolt.Tx) error {
			record = append([]byte(nil), tx.Bucket(hostsBucket).Get([]byte("a"))...)
			seen = append([]byte(nil), tx.Bucket(seenBucket).Get([]byte("a"))...)
			return nil
		})
		return record, seen
	}
	before, _ := stored()

	hb.TaskResults = nil
	hb.AgentUptimeSeconds, hb.Counters.EventsRead, hb.Seq = 40, 3000, 2
	r.heartbeat(&hb, "10.0.0.1", t0.Add(30*time.Second))
	if len(r.dirty) != 0 || len(r.touched) != 1 {
		t.Fatalf("routine heartbeat: %d dirty, %d touched", len(r.dirty), len(r.touched))
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	after, seen := stored()
	if string(after) != string(before) || len(seen) == 0 || len(seen) > len(before)/3 {
		t.Errorf("record rewritten (%v) or seen part of %d bytes for a record of %d", string(after) != string(before), len(seen), len(before))
	}
	// Another kernel is not routine: the whole record.
	hb.Kernel = "k2"
	r.heartbeat(&hb, "10.0.0.1", t0.Add(60*time.Second))
	if len(r.dirty) != 1 {
		t.Errorf("kernel change: %d dirty", len(r.dirty))
	}
	hb.Kernel = "k1"
	r.Flush()
	r.heartbeat(&hb, "10.0.0.1", t0.Add(90*time.Second))
	hb.Counters.EventsRead = 4000
	r.heartbeat(&hb, "10.0.0.1", t0.Add(120*time.Second))
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = open(t, path)
	defer r.Close()
	h, _ := r.Lookup("a", t0.Add(120*time.Second))
	if !h.LastSeen.Equal(t0.Add(120*time.Second)) || h.Counters.EventsRead != 4000 || h.Kernel != "k1" || len(h.Tasks) != 1 {
		t.Errorf("after restart: last seen %v, events %d, kernel %s, %d tasks", h.LastSeen, h.Counters.EventsRead, h.Kernel, len(h.Tasks))
	}
}
