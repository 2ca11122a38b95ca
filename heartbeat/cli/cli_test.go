package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smith/heartbeat/api"
	"smith/heartbeat/consoletest"
	"smith/heartbeat/server"
	"smith/heartbeat/store"
	"smith/heartbeat/store/redistest"
	"smith/internal/harness"
)

const (
	fleetToken = consoletest.FleetToken
	consolePw  = consoletest.ConsolePassword
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// liveConsole starts a console with two hosts, one of them silent past
// the offline timeout, and returns its URL.
func liveConsole(t *testing.T) string {
	t.Helper()
	// The console's clock runs from the real time: the CLI prints ages
	// against the wall clock.
	now := time.Now().UTC().Truncate(time.Second)
	clock := func() time.Time { return now }
	reg, err := store.Open(filepath.Join(t.TempDir(), "hosts.db"), store.Policy{
		OfflineAfter:  90 * time.Second,
		TaskIntervals: map[api.TaskKind]time.Duration{api.TaskPackages: time.Hour},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{
		FleetToken: fleetToken, ConsolePassword: consolePw, Registry: reg,
		Now: func() time.Time { return clock() }, Log: consoletest.QuietLog(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() { ts.Close(); reg.Close() })

	send := func(hb *api.Heartbeat) {
		client, err := api.NewClient(ts.URL, fleetToken, ts.Client()).Enrolled(context.Background(), hb.HostID, hb.Hostname)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.Send(context.Background(), hb); err != nil {
			t.Fatal(err)
		}
	}
	send(&api.Heartbeat{HostID: "id-db", Hostname: "db-1", IPs: []string{"10.1.0.7"}, AgentVersion: "1.0.0", Kernel: "5.10.0-33-amd64"})
	now = now.Add(2 * time.Minute)
	send(&api.Heartbeat{
		HostID: "id-web", Hostname: "web-1", IPs: []string{"10.0.0.5"}, AgentVersion: "1.1.0",
		ModuleVersion: "1.0.0", ABIVersion: "1.0", Kernel: "6.1.0-28-amd64",
		Counters: api.Counters{Drops: map[string]uint64{"ring_full": 4}, SpoolBytes: 1234},
		TaskResults: []api.TaskResult{{
			ID: "packages-1", Kind: api.TaskPackages, Items: 412, Summary: "412 packages (dpkg)",
			FinishedAt: now.Add(-time.Second),
		}},
	})
	return ts.URL
}

func runCLI(t *testing.T, e map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Run(context.Background(), args, &out, &errOut, env(e))
	return code, out.String(), errOut.String()
}

func TestCLIVerbsAgainstLiveConsole(t *testing.T) {
	url := liveConsole(t)
	e := map[string]string{"SMITH_CONSOLE_URL": url, "SMITH_CONSOLE_PASSWORD": consolePw}

	code, out, errOut := runCLI(t, e, "count")
	if code != 0 || out != "total 2  online 1  offline 1\n" {
		t.Errorf("count: %d %q %q", code, out, errOut)
	}

	code, out, _ = runCLI(t, e, "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 4 || !strings.HasPrefix(lines[0], "STATUS") ||
		!strings.HasPrefix(lines[1], "offline  db-1") || !strings.HasPrefix(lines[2], "online   web-1") ||
		lines[3] != "2 shown; fleet: total 2  online 1  offline 1" {
		t.Errorf("list: %d\n%s", code, out)
	}
	if !strings.Contains(lines[2], "1234") || !strings.Contains(lines[2], "6.1.0-28-amd64") {
		t.Errorf("list row lacks spool or kernel: %q", lines[2])
	}

	code, out, _ = runCLI(t, e, "list", "10.1.")
	if code != 0 || !strings.Contains(out, "db-1") || strings.Contains(out, "web-1") {
		t.Errorf("list 10.1.: %d\n%s", code, out)
	}

	code, out, _ = runCLI(t, e, "host", "10.0.0.5")
	for _, want := range []string{"web-1", "online", "id-web", "ring_full 4", "packages", "412 packages (dpkg)",
		"drops, last 5m0s", "drops since agent start"} {
		if !strings.Contains(out, want) {
			t.Errorf("host output lacks %q:\n%s", want, out)
		}
	}
	if code != 0 {
		t.Errorf("host: exit %d", code)
	}

	code, out, _ = runCLI(t, e, "host", "-json", "web-1")
	var h api.Host
	if err := json.Unmarshal([]byte(out), &h); code != 0 || err != nil || h.HostID != "id-web" || len(h.Tasks) != 1 {
		t.Errorf("host -json: %d %v %+v", code, err, h)
	}
	if !strings.Contains(out, `"enrolled_at"`) {
		t.Errorf("host -json lacks the enrolment: %s", out)
	}

	// Decommission takes the exact id; the host is gone afterwards.
	if code, _, errOut := runCLI(t, e, "decommission", "db-1"); code != 1 || !strings.Contains(errOut, "exact host id") {
		t.Errorf("decommission by name: %d %q", code, errOut)
	}
	code, out, errOut = runCLI(t, e, "decommission", "id-db")
	if code != 0 || !strings.Contains(out, "decommissioned db-1 (id-db)") {
		t.Errorf("decommission: %d %q %q", code, out, errOut)
	}
	if code, out, _ := runCLI(t, e, "count"); code != 0 || out != "total 1  online 1  offline 0\n" {
		t.Errorf("count after decommission: %d %q", code, out)
	}
}

func TestCLIErrors(t *testing.T) {
	url := liveConsole(t)
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"unknown host", map[string]string{"SMITH_CONSOLE_PASSWORD": consolePw}, []string{"host", "-server", url, "nope"}, 1, "not_found"},
		{"wrong password", map[string]string{"SMITH_CONSOLE_PASSWORD": "guess"}, []string{"count", "-server", url}, 1, "401"},
		{"fleet token is not a console password", map[string]string{"SMITH_CONSOLE_PASSWORD": fleetToken}, []string{"count", "-server", url}, 1, "401"},
		{"no password", nil, []string{"count", "-server", url}, 2, "no console password"},
		{"host needs an argument", map[string]string{"SMITH_CONSOLE_PASSWORD": consolePw}, []string{"host", "-server", url}, 2, "wrong arguments"},
		{"unknown verb", nil, []string{"frobnicate"}, 2, "unknown command"},
		{"console down", map[string]string{"SMITH_CONSOLE_PASSWORD": consolePw}, []string{"count", "-server", "http://127.0.0.1:1"}, 1, "console at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, tc.env, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want exit %d and one line with %q", code, errOut, tc.code, tc.want)
			}
		})
	}
}

func TestHelpAndVersion(t *testing.T) {
	code, out, _ := runCLI(t, nil, "--help")
	if code != 0 || !strings.Contains(out, "smith-console list") || !strings.Contains(out, "-tls-cert") {
		t.Errorf("--help: %d %q", code, out)
	}
	code, out, _ = runCLI(t, nil, "-version")
	if code != 0 || !strings.HasPrefix(out, "smith-console "+Version) {
		t.Errorf("-version: %d %q", code, out)
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.toml", `
listen = "127.0.0.1:9000"
fleet_token = "from-file"
console_password = "pw"
db = "/tmp/x.db"
heartbeat_interval = "10s"
[tasks]
packages = "0s"
users = "1h"
`)
	cfg, err := LoadConfig(good, env(map[string]string{"SMITH_FLEET_TOKEN": "from-env"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:9000" || cfg.FleetToken != "from-env" || cfg.ConsolePassword != "pw" ||
		cfg.OfflineTimeout() != 30*time.Second || cfg.FlushInterval.Duration != time.Second {
		t.Errorf("config = %+v", cfg)
	}
	iv := cfg.TaskIntervals()
	if iv[api.TaskPackages] != 0 || iv[api.TaskUsers] != time.Hour || iv[api.TaskCrontabs] != 6*time.Hour {
		t.Errorf("task intervals = %v", iv)
	}

	for name, tc := range map[string]struct{ text, want string }{
		"unknown key":       {`lisen = ":1"`, "unknown key(s): lisen"},
		"unknown task key":  {"[tasks]\nsockets = \"1h\"", "not a task kind"},
		"bad duration":      {`heartbeat_interval = "soon"`, "heartbeat_interval"},
		"cert without key":  {`tls_cert = "/c.pem"`, "tls_cert and tls_key"},
		"offline too short": {"heartbeat_interval = \"30s\"\noffline_after = \"10s\"", "flap"},
		"no fleet token":    {`console_password = "x"`, "no fleet token"},
		"bad log format":    {`log_format = "xml"`, "log_format"},
		"no idle timeout":   {`idle_timeout = "0s"`, "idle_timeout"},
		"not TOML":          {`listen = `, "config"},
		"plain everywhere":  {`listen = ":8080"`, "in clear"},
		"plain on an IP":    {`listen = "10.0.0.1:8080"`, "in clear"},
		"proxy and cert":    {"tls_proxy = true\ntls_self_signed = true", "tls_proxy"},
		"no lockout":        {`login_lockout = "0s"`, "login_lockout"},
		"plain webhook":     {`alert_webhook = "http://hooks.example/smith"`, "alert_webhook"},
		"short drop window": {`drop_window = "1s"`, "drop_window"},
	} {
		t.Run(name, func(t *testing.T) {
			p := write(strings.ReplaceAll(name, " ", "_")+".toml", tc.text)
			e := env(map[string]string{"SMITH_FLEET_TOKEN": "f", "SMITH_CONSOLE_PASSWORD": "c"})
			if name == "no fleet token" {
				e = env(nil)
			}
			cfg, err := LoadConfig(p, e)
			if err == nil {
				err = cfg.Check()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	if _, err := LoadConfig(filepath.Join(dir, "missing.toml"), env(nil)); err == nil {
		t.Error("missing file accepted")
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	port, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// startServe runs the serve verb with args on a free loopback port and
// waits until it answers /healthz over scheme with hc (nil: plain
// default client); stop cancels it and returns its exit code.
func startServe(t *testing.T, e map[string]string, scheme string, hc *http.Client, args ...string) (url string, stop func() int) {
	t.Helper()
	if hc == nil {
		hc = http.DefaultClient
	}
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var logs bytes.Buffer
	go func() {
		done <- Run(ctx, append([]string{"serve", "-listen", addr}, args...), &logs, &logs, env(e))
	}()
	url = scheme + "://" + addr
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := hc.Get(url + api.HealthPath)
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited %d before listening: %s", code, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve not listening on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return url, func() int { cancel(); return <-done }
}

// TestServeRestartKeepsHosts runs the serve verb as main does, posts a
// heartbeat, stops it with the context (SIGTERM), starts it again on the
// same registry file and finds the host.
func TestServeRestartKeepsHosts(t *testing.T) {
	dir := t.TempDir()
	e := map[string]string{"SMITH_FLEET_TOKEN": fleetToken, "SMITH_CONSOLE_PASSWORD": consolePw}
	db := filepath.Join(dir, "state", "console.db")

	start := func() (string, func() int) {
		return startServe(t, e, "http", nil, "-db", db, "-log-level", "warn")
	}

	url, stop := start()
	enrolment, err := api.NewClient(url, fleetToken, nil).Enrol(context.Background(), "id-1", "kept-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.NewClient(url, enrolment.Credential, nil).Send(context.Background(), &api.Heartbeat{HostID: "id-1", Hostname: "kept-1", Kernel: "6.12.9-amd64"}); err != nil {
		t.Fatal(err)
	}
	if code := stop(); code != 0 {
		t.Fatalf("serve exit %d", code)
	}

	url, stop = start()
	defer func() {
		if code := stop(); code != 0 {
			t.Errorf("serve exit %d", code)
		}
	}()
	code, out, errOut := runCLI(t, map[string]string{"SMITH_CONSOLE_PASSWORD": consolePw}, "host", "-server", url, "kept-1")
	if code != 0 || !strings.Contains(out, "6.12.9-amd64") {
		t.Errorf("after restart: %d %q %q", code, out, errOut)
	}
	// The credential survived the restart too.
	if _, err := api.NewClient(url, enrolment.Credential, nil).Send(context.Background(), &api.Heartbeat{HostID: "id-1", Hostname: "kept-1"}); err != nil {
		t.Errorf("heartbeat with the credential after a restart: %v", err)
	}
}

func TestServeRefusesBadStart(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
		code int
		want string
	}{
		"no secrets":   {[]string{"serve", "-db", filepath.Join(dir, "a.db")}, nil, 2, "no fleet token"},
		"missing cert": {[]string{"serve", "-db", filepath.Join(dir, "b.db"), "-tls-cert", "/nonexistent.pem", "-tls-key", "/nonexistent.key"}, map[string]string{"SMITH_FLEET_TOKEN": "f", "SMITH_CONSOLE_PASSWORD": "c"}, 1, "TLS certificate"},
		"stray arg":    {[]string{"serve", "extra"}, nil, 2, "unexpected arguments"},
	} {
		t.Run(name, func(t *testing.T) {
			code, _, errOut := runCLI(t, tc.env, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d %q, want %d with %q", code, errOut, tc.code, tc.want)
			}
		})
	}
}

// A host's strings reach the operator's terminal escaped: no escape
// sequence, carriage return, bidi override or stray byte gets through.
func TestHostStringsAreEscaped(t *testing.T) {
	evil := "web\x1b[2J\x1b]0;pwned\x07\r\u202eevil\xff"
	h := api.Host{
		HostID: "id\x1b[1m", Hostname: evil, IPs: []string{"10.0.0.1"}, Kernel: evil, AgentVersion: evil,
		LastError: evil, Counters: api.Counters{Drops: map[string]uint64{evil: 1}},
		Tasks: []api.TaskResult{{Kind: api.TaskKind(evil), Summary: evil}},
	}
	var out bytes.Buffer
	printList(&out, api.HostList{Hosts: []api.Host{h}}, time.Now())
	printHost(&out, h, time.Now())
	text := out.String()
	for _, bad := range []string{"\x1b", "\x07", "\r", "\u202e", "\xff"} {
		if strings.Contains(text, bad) {
			t.Errorf("output contains %q:\n%s", bad, text)
		}
	}
	if !strings.Contains(text, `web\x1b[2J\x1b]0;pwned\x07\x0d\u202eevil\xff`) {
		t.Errorf("escaped host name not shown as expected:\n%s", text)
	}
	if got := safe("web-1 é 中"); got != "web-1 é 中" {
		t.Errorf("printable text changed: %q", got)
	}
}

func TestPlainHTTPNeedsLoopbackOrASetting(t *testing.T) {
	for text, ok := range map[string]bool{
		`listen = "127.0.0.1:8080"`:                  true,
		`listen = "[::1]:8080"`:                      true,
		`listen = "localhost:8080"`:                  true,
		"listen = \":8080\"\ninsecure = true":        true,
		"listen = \":8080\"\ntls_proxy = true":       true,
		"listen = \":8443\"\ntls_self_signed = true": true,
		`listen = ":8080"`:                           false,
		`listen = "0.0.0.0:8080"`:                    false,
	} {
		p := filepath.Join(t.TempDir(), "c.toml")
		os.WriteFile(p, []byte(text), 0o600)
		cfg, err := LoadConfig(p, env(map[string]string{"SMITH_FLEET_TOKEN": "f", "SMITH_CONSOLE_PASSWORD": "c"}))
		if err == nil {
			err = cfg.Check()
		}
		if (err == nil) != ok {
			t.Errorf("%q: %v, want ok=%v", text, err, ok)
		}
	}
	code, _, errOut := runCLI(t, map[string]string{"SMITH_CONSOLE_PASSWORD": "c"}, "count", "-server", "http://10.0.0.1:8080")
	if code != 2 || !strings.Contains(errOut, "in clear") {
		t.Errorf("CLI to plain http on another host: %d %q", code, errOut)
	}
}

// With tls_self_signed the console makes its own certificate on first
// start, keeps it across restarts, and the CLI and an agent reach it
// with the pin that the fingerprint verb prints.
func TestServeSelfSignedCertificateIsPinned(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "console.toml")
	os.WriteFile(conf, []byte("tls_self_signed = true\n"), 0o600)
	e := map[string]string{"SMITH_FLEET_TOKEN": fleetToken, "SMITH_CONSOLE_PASSWORD": consolePw}
	args := []string{"-config", conf, "-db", filepath.Join(dir, "state", "console.db"), "-log-level", "warn"}
	// The first start waits with a client that trusts anything: the pin
	// is not known before the certificate exists.
	trustAll := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	url, stop := startServe(t, e, "https", trustAll, args...)
	certFile := filepath.Join(dir, "state", "console.crt")
	code, pinOut, errOut := runCLI(t, nil, "fingerprint", certFile)
	pin := strings.TrimSpace(pinOut)
	if code != 0 || len(pin) != 64 {
		t.Fatalf("fingerprint: %d %q %q", code, pinOut, errOut)
	}
	if st, err := os.Stat(filepath.Join(dir, "state", "console.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v %v", st, err)
	}
	tlsCfg, err := api.ClientTLS("", pin)
	if err != nil {
		t.Fatal(err)
	}
	agent, err := api.NewClient(url, fleetToken, &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}}).
		Enrolled(context.Background(), "id-tls", "tls-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := agent.Send(context.Background(), &api.Heartbeat{HostID: "id-tls", Hostname: "tls-1"}); err != nil {
		t.Fatalf("agent with the pin: %v", err)
	}
	if code := stop(); code != 0 {
		t.Fatalf("serve exit %d", code)
	}

	pinned := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	url, stop = startServe(t, e, "https", pinned, args...)
	defer stop()
	ce := map[string]string{"SMITH_CONSOLE_PASSWORD": consolePw}
	if code, out, errOut := runCLI(t, ce, "host", "-server", url, "-pin", pin, "tls-1"); code != 0 || !strings.Contains(out, "id-tls") {
		t.Errorf("CLI with the pin after a restart: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, ce, "count", "-server", url, "-pin", strings.Repeat("ab", 32)); code != 1 || !strings.Contains(errOut, "does not match the pinned") {
		t.Errorf("CLI with a wrong pin: %d %q", code, errOut)
	}
	if code, _, _ := runCLI(t, ce, "count", "-server", url); code != 1 {
		t.Errorf("CLI without pin or CA accepted a self-signed certificate: %d", code)
	}
	resp, err := pinned.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Strict-Transport-Security") == "" {
		t.Error("HTTPS answer without HSTS")
	}
}

// serve with redis_url keeps the registry in Redis: a second console on
// the same Redis (another port, another db file) knows the host.
func TestServeWithRedis(t *testing.T) {
	url := redistest.Start(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "console.toml")
	os.WriteFile(conf, []byte(fmt.Sprintf("redis_url = %q\nredis_prefix = \"cli:\"\n", url)), 0o600)
	e := map[string]string{"SMITH_FLEET_TOKEN": fleetToken, "SMITH_CONSOLE_PASSWORD": consolePw}
	first, stopFirst := startServe(t, e, "http", nil, "-config", conf, "-db", filepath.Join(dir, "a", "console.db"), "-log-level", "warn")
	agent, err := api.NewClient(first, fleetToken, nil).Enrolled(context.Background(), "id-r", "redis-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := agent.Send(context.Background(), &api.Heartbeat{HostID: "id-r", Hostname: "redis-1", Kernel: "6.1.0-r"}); err != nil {
		t.Fatal(err)
	}
	if code := stopFirst(); code != 0 {
		t.Fatalf("first console exit %d", code)
	}
	second, stopSecond := startServe(t, e, "http", nil, "-config", conf, "-db", filepath.Join(dir, "b", "console.db"), "-log-level", "warn")
	defer stopSecond()
	code, out, errOut := runCLI(t, map[string]string{"SMITH_CONSOLE_PASSWORD": consolePw}, "host", "-server", second, "redis-1")
	if code != 0 || !strings.Contains(out, "6.1.0-r") {
		t.Errorf("second console: %d %q %q", code, out, errOut)
	}
}
