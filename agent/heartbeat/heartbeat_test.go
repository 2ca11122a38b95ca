package heartbeat

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"smith/agent/encode"
	"smith/agent/inventory"
	"smith/agent/metrics"
	"smith/agent/source"
	"smith/heartbeat/api"
	"smith/heartbeat/server"
	"smith/heartbeat/store"
	"smith/internal/harness"
	"smith/internal/testfs"
)

// testTasks collects from a tree with two users (a users task: two
// items, the first root) and fixed status facts.
func testTasks(t *testing.T) *inventory.Tasks {
	root := t.TempDir()
	testfs.WriteFile(t, filepath.Join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n")
	return &inventory.Tasks{Root: root, Status: func() (m, a [][2]string) {
		return [][2]string{{"loaded", "true"}, {"abi", "1.0"}}, [][2]string{{"version", "test"}}
	}}
}

// fakeConsole validates heartbeats as the real console does and hands out
// one users task.
type fakeConsole struct {
	mu    sync.Mutex
	beats []api.Heartbeat
}

// fakeEnrol answers an enrolment with the fleet secret "fleet-token" with
// the credential "cred-1", and reports whether r was one.
func fakeEnrol(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.Path != api.EnrolPath {
		return false
	}
	if r.Header.Get("Authorization") != "Bearer fleet-token" {
		http.Error(w, "no", http.StatusUnauthorized)
		return true
	}
	json.NewEncoder(w).Encode(api.Enrolment{HostID: "h", Credential: "cred-1"})
	return true
}

func (f *fakeConsole) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if fakeEnrol(w, r) {
		return
	}
	if r.URL.Path != api.HeartbeatPath || r.Header.Get("Authorization") != "Bearer cred-1" {
		http.Error(w, "no", http.StatusUnauthorized)
		return
	}
	raw, _ := io.ReadAll(r.Body)
	var hb api.Heartbeat
	if err := json.Unmarshal(raw, &hb); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	if err := hb.Validate(); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	f.mu.Lock()
	f.beats = append(f.beats, hb)
	n := len(f.beats)
	f.mu.Unlock()
	resp := api.Response{Version: api.Version, ServerTime: time.Now(), IntervalSeconds: 1}
	if n == 1 {
		resp.Tasks = []api.Task{{ID: "t-1", Kind: api.TaskUsers}}
	}
	json.NewEncoder(w).Encode(resp)
}

func TestClientPostsHeartbeatsAndRunsTasks(t *testing.T) {
	fc := &fakeConsole{}
	srv := httptest.NewServer(fc)
	defer srv.Close()
	c := &metrics.Counters{}
	c.Read.Add(12)
	c.AddDrop(metrics.DropSpoolFull, 3)
	var shipped []encode.TaskItem
	var mu sync.Mutex
	log := logrus.New()
	log.Out = io.Discard
	cl, err := New(Options{
		URL: srv.URL, Token: "fleet-token", Interval: time.Second, Timeout: 5 * time.Second,
		AgentVersion: "1.2.3", Host: func() encode.Host { return encode.Host{Name: "web-1", IPs: []string{"10.0.0.5"}} },
		Module:   func() source.Module { return source.Module{Version: "0.1.0", ABI: "1.0", Transport: "shm"} },
		Counters: c, LastError: func() string { return "" }, Tasks: testTasks(t), Log: log,
		Ship: func(items []encode.TaskItem) bool {
			mu.Lock()
			shipped = append(shipped, items...)
			mu.Unlock()
			return true
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { cl.Run(ctx); close(done) }()
	harness.WaitFor(t, 10*time.Second, "two heartbeats", func() bool {
		fc.mu.Lock()
		defer fc.mu.Unlock()
		return len(fc.beats) >= 2
	})
	cancel()
	<-done
	fc.mu.Lock()
	first, second := fc.beats[0], fc.beats[1]
	fc.mu.Unlock()
	if first.Hostname != "web-1" || first.AgentVersion != "1.2.3" || first.ModuleVersion != "0.1.0" || first.Transport != "shm" ||
		first.Counters.EventsRead != 12 || first.Counters.Drops["spool_full"] != 3 || first.Kernel == "" || first.Seq != 1 {
		t.Errorf("first heartbeat: %+v", first)
	}
	if len(second.TaskResults) != 1 || second.TaskResults[0].ID != "t-1" || second.TaskResults[0].Items != 2 || second.TaskResults[0].Error != "" {
		t.Errorf("second heartbeat task results: %+v", second.TaskResults)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(shipped) != 2 || shipped[0].TaskID != "t-1" || shipped[0].Kind != "users" || !slices.Contains(shipped[0].Fields, [2]string{"name", "root"}) {
		t.Errorf("shipped items: %+v", shipped)
	}
}

func quietLog() *logrus.Logger {
	log := logrus.New()
	log.Out = io.Discard
	return log
}

// newTestClient is a client of the console at url whose tasks come from
// testTasks (status facts from status when given); opts change the
// options before New.
func newTestClient(t *testing.T, url string, interval time.Duration, status func() (m, a [][2]string), opts ...func(*Options)) *Client {
	t.Helper()
	tk := testTasks(t)
	if status != nil {
		tk.Status = status
	}
	o := Options{
		URL: url, Token: "fleet-token", Interval: interval, Timeout: 5 * time.Second,
		AgentVersion: "1.2.3", Host: func() encode.Host { return encode.Host{Name: "web-1"} },
		Counters: &metrics.Counters{}, Tasks: tk, Log: quietLog(),
		Ship: func([]encode.TaskItem) bool { return true },
	}
	for _, f := range opts {
		f(&o)
	}
	cl, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func TestIntervalAskedByTheConsoleIsBounded(t *testing.T) {
	cl := newTestClient(t, "http://127.0.0.1:1", 30*time.Second, nil)
	for asked, want := range map[time.Duration]time.Duration{
		time.Second:      MinInterval,
		time.Millisecond: MinInterval,
		time.Minute:      time.Minute,
		24 * time.Hour:   MaxInterval,
	} {
		if got := cl.adopt(asked); got != want {
			t.Errorf("console asks %v: agent beats every %v, want %v", asked, got, want)
		}
	}
	// An operator's own shorter interval (a test, a lab) is the floor.
	fast := newTestClient(t, "http://127.0.0.1:1", 2*time.Second, nil)
	if got := fast.adopt(time.Second); got != 2*time.Second {
		t.Errorf("configured 2s, console asks 1s: %v", got)
	}
}

func TestTasksOfAnAnswerAreBounded(t *testing.T) {
	cl := newTestClient(t, "http://127.0.0.1:1", 30*time.Second, nil)
	now := time.Unix(1_000_000, 0)
	cl.now = func() time.Time { return now }
	tasks := []api.Task{
		{ID: "u-1", Kind: api.TaskUsers},
		{ID: "u-2", Kind: api.TaskUsers},
		{ID: strings.Repeat("x", api.MaxIDLen+1), Kind: api.TaskCrontabs},
		{ID: "", Kind: api.TaskPackages},
		{ID: "s-1", Kind: api.TaskListeningSockets},
	}
	for i := 0; i < 20; i++ {
		tasks = append(tasks, api.Task{ID: fmt.Sprintf("m-%d", i), Kind: api.TaskKind(fmt.Sprintf("mystery-%d", i))})
	}
	got := cl.accept(tasks)
	if len(got) != len(api.TaskKinds)+1 || got[0].ID != "u-1" || got[1].ID != "s-1" {
		t.Fatalf("accepted %+v", got)
	}
	// The same kinds again before MinTaskGap: nothing runs.
	now = now.Add(MinTaskGap - time.Second)
	if again := cl.accept([]api.Task{{ID: "u-3", Kind: api.TaskUsers}}); len(again) != 0 {
		t.Errorf("users ran again after %v: %+v", MinTaskGap-time.Second, again)
	}
	now = now.Add(time.Second)
	if again := cl.accept([]api.Task{{ID: "u-4", Kind: api.TaskUsers}}); len(again) != 1 {
		t.Errorf("users refused after %v: %+v", MinTaskGap, again)
	}
	if len(cl.lastRun) != 1 {
		t.Errorf("lastRun keeps %d kinds after the gap, want 1", len(cl.lastRun))
	}
}

// A summary cut by the agent must stay valid once it went through JSON:
// a character split at the limit becomes U+FFFD (3 bytes) and would make
// the console refuse every heartbeat of the host.
func TestLongMultibyteSummaryStaysValid(t *testing.T) {
	long := strings.Repeat("é", api.MaxSummaryLen)
	cl := newTestClient(t, "http://127.0.0.1:1", 30*time.Second, func() (m, a [][2]string) {
		return [][2]string{{"loaded", long}}, nil
	})
	cl.runTask(context.Background(), api.Task{ID: "m-1", Kind: api.TaskModuleStatus})
	raw, err := json.Marshal(cl.Build())
	if err != nil {
		t.Fatal(err)
	}
	var sent api.Heartbeat
	if err := json.Unmarshal(raw, &sent); err != nil {
		t.Fatal(err)
	}
	if err := sent.Validate(); err != nil {
		t.Fatalf("the console would refuse the heartbeat: %v", err)
	}
	if r := sent.TaskResults[0]; len(r.Summary) < api.MaxSummaryLen-2 {
		t.Errorf("summary cut to %d bytes, want the most that fits", len(r.Summary))
	}
}

// scriptedConsole records every heartbeat and answers with answer(n, hb),
// n counting from 1: an api.Response, or an error code to refuse with.
type scriptedConsole struct {
	mu     sync.Mutex
	beats  []api.Heartbeat
	answer func(n int, hb api.Heartbeat) (api.Response, string)
}

func (f *scriptedConsole) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if fakeEnrol(w, r) {
		return
	}
	var hb api.Heartbeat
	json.NewDecoder(r.Body).Decode(&hb)
	f.mu.Lock()
	f.beats = append(f.beats, hb)
	n := len(f.beats)
	f.mu.Unlock()
	resp, refuse := f.answer(n, hb)
	if refuse != "" {
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(api.Error{Code: refuse, Message: "task_results[0]: summary too long"})
		return
	}
	resp.Version = api.Version
	json.NewEncoder(w).Encode(resp)
}

func (f *scriptedConsole) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.beats)
}

// refusingConsole answers invalid_heartbeat to any heartbeat carrying task
// results and hands out one users task on the first one.
func refusingConsole() *scriptedConsole {
	return &scriptedConsole{answer: func(n int, hb api.Heartbeat) (api.Response, string) {
		if len(hb.TaskResults) > 0 {
			return api.Response{}, "invalid_heartbeat"
		}
		resp := api.Response{IntervalSeconds: 30}
		if n == 1 {
			resp.Tasks = []api.Task{{ID: "u-1", Kind: api.TaskUsers}}
		}
		return resp, ""
	}}
}

func TestRefusedResultsAreDroppedNotRetriedForEver(t *testing.T) {
	fc := refusingConsole()
	srv := httptest.NewServer(fc)
	defer srv.Close()
	cl := newTestClient(t, srv.URL, 30*time.Second, nil)
	ctx := context.Background()
	if err := beatAndRun(ctx, cl); err != nil {
		t.Fatalf("first heartbeat: %v", err)
	}
	if err := beatAndRun(ctx, cl); err == nil {
		t.Fatal("the heartbeat with the result was not refused")
	}
	if err := beatAndRun(ctx, cl); err != nil {
		t.Fatalf("third heartbeat still refused: %v", err)
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if len(fc.beats) != 3 || len(fc.beats[1].TaskResults) != 1 || len(fc.beats[2].TaskResults) != 0 {
		t.Errorf("heartbeats: %+v", fc.beats)
	}
	if cl.Lost() != 1 {
		t.Errorf("Lost() = %d, want 1", cl.Lost())
	}
}

func TestPinnedCertificate(t *testing.T) {
	srv := httptest.NewTLSServer(&fakeConsole{})
	defer srv.Close()
	pin := api.Fingerprint(srv.Certificate().Raw)
	newClient := func(pin string) *Client {
		return newTestClient(t, srv.URL, 30*time.Second, nil, func(o *Options) { o.PinSHA256 = pin })
	}
	if _, _, err := newClient(pin).beat(context.Background()); err != nil {
		t.Errorf("pinned certificate refused: %v", err)
	}
	_, _, err := newClient(strings.Repeat("0", 64)).beat(context.Background())
	if err == nil || !strings.Contains(err.Error(), "does not match the pinned") {
		t.Errorf("other certificate: %v", err)
	}
	// Without a pin or CA the test server's certificate is unknown.
	if _, _, err := newClient("").beat(context.Background()); err == nil {
		t.Error("unverified certificate accepted")
	}
}

func TestPlainHTTPToAnotherHostIsRefused(t *testing.T) {
	o := Options{URL: "http://console.example:8080", Interval: time.Minute}
	if _, err := New(o); err == nil || !strings.Contains(err.Error(), "in clear") {
		t.Errorf("plain http to another host: %v", err)
	}
	o.Insecure = true
	if _, err := New(o); err != nil {
		t.Errorf("with insecure: %v", err)
	}
}

// The agent enrols once with the fleet secret, keeps its credential
// (0600) across restarts, enrols again after a decommission, and a second
// machine with the same machine-id is refused with a clear error.
func TestEnrolmentWithTheRealConsole(t *testing.T) {
	reg, err := store.Open(filepath.Join(t.TempDir(), "hosts.db"), store.Policy{OfflineAfter: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	srv, err := server.New(server.Config{FleetToken: "fleet-token", ConsolePassword: "pw", Registry: reg, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	credFile := filepath.Join(t.TempDir(), "state", "console.credential")
	agent := func(file string) *Client {
		cl := newTestClient(t, ts.URL, 30*time.Second, nil)
		cl.o.CredentialFile = file
		return cl
	}
	ctx := context.Background()
	first := agent(credFile)
	if err := beatAndRun(ctx, first); err != nil {
		t.Fatalf("first heartbeat: %v", err)
	}
	st, err := os.Stat(credFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("credential file: %v %v", st, err)
	}
	saved, _ := os.ReadFile(credFile)
	// A restart: the saved credential, no new enrolment (which the
	// console would refuse).
	if err := beatAndRun(ctx, agent(credFile)); err != nil {
		t.Errorf("after a restart: %v", err)
	}
	// A clone: same machine-id, no credential.
	err = beatAndRun(ctx, agent(filepath.Join(t.TempDir(), "clone.credential")))
	if err == nil || !strings.Contains(err.Error(), "machine-id") {
		t.Errorf("clone: %v", err)
	}
	if h, _ := reg.Lookup(first.hostID, time.Now()); h.Conflicts != 1 {
		t.Errorf("clone not recorded: %d conflicts", h.Conflicts)
	}
	// Decommissioned: refused once, then enrolled again with a new
	// credential.
	reg.Decommission(first.hostID, time.Now())
	if err := beatAndRun(ctx, first); err == nil || !strings.Contains(err.Error(), "decommissioned") {
		t.Errorf("after decommission: %v", err)
	}
	if err := beatAndRun(ctx, first); err != nil {
		t.Errorf("re-enrolment: %v", err)
	}
	if again, _ := os.ReadFile(credFile); len(again) == 0 || string(again) == string(saved) {
		t.Errorf("credential after re-enrolment: %q (was %q)", again, saved)
	}
}

func TestHeartbeatReportsTheSpoolBound(t *testing.T) {
	cl := newTestClient(t, "http://127.0.0.1:1", 30*time.Second, nil)
	cl.o.SpoolMaxBytes = 1 << 30
	cl.o.Counters.SpoolBytes.Store(1 << 28)
	if c := cl.Build().Counters; c.SpoolMaxBytes != 1<<30 || c.SpoolBytes != 1<<28 {
		t.Errorf("counters %+v", c)
	}
}

// beatAndRun posts one heartbeat and runs the tasks of its answer at
// once, as Run's task goroutine would.
func beatAndRun(ctx context.Context, cl *Client) error {
	_, tasks, err := cl.beat(ctx)
	for _, t := range tasks {
		cl.runTask(ctx, t)
	}
	return err
}

func TestALongTaskDoesNotHoldHeartbeatsBack(t *testing.T) {
	// One module_status task on the first heartbeat.
	fc := &scriptedConsole{answer: func(n int, _ api.Heartbeat) (api.Response, string) {
		resp := api.Response{IntervalSeconds: 1}
		if n == 1 {
			resp.Tasks = []api.Task{{ID: "slow-1", Kind: api.TaskModuleStatus}}
		}
		return resp, ""
	}}
	srv := httptest.NewServer(fc)
	defer srv.Close()
	release := make(chan struct{})
	started := make(chan struct{})
	cl := newTestClient(t, srv.URL, time.Second, func() (m, a [][2]string) {
		close(started)
		<-release
		return [][2]string{{"loaded", "yes"}}, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { cl.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	<-started
	for deadline := time.Now().Add(10 * time.Second); fc.count() < 4; {
		if time.Now().After(deadline) {
			close(release)
			t.Fatalf("%d heartbeats while a task ran: the task holds them back", fc.count())
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		fc.mu.Lock()
		var got []api.TaskResult
		for _, hb := range fc.beats {
			got = append(got, hb.TaskResults...)
		}
		fc.mu.Unlock()
		if len(got) == 1 && got[0].ID == "slow-1" && got[0].Error == "" {
			break
		}
		if len(got) > 1 || time.Now().After(deadline) {
			t.Fatalf("task results after the task ended: %+v", got)
		}
	}
}
