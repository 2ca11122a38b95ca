package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
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
	"github.com/twmb/franz-go/pkg/kgo"

	"smith/agent/decode"
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
	path := filepath.Join(t.TempDir(), "ring")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fr, err := shm.CreateFileRing(f, 2<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fr.Close() })
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

type agentProc struct {
	cmd  *exec.Cmd
	done chan error
}

func writeConfig(t *testing.T, dir, extra string) string {
	t.Helper()
	p := filepath.Join(dir, "agent.toml")
	if err := os.WriteFile(p, []byte(extra), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func startAgent(t *testing.T, cfg string) *agentProc {
	t.Helper()
	cmd := exec.Command(agentBin, "-config", cfg)
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a := &agentProc{cmd: cmd, done: make(chan error, 1)}
	go func() { a.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-a.done
	})
	return a
}

func (a *agentProc) stop(t *testing.T) {
	t.Helper()
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-a.done:
		if err != nil {
			t.Fatalf("agent exit after SIGTERM: %v", err)
		}
		a.done <- nil
	case <-time.After(30 * time.Second):
		t.Fatal("agent did not stop on SIGTERM")
	}
}

func (a *agentProc) kill(t *testing.T) {
	t.Helper()
	a.cmd.Process.Kill()
	err := <-a.done
	a.done <- err
}

// consumed reads every record of the topic from the start until want
// distinct tokens arrived, and returns seq -> token for every event and
// the number of records (duplicates included).
func consumed(t *testing.T, addr string, want int, timeout time.Duration) (map[int]int, int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("smith"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
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
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("only %d of %d events arrived in Kafka within %s", len(tokens), want, timeout)
		}
		fs.EachRecord(func(r *kgo.Record) {
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
		})
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

func kafkaConfig(r *ring, dir string, port int, spool string) string {
	return fmt.Sprintf(`
[agent]
state_dir = %q
pid_file = ""
hostname = "test-host"
[source]
kind = "file"
file = %q
poll_interval = "2ms"
[log]
file = %q
level = "debug"
[kafka]
brokers = ["127.0.0.1:%d"]
retry_interval = "100ms"
timeout = "2s"
[spool]
%s
[metrics]
listen = ""
`, filepath.Join(dir, "state"), r.path, filepath.Join(dir, "agent.log"), port, spool)
}

func TestKafkaOutagesAndKillLoseNothing(t *testing.T) {
	dir := t.TempDir()
	r := newRing(t)
	port := freePort(t)
	cfg := writeConfig(t, dir, kafkaConfig(r, dir, port, `max_bytes = "64MiB"`))
	data := filepath.Join(dir, "kafka-data")
	newBroker := func() *kfake.Cluster {
		c, err := kfake.NewCluster(kfake.Ports(port), kfake.SeedTopics(1, "smith"), kfake.DataDir(data))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	// Broker absent at start: events wait in the spool.
	a := startAgent(t, cfg)
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
	a.kill(t)
	r.exec(t, 300)
	a = startAgent(t, cfg)
	r.exec(t, 100)
	time.Sleep(300 * time.Millisecond)
	broker = newBroker()
	defer broker.Close()
	r.exec(t, 100)
	bySeq, records := consumed(t, addr, 1800, 90*time.Second)
	checkNoGaps(t, bySeq, 1800)
	t.Logf("1800 events, %d records in Kafka (%d duplicates from at-least-once delivery)", records, records-1800)
	a.stop(t)
}

// waitForSpool waits until the spool holds something: the agent noticed
// the broker is gone.
func waitForSpool(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
		for _, s := range segs {
			if st, err := os.Stat(s); err == nil && st.Size() > 0 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("nothing reached the spool while the broker was down")
}

func metric(t *testing.T, addr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1 // not listening yet
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	return -1
}

func TestSpoolTooSmallCountsDrops(t *testing.T) {
	dir := t.TempDir()
	r := newRing(t)
	port := freePort(t)
	mport := freePort(t)
	cfg := kafkaConfig(r, dir, port, `max_bytes = "16KiB"
segment_bytes = "4KiB"`)
	cfg = strings.Replace(cfg, `listen = ""`, fmt.Sprintf(`listen = "127.0.0.1:%d"`, mport), 1)
	a := startAgent(t, writeConfig(t, dir, cfg))
	maddr := fmt.Sprintf("127.0.0.1:%d", mport)
	const n = 400
	r.exec(t, n)
	var spooled, dropped float64
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		spooled = metric(t, maddr, "smith_events_spooled_total")
		dropped = metric(t, maddr, `smith_events_dropped_total{reason="spool_full"}`)
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
	broker, err := kfake.NewCluster(kfake.Ports(port), kfake.SeedTopics(1, "smith"))
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	_, records := consumed(t, fmt.Sprintf("127.0.0.1:%d", port), int(spooled), 60*time.Second)
	if records != int(spooled) {
		t.Fatalf("%d records in Kafka, %v spooled", records, spooled)
	}
	a.stop(t)
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
	cfg := writeConfig(t, dir, fmt.Sprintf(`[agent]
pid_file = ""
state_dir = %q
[source]
kind = "file"
file = %q
poll_interval = "5ms"
[output]
sinks = ["file"]
[output.file]
path = %q
[metrics]
listen = ""
[log]
file = %q
`, dir, r.path, events, logf))
	a := startAgent(t, cfg)
	r.exec(t, 1)
	waitFile(t, events, "token-0")
	waitFile(t, logf, "first sequence number")
	os.Rename(events, events+".1")
	os.Rename(logf, logf+".1")
	a.cmd.Process.Signal(syscall.SIGHUP)
	waitFile(t, logf, "SIGHUP: log and output files reopened")
	r.exec(t, 1)
	waitFile(t, events, "token-1")
	a.stop(t)
	if raw, _ := os.ReadFile(events + ".1"); strings.Contains(string(raw), "token-1") {
		t.Fatalf("event after SIGHUP went to the moved file: %q", raw)
	}
}
