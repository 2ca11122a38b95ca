//go:build vmtest

package vmtest

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"smith/agent/config"
	"smith/internal/harness"
	"smith/internal/kmodtest"
)

func TestMain(m *testing.M) {
	if os.Getenv("SMITH_VMTEST_CHILD") != "" {
		os.Exit(0) // the exec the scenario performs
	}
	os.Exit(kmodtest.RunLoaded(m))
}

type agent struct {
	*harness.Agent
	events string
	log    string
}

func startAgent(t *testing.T, dir, format string) *agent {
	t.Helper()
	return startAgentOn(t, dir, format, "device")
}

func startAgentOn(t *testing.T, dir, format, kind string) *agent {
	t.Helper()
	return startAgentConf(t, dir, format, kind, nil)
}

// startAgentConf starts the agent on the test's configuration, changed by
// edit (when not nil), and waits until it reads its source.
func startAgentConf(t *testing.T, dir, format, kind string, edit func(*config.Config)) *agent {
	t.Helper()
	bin, err := exec.LookPath("smith-agent")
	if err != nil {
		t.Fatal("smith-agent not on PATH:", err)
	}
	a := &agent{events: filepath.Join(dir, format+".json"), log: filepath.Join(dir, format+".log")}
	cfg := harness.AgentConfig(dir)
	cfg.Agent.Format = format
	cfg.Source.Kind = kind
	cfg.Log.File, cfg.Log.Level = a.log, "debug"
	cfg.Output.Sinks = []string{"file"}
	cfg.Output.File.Path = a.events
	if edit != nil {
		edit(&cfg)
	}
	if a.Agent, err = harness.StartAgent(bin, filepath.Join(dir, format+".toml"), cfg, nil, os.Stderr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Kill)
	if err := a.Ready(context.Background(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	return a
}

// stop ends the agent with SIGTERM and returns its events.
func (a *agent) stop(t *testing.T) []map[string]any {
	t.Helper()
	if err := a.Stop(60 * time.Second); err != nil {
		raw, _ := os.ReadFile(a.log)
		t.Fatalf("%v\n%s", err, raw)
	}
	f, err := os.Open(a.events)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var evs []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var v map[string]any
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("invalid JSON line from the agent: %v: %s", err, sc.Bytes())
		}
		evs = append(evs, v)
	}
	return evs
}

// scenario is what the test does and knows about itself.
type scenario struct {
	token    string
	args     []string
	childPid int
	port     int
	local    int
	self     string
	cwd      string
	host     string
	nodename string
}

func run(t *testing.T) *scenario {
	t.Helper()
	s := &scenario{token: fmt.Sprintf("token-%d", time.Now().UnixNano())}
	s.self, _ = os.Executable()
	s.cwd, _ = os.Getwd()
	s.host, _ = os.Hostname()
	var u unix.Utsname
	unix.Uname(&u)
	s.nodename = unix.ByteSliceToString(u.Nodename[:])
	// exec with quotes, backslash, newline, tab and a byte that is not
	// UTF-8.
	s.args = []string{s.self, "-test.run=^$", s.token, "a \"q\" \\b", "line\nnext\ttab", "bad\xffbyte"}
	cmd := exec.Command(s.self, s.args[1:]...)
	cmd.Args = s.args
	cmd.Env = append(os.Environ(), "SMITH_VMTEST_CHILD=1")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	s.childPid = cmd.Process.Pid

	// A blocking TCP connect to a local listener.  A signal (the Go
	// runtime preempts with SIGURG) may interrupt it: the kernel restarts
	// the call, and the module records the interrupted attempt too
	// (restarted, res -4) besides the one the caller saw.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s.port = ln.Addr().(*net.TCPAddr).Port
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, &unix.SockaddrInet4{Port: s.port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	s.local = sa.(*unix.SockaddrInet4).Port
	return s
}

// waitEvents waits until the agent has written the scenario's exec and
// connect events (SIGTERM stops reading at once: what is still in the ring
// then waits for the next start).
func (a *agent) waitEvents(t *testing.T, s *scenario) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		raw, _ := os.ReadFile(a.events)
		if strings.Contains(string(raw), s.token) && strings.Contains(string(raw), fmt.Sprintf(":%d", s.port)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the scenario's events did not reach %s within 60 s", a.events)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func expect(t *testing.T, ev map[string]any, path string, want any) {
	t.Helper()
	got := harness.Lookup(ev, path)
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("%s = %s, want %s", path, g, w)
	}
}

func find(t *testing.T, evs []map[string]any, what string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	for _, ev := range evs {
		if match(ev) {
			return ev
		}
	}
	t.Fatalf("no %s event among %d", what, len(evs))
	return nil
}

func TestAgentReadsTheModule(t *testing.T) {
	dir := t.TempDir()
	var lastSeq float64
	for _, format := range []string{"smith", "ecs"} {
		t.Run(format, func(t *testing.T) {
			a := startAgent(t, dir, format)
			s := run(t)
			a.waitEvents(t, s)
			evs := a.stop(t)
			pid, self := float64(s.childPid), float64(os.Getpid())
			// Every event has a number, increasing, and none comes from
			// the agent itself.
			seqPath := "seq"
			if format == "ecs" {
				seqPath = "smith.seq"
			}
			for _, ev := range evs {
				seq, _ := harness.Lookup(ev, seqPath).(float64)
				if seq <= lastSeq {
					t.Fatalf("seq %v after %v", seq, lastSeq)
				}
				lastSeq = seq
				if p := harness.Lookup(ev, "tgid"); format == "smith" && p == float64(a.Pid()) {
					t.Fatalf("the agent's own activity reported: %v", ev)
				}
			}
			wantB64 := base64.StdEncoding.EncodeToString([]byte(strings.Join(s.args, "\x00") + "\x00"))
			printable := append(append([]string{}, s.args[:5]...), "bad\ufffdbyte")
			if format == "smith" {
				ex := find(t, evs, "exec", func(ev map[string]any) bool { return ev["data_type"] == "59" && ev["pid"] == pid })
				for k, v := range map[string]any{
					"tgid": pid, "ppid": self, "uid": 0.0, "euid": 0.0, "gid": 0.0, "username": "root",
					"exe": s.self, "filename": s.self, "args": printable, "argv_b64": wantB64,
					"argv": strings.Join(printable, " "), "cwd": s.cwd, "res": 0.0,
					"hostname": s.host, "nodename": s.nodename, "comm": truncComm(filepath.Base(s.self)),
				} {
					expect(t, ex, k, v)
				}
				co := find(t, evs, "connect", func(ev map[string]any) bool {
					return ev["data_type"] == "42" && ev["dport"] == float64(s.port) && ev["restarted"] == nil
				})
				for k, v := range map[string]any{
					"tgid": self, "sa_family": 2.0, "protocol": "tcp", "dip": "127.0.0.1", "sip": "127.0.0.1",
					"sport": float64(s.local), "res": 0.0, "exe": s.self, "username": "root",
				} {
					expect(t, co, k, v)
				}
				return
			}
			ex := find(t, evs, "exec", func(ev map[string]any) bool {
				return harness.Lookup(ev, "event.action") == "execve" && harness.Lookup(ev, "process.thread.id") == pid
			})
			for k, v := range map[string]any{
				"process.pid": pid, "process.parent.pid": self, "process.executable": s.self,
				"process.args": printable, "process.args_count": float64(len(s.args)),
				"process.working_directory": s.cwd, "user.id": "0", "user.name": "root",
				"event.outcome": "success", "host.name": s.host, "smith.argv_b64": wantB64,
				"smith.nodename": s.nodename, "smith.filename": s.self, "smith.data_type": "59",
			} {
				expect(t, ex, k, v)
			}
			co := find(t, evs, "connect", func(ev map[string]any) bool {
				return harness.Lookup(ev, "event.action") == "connect" && harness.Lookup(ev, "destination.port") == float64(s.port) &&
					harness.Lookup(ev, "smith.restarted") == nil
			})
			for k, v := range map[string]any{
				"process.pid": self, "destination.ip": "127.0.0.1", "source.ip": "127.0.0.1",
				"source.port": float64(s.local), "network.transport": "tcp", "network.type": "ipv4",
				"event.outcome": "success", "smith.data_type": "42",
			} {
				expect(t, co, k, v)
			}
		})
	}
}

// The netlink transport: the module reloaded with send_type=1, the agent
// with source.kind = "netlink".
func TestAgentReadsNetlink(t *testing.T) {
	if err := kmodtest.Unload(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = kmodtest.Unload()
		if err := kmodtest.Load(); err != nil {
			t.Fatal(err)
		}
	}()
	if err := kmodtest.Load("send_type=1"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	a := startAgentOn(t, dir, "smith", "netlink")
	s := run(t)
	a.waitEvents(t, s)
	evs := a.stop(t)
	ex := find(t, evs, "exec", func(ev map[string]any) bool { return ev["data_type"] == "59" && ev["pid"] == float64(s.childPid) })
	printable := append(append([]string{}, s.args[:5]...), "bad\ufffdbyte")
	for k, v := range map[string]any{"ppid": float64(os.Getpid()), "exe": s.self, "args": printable, "username": "root", "res": 0.0} {
		expect(t, ex, k, v)
	}
	co := find(t, evs, "connect", func(ev map[string]any) bool { return ev["data_type"] == "42" && ev["dport"] == float64(s.port) })
	expect(t, co, "sport", float64(s.local))
	logText, _ := os.ReadFile(a.log)
	if !strings.Contains(string(logText), "reading netlink") {
		t.Errorf("agent log does not say netlink:\n%s", logText)
	}
}

// SIGKILL on the real module: the restarted agent reads again what the
// killed one had not delivered, with the same numbers; nothing is missing
// and no number means two events.
func TestAgentKilledAndRestarted(t *testing.T) {
	dir := t.TempDir()
	self, _ := os.Executable()
	execs := func(from, n int) {
		for i := from; i < from+n; i++ {
			cmd := exec.Command(self, "-test.run=^$", fmt.Sprintf("kill-token-%d", i))
			cmd.Env = append(os.Environ(), "SMITH_VMTEST_CHILD=1")
			if err := cmd.Run(); err != nil {
				t.Fatal(err)
			}
		}
	}
	a := startAgent(t, dir, "smith")
	execs(0, 40)
	a.Kill()
	execs(40, 20)
	a = startAgent(t, dir, "smith")
	execs(60, 10)
	deadline := time.Now().Add(60 * time.Second)
	for {
		raw, _ := os.ReadFile(a.events)
		if strings.Contains(string(raw), "kill-token-69") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the last exec did not arrive")
		}
		time.Sleep(20 * time.Millisecond)
	}
	evs := a.stop(t)
	bySeq := map[float64]string{}
	tokens := map[string]bool{}
	maxSeq := 0.0
	for _, ev := range evs {
		seq := ev["seq"].(float64)
		key := fmt.Sprint(ev["data_type"], ev["pid"], ev["time_ns"], ev["args"])
		if prev, ok := bySeq[seq]; ok && prev != key {
			t.Fatalf("seq %v names two events: %s and %s", seq, prev, key)
		}
		bySeq[seq] = key
		maxSeq = max(maxSeq, seq)
		if args, ok := ev["args"].([]any); ok && len(args) == 3 {
			tokens[args[2].(string)] = true
		}
	}
	for i := 0; i < 70; i++ {
		if !tokens[fmt.Sprintf("kill-token-%d", i)] {
			t.Errorf("exec %d missing after the kill", i)
		}
	}
	for s := 1.0; s <= maxSeq; s++ {
		if _, ok := bySeq[s]; !ok {
			t.Errorf("sequence number %v missing", s)
		}
	}
	t.Logf("%d lines, %d distinct numbers, %d duplicates from the restart", len(evs), len(bySeq), len(evs)-len(bySeq))
}

func truncComm(s string) string {
	if len(s) > 15 {
		return s[:15]
	}
	return s
}
