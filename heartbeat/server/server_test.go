package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"smith/heartbeat/api"
	"smith/heartbeat/consoletest"
	"smith/heartbeat/store"
)

const (
	fleetToken = consoletest.FleetToken
	consolePw  = consoletest.ConsolePassword
)

// clock is a settable time source.
type clock = consoletest.Clock

var testPolicy = store.Policy{
	OfflineAfter: 90 * time.Second,
	TaskIntervals: map[api.TaskKind]time.Duration{
		api.TaskListeningSockets: time.Hour,
		api.TaskUsers:            6 * time.Hour,
		api.TaskModuleStatus:     5 * time.Minute,
	},
}

type fixture struct {
	t     *testing.T
	path  string
	clock *clock
	log   *logtest.Hook
	reg   *store.Registry
	srv   *Server
	ts    *httptest.Server
	// opts change the server's Config before each start.
	opts []func(*Config)
	// creds are the credentials of the hosts send enrolled.
	creds map[string]string
}

func newFixture(t *testing.T, opts ...func(*Config)) *fixture {
	t.Helper()
	f := &fixture{
		opts:  opts,
		creds: map[string]string{},
		t:     t,
		path:  filepath.Join(t.TempDir(), "hosts.db"),
		// The clock starts at the real time: the cookie jar of the login
		// test checks the session cookie's Expires against the wall clock.
		clock: consoletest.NewClock(time.Now().UTC().Truncate(time.Second)),
	}
	f.start()
	t.Cleanup(f.stop)
	return f
}

func (f *fixture) start() {
	f.t.Helper()
	reg, err := store.Open(f.path, testPolicy)
	if err != nil {
		f.t.Fatal(err)
	}
	logger, hook := logtest.NewNullLogger()
	cfg := Config{
		FleetToken: fleetToken, ConsolePassword: consolePw, Registry: reg,
		Now: f.clock.Now, Log: logger,
	}
	for _, o := range f.opts {
		o(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	f.reg, f.srv, f.log = reg, srv, hook
	f.ts = httptest.NewServer(srv)
}

func (f *fixture) stop() {
	if f.ts == nil {
		return
	}
	f.ts.Close()
	if err := f.reg.Close(); err != nil {
		f.t.Errorf("close registry: %v", err)
	}
	f.ts = nil
}

func heartbeat(id, name string, ips ...string) *api.Heartbeat {
	return &api.Heartbeat{
		Version: api.Version, HostID: id, Hostname: name, IPs: ips, Seq: 1,
		AgentVersion: "1.2.3", ModuleVersion: "1.0.0", ABIVersion: "1.0", Transport: "shm",
		Kernel: "6.1.0-28-amd64", UptimeSeconds: 1000, AgentUptimeSeconds: 100, IntervalSeconds: 30,
		Counters: api.Counters{
			EventsRead: 5000, EventsSent: 4990,
			Drops:      map[string]uint64{"ring_full": 7, "spool_full": 3},
			SpoolBytes: 4096, SpoolEvents: 2, RingFill: 0.5,
		},
	}
}

// send posts hb with its host's credential, enrolling the host first
// when this fixture has not yet.
func (f *fixture) send(hb *api.Heartbeat) (*api.Response, error) {
	f.t.Helper()
	cred, ok := f.creds[hb.HostID]
	if !ok {
		e, err := api.NewClient(f.ts.URL, fleetToken, f.ts.Client()).Enrol(context.Background(), hb.HostID, hb.Hostname)
		if err != nil {
			f.t.Fatalf("enrol %s: %v", hb.HostID, err)
		}
		cred = e.Credential
		f.creds[hb.HostID] = cred
	}
	return api.NewClient(f.ts.URL, cred, f.ts.Client()).Send(context.Background(), hb)
}

func (f *fixture) mustSend(hb *api.Heartbeat) *api.Response {
	f.t.Helper()
	resp, err := f.send(hb)
	if err != nil {
		f.t.Fatalf("heartbeat %s: %v", hb.Hostname, err)
	}
	return resp
}

// roundTrip sends req to the console and returns its answer, the body
// read.
func (f *fixture) roundTrip(req *http.Request) (*http.Response, []byte) {
	f.t.Helper()
	resp, err := f.ts.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	return resp, body
}

func (f *fixture) get(path string, out any) int {
	f.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.ts.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+consolePw)
	resp, body := f.roundTrip(req)
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, out); err != nil {
			f.t.Fatalf("GET %s: %v", path, err)
		}
	}
	return resp.StatusCode
}

func (f *fixture) list(prefix string) api.HostList {
	f.t.Helper()
	var l api.HostList
	if code := f.get(api.HostsPath+"?prefix="+prefix, &l); code != http.StatusOK {
		f.t.Fatalf("list: status %d", code)
	}
	return l
}

func kinds(tasks []api.Task) []api.TaskKind {
	var out []api.TaskKind
	for _, t := range tasks {
		out = append(out, t.Kind)
	}
	return out
}

func TestAcceptedHeartbeatUpdatesRegistry(t *testing.T) {
	f := newFixture(t)
	resp := f.mustSend(heartbeat("id-1", "web-1", "10.0.0.1"))
	if resp.Version != api.Version || resp.IntervalSeconds != 30 || !resp.ServerTime.Equal(f.clock.Now()) {
		t.Errorf("response = %+v", resp)
	}
	want := []api.TaskKind{api.TaskListeningSockets, api.TaskUsers, api.TaskModuleStatus}
	if got := kinds(resp.Tasks); !equalKinds(got, want) {
		t.Errorf("first heartbeat tasks = %v, want %v", got, want)
	}

	l := f.list("")
	if l.Counts != (api.Counts{Total: 1, Online: 1}) || len(l.Hosts) != 1 {
		t.Fatalf("list = %+v", l)
	}
	h := l.Hosts[0]
	if h.HostID != "id-1" || h.Hostname != "web-1" || !h.Online || h.Kernel != "6.1.0-28-amd64" ||
		h.AgentVersion != "1.2.3" || h.ModuleVersion != "1.0.0" || h.DropsTotal != 10 ||
		h.Counters.SpoolBytes != 4096 || !h.LastSeen.Equal(f.clock.Now()) || h.RemoteAddr != "127.0.0.1" {
		t.Errorf("host = %+v", h)
	}

	// Thirty seconds and 3000 events later: a rate, and no task due yet.
	f.clock.Advance(30 * time.Second)
	hb := heartbeat("id-1", "web-1", "10.0.0.1")
	hb.AgentUptimeSeconds += 30
	hb.Counters.EventsRead += 3000
	if resp := f.mustSend(hb); len(resp.Tasks) != 0 {
		t.Errorf("second heartbeat tasks = %v, want none", kinds(resp.Tasks))
	}
	var got api.Host
	f.get(api.HostsPath+"/id-1", &got)
	if got.EventRate != 100 {
		t.Errorf("event rate = %v, want 100", got.EventRate)
	}
}

func equalKinds(a, b []api.TaskKind) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRefusedRequestsChangeNothing(t *testing.T) {
	valid, _ := json.Marshal(heartbeat("id-x", "bad-1"))
	other := heartbeat("id-x", "bad-1")
	other.Version = "2.0"
	otherMajor, _ := json.Marshal(other)
	noID := heartbeat("", "bad-1")
	noIDBody, _ := json.Marshal(noID)
	huge := append([]byte(`{"version":"1.0","host_id":"id-x","hostname":"bad-1","last_error":"`),
		bytes.Repeat([]byte("x"), api.MaxBodyBytes)...)
	huge = append(huge, `"}`...)

	for _, tc := range []struct {
		name   string
		method string
		auth   string
		body   []byte
		status int
		code   string
	}{
		{"missing credential", "POST", "", valid, 401, "unknown_credential"},
		{"wrong credential", "POST", "Bearer nope", valid, 401, "unknown_credential"},
		{"the fleet secret only enrols", "POST", "Bearer " + fleetToken, valid, 401, "unknown_credential"},
		{"console password is not a credential", "POST", "Bearer " + consolePw, valid, 401, "unknown_credential"},
		{"wrong scheme", "POST", "Basic CRED", valid, 401, "unknown_credential"},
		{"malformed JSON", "POST", "Bearer CRED", []byte(`{"version":"1.0",`), 400, "malformed_json"},
		{"wrong JSON type", "POST", "Bearer CRED", []byte(`{"version":1}`), 400, "malformed_json"},
		{"trailing data", "POST", "Bearer CRED", append(valid, valid...), 400, "malformed_json"},
		{"oversized body", "POST", "Bearer CRED", huge, 413, "body_too_large"},
		{"unknown major version", "POST", "Bearer CRED", otherMajor, 400, "unsupported_version"},
		{"missing host id", "POST", "Bearer CRED", noIDBody, 400, "invalid_heartbeat"},
		{"GET", "GET", "Bearer CRED", nil, 405, "method_not_allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			e, err := api.NewClient(f.ts.URL, fleetToken, f.ts.Client()).Enrol(context.Background(), "id-x", "bad-1")
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest(tc.method, f.ts.URL+api.HeartbeatPath, bytes.NewReader(tc.body))
			if tc.auth != "" {
				req.Header.Set("Authorization", strings.ReplaceAll(tc.auth, "CRED", e.Credential))
			}
			resp, err := f.ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			err = api.ReadError(resp)
			resp.Body.Close()
			var se *api.StatusError
			if !errors.As(err, &se) || se.StatusCode != tc.status || se.Code != tc.code || se.Message == "" {
				t.Fatalf("answer = %v, want %d %s with a message", err, tc.status, tc.code)
			}
			if l := f.list(""); l.Counts.Total != 1 || !l.Hosts[0].LastSeen.IsZero() {
				t.Errorf("registry changed: %+v", l)
			}
			if tc.status == 401 {
				if e := f.log.LastEntry(); e == nil || e.Level != logrus.WarnLevel || !strings.Contains(e.Message, "credential") {
					t.Errorf("refusal not logged: %+v", e)
				}
			}
		})
	}
}

func TestRegistrySurvivesRestart(t *testing.T) {
	f := newFixture(t)
	hb := heartbeat("id-1", "db-1", "10.0.0.9")
	hb.LastError = "kafka: broker unreachable"
	f.mustSend(hb)
	f.clock.Advance(10 * time.Second)
	hb.TaskResults = []api.TaskResult{{
		ID: "users-1", Kind: api.TaskUsers, Items: 27, Summary: "27 users",
		Facts: map[string]string{"uid0": "root"},
	}}
	f.mustSend(hb)

	f.stop()
	f.start()

	var h api.Host
	if code := f.get(api.HostsPath+"/db-1", &h); code != http.StatusOK {
		t.Fatalf("after restart: status %d", code)
	}
	if h.HostID != "id-1" || !h.LastSeen.Equal(f.clock.Now()) || h.LastError != hb.LastError ||
		len(h.Tasks) != 1 || h.Tasks[0].Summary != "27 users" || h.Tasks[0].Facts["uid0"] != "root" {
		t.Errorf("after restart host = %+v", h)
	}
	// Task schedule survives too: nothing is due ten seconds after
	// everything was handed out.
	if resp := f.mustSend(heartbeat("id-1", "db-1")); len(resp.Tasks) != 0 {
		t.Errorf("tasks after restart = %v, want none", kinds(resp.Tasks))
	}
}

func TestHostGoesOfflineAfterSilence(t *testing.T) {
	f := newFixture(t)
	f.mustSend(heartbeat("id-1", "a-1"))
	f.mustSend(heartbeat("id-2", "a-2"))

	f.clock.Advance(60 * time.Second)
	f.mustSend(heartbeat("id-2", "a-2"))
	f.clock.Advance(30 * time.Second) // id-1 silent for exactly 90 s: still online
	if c := f.list("").Counts; c != (api.Counts{Total: 2, Online: 2}) {
		t.Fatalf("at the timeout: %+v", c)
	}
	f.clock.Advance(time.Second)
	l := f.list("")
	if l.Counts != (api.Counts{Total: 2, Online: 1, Offline: 1}) {
		t.Fatalf("after the timeout: %+v", l.Counts)
	}
	if l.Hosts[0].Hostname != "a-1" || l.Hosts[0].Online || !l.Hosts[1].Online {
		t.Errorf("hosts = %+v", l.Hosts)
	}
	var c api.Counts
	f.get(api.CountPath, &c)
	if c.Offline != 1 {
		t.Errorf("count = %+v", c)
	}

	// The transition is logged once, not at every sweep.
	f.srv.maintain()
	f.srv.maintain()
	offline := 0
	for _, e := range f.log.AllEntries() {
		if e.Message == "host offline" {
			offline++
			if e.Data["host"] != "a-1" {
				t.Errorf("offline log names %v", e.Data["host"])
			}
		}
	}
	if offline != 1 {
		t.Errorf("logged %d offline transitions, want 1", offline)
	}

	f.mustSend(heartbeat("id-1", "a-1"))
	if c := f.list("").Counts; c.Online != 2 {
		t.Errorf("after it came back: %+v", c)
	}
}

func TestTasksDueByInterval(t *testing.T) {
	f := newFixture(t)
	f.mustSend(heartbeat("id-1", "h"))
	f.clock.Advance(5 * time.Minute)
	if got := kinds(f.mustSend(heartbeat("id-1", "h")).Tasks); !equalKinds(got, []api.TaskKind{api.TaskModuleStatus}) {
		t.Errorf("after 5 min: %v", got)
	}
	f.clock.Advance(55 * time.Minute)
	got := kinds(f.mustSend(heartbeat("id-1", "h")).Tasks)
	if !equalKinds(got, []api.TaskKind{api.TaskListeningSockets, api.TaskModuleStatus}) {
		t.Errorf("after 1 h: %v", got)
	}
}

func TestListFilterAndLookup(t *testing.T) {
	f := newFixture(t)
	f.mustSend(heartbeat("id-1", "web-1", "10.0.0.1"))
	f.mustSend(heartbeat("id-2", "web-2", "10.0.1.2", "fd00::2"))
	f.mustSend(heartbeat("id-3", "db-1", "192.168.1.3"))

	for prefix, want := range map[string][]string{
		"":        {"db-1", "web-1", "web-2"},
		"WEB":     {"web-1", "web-2"},
		"10.0.1.": {"web-2"},
		"fd00":    {"web-2"},
		"192.":    {"db-1"},
		"zzz":     {},
	} {
		var names []string
		for _, h := range f.list(prefix).Hosts {
			names = append(names, h.Hostname)
		}
		if strings.Join(names, ",") != strings.Join(want, ",") {
			t.Errorf("prefix %q: %v, want %v", prefix, names, want)
		}
	}
	for key, want := range map[string]string{"id-3": "db-1", "WEB-2": "web-2", "fd00::2": "web-2", "10.0.0.1": "web-1"} {
		var h api.Host
		if code := f.get(api.HostsPath+"/"+key, &h); code != 200 || h.Hostname != want {
			t.Errorf("host %q: %d %s, want %s", key, code, h.Hostname, want)
		}
	}
	if code := f.get(api.HostsPath+"/nope", nil); code != http.StatusNotFound {
		t.Errorf("unknown host: %d", code)
	}
}

func TestConsoleNeedsItsOwnCredential(t *testing.T) {
	f := newFixture(t)
	f.mustSend(heartbeat("id-1", "h"))
	get := func(c *http.Client, auth string) int {
		req, _ := http.NewRequest(http.MethodGet, f.ts.URL+api.HostsPath, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	plain := f.ts.Client()
	if code := get(plain, ""); code != 401 {
		t.Errorf("anonymous: %d", code)
	}
	if code := get(plain, "Bearer "+fleetToken); code != 401 {
		t.Errorf("fleet token: %d", code)
	}
	if code := get(plain, "Bearer "+consolePw); code != 200 {
		t.Errorf("console password: %d", code)
	}

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	login := func(pw string) *http.Response {
		body, _ := json.Marshal(api.Login{Password: pw})
		resp, err := browser.Post(f.ts.URL+api.LoginPath, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := login("wrong"); resp.StatusCode != 401 {
		t.Errorf("wrong password: %d", resp.StatusCode)
	}
	if code := get(browser, ""); code != 401 {
		t.Errorf("after a failed login: %d", code)
	}
	resp := login(consolePw)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie = %+v", cookie)
	}
	if code := get(browser, ""); code != 200 {
		t.Errorf("with session: %d", code)
	}
	f.clock.Advance(13 * time.Hour)
	if code := get(browser, ""); code != 401 {
		t.Errorf("expired session: %d", code)
	}
	resp = login(consolePw)
	var live string
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			live = c.Value
		}
	}
	withCookie := func(id string) int {
		req, _ := http.NewRequest(http.MethodGet, f.ts.URL+api.HostsPath, nil)
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: id})
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	if code := withCookie(live); live == "" || code != 200 {
		t.Fatalf("second session %q: %d", live, code)
	}
	if r, err := browser.Post(f.ts.URL+api.LogoutPath, "", nil); err != nil {
		t.Fatal(err)
	} else {
		r.Body.Close()
	}
	if code := get(browser, ""); code != 401 {
		t.Errorf("after logout: %d", code)
	}
	// The jar drops the cookie on logout (MaxAge -1) whatever the server
	// does; the session itself must be over on the server.
	if code := withCookie(live); code != 401 {
		t.Errorf("old session id after logout: %d", code)
	}
}

func TestNewRefusesWeakConfig(t *testing.T) {
	reg, err := store.Open(filepath.Join(t.TempDir(), "hosts.db"), testPolicy)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	for name, cfg := range map[string]Config{
		"no fleet token": {ConsolePassword: "c", Registry: reg},
		"no password":    {FleetToken: "f", Registry: reg},
		"same secret":    {FleetToken: "s", ConsolePassword: "s", Registry: reg},
		"no registry":    {FleetToken: "f", ConsolePassword: "c"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestWebConsoleIsServed(t *testing.T) {
	f := newFixture(t)
	for path, want := range map[string]string{
		"/": "<title>Smith console</title>", "/console.js": "use strict", "/console.css": "--accent",
	} {
		resp, err := f.ts.Client().Get(f.ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d, body lacks %q", path, resp.StatusCode, want)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: CSP %q", path, csp)
		}
	}
}
