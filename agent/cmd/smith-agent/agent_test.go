package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"smith/agent/config"
	"smith/agent/decode"
	"smith/agent/metrics"
	"smith/internal/harness"
	"smith/internal/testfs"
	"smith/shm"
)

// agentBin is the real smith-agent, built once for these tests.
var agentBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "smith-agent-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	agentBin = filepath.Join(dir, "smith-agent")
	// go test puts its own go command first on PATH.
	gobin, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintln(os.Stderr, "go command not found:", err)
		os.Exit(1)
	}
	cmd := exec.Command(gobin, "build", "-o", agentBin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build smith-agent: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// ring is a kernel-free ring file the test fills and the agent reads.
type ring struct {
	path string
	fr   *shm.FileRing
	prod *shm.Producer
	next int // token of the next event
}

func newRing(t *testing.T) *ring {
	t.Helper()
	path, fr := testfs.Ring(t, 2<<20)
	return &ring{path: path, fr: fr, prod: shm.NewProducer(fr.Ring)}
}

// exec writes n exec records whose argv carries a unique token; it waits
// for room when the agent is behind (a test must not overflow the ring).
func (r *ring) exec(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		ev := &decode.Event{Type: decode.TypeExecve, TimeNs: uint64(time.Now().UnixNano()), Pid: 4242, Tgid: 4242, Ppid: 1, UID: 0, Comm: []byte("sh")}
		ev.Fields[decode.FieldExe] = decode.Field{Present: true, Value: []byte("/bin/sh")}
		ev.Fields[decode.FieldArgv] = decode.Field{Present: true, Value: fmt.Appendf(nil, "sh\x00-c\x00token-%d\x00", r.next)}
		rec := decode.AppendEvent(nil, ev)
		n, _, _ := decode.RecordLen(rec)
		deadline := time.Now().Add(20 * time.Second)
		for {
			if ok, _ := r.prod.Write(rec[:n]); ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("ring stayed full: the agent is not reading")
			}
			time.Sleep(5 * time.Millisecond)
		}
		r.next++
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	port, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// testConfig is the tests' agent configuration: state and log in dir,
// reading the ring r.
func testConfig(dir string, r *ring) config.Config {
	c := harness.AgentConfig(dir)
	c.Source.Kind, c.Source.File = "file", r.path
	return c
}

// startAgent writes cfg to dir/agent.toml and starts the agent on it,
// killed at the test's end.
func startAgent(t *testing.T, dir string, cfg config.Config) *harness.Agent {
	t.Helper()
	a, err := harness.StartAgent(agentBin, filepath.Join(dir, "agent.toml"), cfg, os.Stderr, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Kill)
	return a
}

// stopAgent ends the agent with SIGTERM: it must exit cleanly.
func stopAgent(t *testing.T, a *harness.Agent) {
	t.Helper()
	if err := a.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// consumed reads every record of the topic from the start until want
// distinct tokens arrived, and returns seq -> token for every event and
// the number of records (duplicates included).
func consumed(t *testing.T, addr string, want int, timeout time.Duration) (map[int]int, int) {
	t.Helper()
	cl, err := harness.NewTopicReader("", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	re := regexp.MustCompile(`^token-(\d+)$`)
	bySeq := map[int]int{}
	tokens := map[int]bool{}
	records := 0
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for len(tokens) < want {
		recs, err := cl.Poll(ctx)
		if err != nil {
			t.Fatalf("only %d of %d events arrived in Kafka within %s", len(tokens), want, timeout)
		}
		for _, r := range recs {
			records++
			var ev struct {
				DataType string   `json:"data_type"`
				Seq      int      `json:"seq"`
				Hostname string   `json:"hostname"`
				Args     []string `json:"args"`
				Exe      string   `json:"exe"`
			}
			if err := json.Unmarshal(r.Value, &ev); err != nil {
				t.Fatalf("invalid JSON in Kafka: %v: %s", err, r.Value)
			}
			if string(r.Key) != ev.Hostname || ev.DataType != "59" || ev.Exe != "/bin/sh" || len(ev.Args) != 3 {
				t.Fatalf("unexpected event (key %q): %s", r.Key, r.Value)
			}
			m := re.FindStringSubmatch(ev.Args[2])
			if m == nil {
				t.Fatalf("event without token: %s", r.Value)
			}
			tok, _ := strconv.Atoi(m[1])
			if prev, ok := bySeq[ev.Seq]; ok && prev != tok {
				t.Fatalf("seq %d used for token %d and token %d", ev.Seq, prev, tok)
			}
			bySeq[ev.Seq] = tok
			tokens[tok] = true
		}
	}
	return bySeq, records
}

func checkNoGaps(t *testing.T, bySeq map[int]int, n int) {
	t.Helper()
	for s := 1; s <= n; s++ {
		if _, ok := bySeq[s]; !ok {
			t.Fatalf("sequence number %d missing (%d distinct numbers for %d events)", s, len(bySeq), n)
		}
	}
	if len(bySeq) != n {
		t.Fatalf("%d distinct sequence numbers for %d events", len(bySeq), n)
	}
}

// kafkaConfig: the agent ships to a broker on port, spooling with the
// given bounds.
func kafkaConfig(r *ring, dir string, port int, spool config.Spool) config.Config {
	c := testConfig(dir, r)
	c.Agent.Hostname = "test-host"
	c.Source.PollInterval = config.Duration(2 * time.Millisecond)
	c.Log.Level = "debug"
	c.Kafka.Brokers = []string{fmt.Sprintf("127.0.0.1:%d", port)}
	c.Kafka.RetryInterval = config.Duration(100 * time.Millisecond)
	c.Kafka.Timeout = config.Duration(2 * time.Second)
	c.Spool = spool
	return c
}

func TestKafkaOutagesAndKillLoseNothing(t *testing.T) {
	dir := t.TempDir()
	r := newRing(t)
	port := freePort(t)
	spool := config.Default().Spool
	spool.MaxBytes = 64 << 20
	cfg := kafkaConfig(r, dir, port, spool)
	data := filepath.Join(dir, "kafka-data")
	newBroker := func() *kfake.Cluster {
		c, err := harness.NewBroker(harness.BrokerOptions{Port: port, DataDir: data})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	// Broker absent at start: events wait in the spool.
	a := startAgent(t, dir, cfg)
	r.exec(t, 300)
	time.Sleep(300 * time.Millisecond)
	broker := newBroker()
	r.exec(t, 300)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	consumed(t, addr, 600, 60*time.Second)

	// Broker stopped mid-stream and restarted on the same port while the
	// agent runs.
	broker.Close()
	r.exec(t, 200)
	waitForSpool(t, filepath.Join(dir, "state", "spool"))
	broker = newBroker()
	r.exec(t, 200)
	consumed(t, addr, 1000, 60*time.Second)

	// Stopped again, agent killed during the outage, events written while
	// it is dead, agent and broker back.
	broker.Close()
	r.exec(t, 300)
	waitForSpool(t, filepath.Join(dir, "state", "spool"))
	a.Kill()
	r.exec(t, 300)
	a = startAgent(t, dir, cfg)
	r.exec(t, 100)
	time.Sleep(300 * time.Millisecond)
	broker = newBroker()
	defer broker.Close()
	r.exec(t, 100)
	bySeq, records := consumed(t, addr, 1800, 90*time.Second)
	checkNoGaps(t, bySeq, 1800)
	t.Logf("1800 events, %d records in Kafka (%d duplicates from at-least-once delivery)", records, records-1800)
	stopAgent(t, a)
}

// waitForSpool waits until the spool holds something: the agent noticed
// the broker is gone.
func waitForSpool(t *testing.T, dir string) {
	t.Helper()
	harness.WaitFor(t, 30*time.Second, "something in the spool while the broker is down", func() bool {
		segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
		for _, s := range segs {
			if st, err := os.Stat(s); err == nil && st.Size() > 0 {
				return true
			}
		}
		return false
	})
}

func TestSpoolTooSmallCountsDrops(t *testing.T) {
	dir := t.TempDir()
	r := newRing(t)
	port := freePort(t)
	mport := freePort(t)
	cfg := kafkaConfig(r, dir, port, config.Spool{MaxBytes: 16 << 10, SegmentBytes: 4 << 10})
	cfg.Metrics.Listen = fmt.Sprintf("127.0.0.1:%d", mport)
	a := startAgent(t, dir, cfg)
	const n = 400
	r.exec(t, n)
	var spooled, dropped float64
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		// -1: not listening yet, or the series not served.
		spooled, dropped = -1, -1
		if m, err := a.Scrape(context.Background()); err == nil {
			if v, ok := m.Value(metrics.NameSpooled); ok {
				spooled = v
			}
			if v, ok := m.Dropped(metrics.DropSpoolFull.String()); ok {
				dropped = v
			}
		}
		if spooled+dropped == n {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if spooled+dropped != n || dropped == 0 || spooled == 0 {
		t.Fatalf("spooled %v + dropped %v, want %d with some of each", spooled, dropped, n)
	}
	logText, _ := os.ReadFile(filepath.Join(dir, "agent.log"))
	if !strings.Contains(string(logText), "spool full") {
		t.Fatalf("no spool_full message in the log:\n%s", logText)
	}
	// What the spool kept arrives once Kafka is up.
	broker, err := harness.NewBroker(harness.BrokerOptions{Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	_, records := consumed(t, fmt.Sprintf("127.0.0.1:%d", port), int(spooled), 60*time.Second)
	if records != int(spooled) {
		t.Fatalf("%d records in Kafka, %v spooled", records, spooled)
	}
	stopAgent(t, a)
}

// waitFile waits until path holds a line containing want.
func waitFile(t *testing.T, path, want string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		if raw, _ := os.ReadFile(path); strings.Contains(string(raw), want) {
			return
		}
		if time.Now().After(deadline) {
			raw, _ := os.ReadFile(path)
			t.Fatalf("%s never held %q: %q", path, want, raw)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// SIGHUP opens the log and event files again, as logrotate expects.
func TestSIGHUPReopensLogAndEventFiles(t *testing.T) {
	r := newRing(t)
	dir := t.TempDir()
	events, logf := filepath.Join(dir, "events.json"), filepath.Join(dir, "agent.log")
	cfg := testConfig(dir, r)
	cfg.Agent.StateDir = dir
	cfg.Source.PollInterval = config.Duration(5 * time.Millisecond)
	cfg.Output.Sinks = []string{"file"}
	cfg.Output.File.Path = events
	cfg.Log.File = logf
	a := startAgent(t, dir, cfg)
	r.exec(t, 1)
	waitFile(t, events, "token-0")
	waitFile(t, logf, harness.ReadyLine)
	os.Rename(events, events+".1")
	os.Rename(logf, logf+".1")
	a.Cmd.Process.Signal(syscall.SIGHUP)
	waitFile(t, logf, "SIGHUP: log and output files reopened")
	r.exec(t, 1)
	waitFile(t, events, "token-1")
	stopAgent(t, a)
	if raw, _ := os.ReadFile(events + ".1"); strings.Contains(string(raw), "token-1") {
		t.Fatalf("event after SIGHUP went to the moved file: %q", raw)
	}
}
