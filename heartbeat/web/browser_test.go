package web_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"smith/heartbeat/api"
	"smith/heartbeat/consoletest"
	"smith/heartbeat/server"
	"smith/heartbeat/store"
)

// chromium finds the browser: $SMITH_CHROMIUM, else Debian's package.
func chromium(t *testing.T) string {
	t.Helper()
	path := os.Getenv("SMITH_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath(path); err != nil {
		if os.Getenv("SMITH_SKIP_BROWSER") == "1" {
			t.Skipf("no browser at %s and SMITH_SKIP_BROWSER=1", path)
		}
		t.Fatalf("no browser at %s: install Debian's chromium (scripts/deps.sh does), or set SMITH_SKIP_BROWSER=1 to skip this test", path)
	}
	return path
}

// screenshot saves the page in the test's temp dir, and also in
// $SMITH_ARTIFACT_DIR when set (the temp dir goes away with the test).
func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dirs := []string{dir}
	if keep := os.Getenv("SMITH_ARTIFACT_DIR"); keep != "" {
		dirs = append(dirs, keep)
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatalf("screenshot %s: %v", p, err)
		}
		t.Logf("screenshot: %s", p)
	}
}

// TestConsoleInBrowser drives a real headless Chromium through the console:
// a wrong password is refused, the right one shows the hosts that test
// agents registered with the fleet counts, the prefix filter narrows the
// table, one host turns offline when it falls silent, and its detail view
// shows its latest task results.
func TestConsoleInBrowser(t *testing.T) {
	browser := chromium(t)
	artifacts := t.TempDir()

	clk := consoletest.NewClock(time.Now())
	reg, err := store.Open(filepath.Join(t.TempDir(), "hosts.db"), store.Policy{
		OfflineAfter:  90 * time.Second,
		TaskIntervals: map[api.TaskKind]time.Duration{api.TaskUsers: time.Hour},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	quiet := consoletest.QuietLog()
	srv, err := server.New(server.Config{
		FleetToken: "fleet", ConsolePassword: "open sesame", Registry: reg, Now: clk.Now, Log: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	// Alerts are evaluated by the maintenance loop, as in smith-console.
	maintainCtx, stopMaintain := context.WithCancel(context.Background())
	maintained := make(chan struct{})
	go func() { srv.Maintain(maintainCtx, 100*time.Millisecond); close(maintained) }()
	defer func() { stopMaintain(); <-maintained }()

	fleet := api.NewClient(ts.URL, "fleet", ts.Client())
	agents := map[string]*api.Client{}
	beat := func(id, name, ip, kernel string, results ...api.TaskResult) {
		t.Helper()
		if agents[id] == nil {
			cl, err := fleet.Enrolled(context.Background(), id, name)
			if err != nil {
				t.Fatalf("enrol %s: %v", name, err)
			}
			agents[id] = cl
		}
		_, err := agents[id].Send(context.Background(), &api.Heartbeat{
			HostID: id, Hostname: name, IPs: []string{ip},
			AgentVersion: "1.0.0", ModuleVersion: "1.0.0", ABIVersion: "1.0", Transport: "shm",
			Kernel: kernel, UptimeSeconds: 86400 * 3, AgentUptimeSeconds: 3600, IntervalSeconds: 30,
			Counters: api.Counters{
				EventsRead: 120000, EventsSent: 119990,
				Drops: map[string]uint64{"ring_full": 10}, SpoolBytes: 2 << 20, SpoolEvents: 800, RingFill: 0.12,
			},
			TaskResults: results,
		})
		if err != nil {
			t.Fatalf("heartbeat %s: %v", name, err)
		}
	}
	users := api.TaskResult{
		ID: "users-1", Kind: api.TaskUsers, StartedAt: clk.Now(), FinishedAt: clk.Now(), Items: 27,
		Summary: "27 users, 2 with a login shell: root, deploy", Facts: map[string]string{"uid0": "root"},
	}
	beat("id-web-1", "web-1", "10.0.0.11", "6.1.0-28-amd64", users)
	beat("id-web-2", "web-2", "10.0.0.12", "6.12.9-amd64")
	beat("id-db-1", "db-1", "10.0.1.21", "5.10.0-33-amd64")
	// new-1 enrolled and has not sent a heartbeat yet; a second machine
	// with web-2's machine-id tries to enrol and is refused.
	if _, err := fleet.Enrol(context.Background(), "id-new-1", "new-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := fleet.Enrol(context.Background(), "id-web-2", "web-2-clone"); !api.HasCode(err, "already_enrolled") {
		t.Fatalf("clone enrolment: %v", err)
	}

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(browser),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// CI containers often have a small /dev/shm.
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 800),
	)
	defer cancelAlloc()
	tab, cancelTab := chromedp.NewContext(alloc)
	defer cancelTab()
	// The first action starts the browser; it lives as long as tab, so
	// the time limit goes on a context derived after it.
	if err := chromedp.Do(tab, chromedp.Navigate(ts.URL)); err != nil {
		t.Fatalf("start %s: %v", browser, err)
	}
	ctx, cancelTimeout := context.WithTimeout(tab, 90*time.Second)
	defer cancelTimeout()

	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	waitFor := func(cond string, timeout time.Duration) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingTimeout(timeout))
	}
	rows := func(sel string) int {
		t.Helper()
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", sel)))
		if err != nil {
			t.Fatalf("count %s: %v", sel, err)
		}
		return n
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	counts := func() string {
		return text("#count-total") + " " + text("#count-online") + " " + text("#count-offline")
	}

	// Not logged in: the login form, and a wrong password is refused.
	do("wrong password",
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SendKeys(chromedp.CSS("#password"), "guess"),
		chromedp.Click(chromedp.CSS(`#login-form button[type="submit"]`)),
		waitFor(`document.getElementById("login-error").textContent !== ""`, 10*time.Second),
	)
	if got := text("#login-error"); got != "Wrong password." {
		t.Errorf("wrong password message = %q", got)
	}
	if n := rows("#hosts tbody tr"); n != 0 {
		t.Errorf("%d host rows before login", n)
	}

	// Logged in: three hosts online, one enrolled without a heartbeat,
	// and web-2 marked with the refused clone.
	do("login",
		chromedp.SendKeys(chromedp.CSS("#password"), "open sesame"),
		chromedp.Click(chromedp.CSS(`#login-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#hosts")),
		waitFor(`document.querySelectorAll("#hosts tbody tr").length === 4`, 10*time.Second),
	)
	if got := counts(); got != "4 3 1" {
		t.Errorf("counts total/online/offline = %s, want 4 3 1", got)
	}
	for _, name := range []string{"web-1", "web-2", "db-1"} {
		if rows(fmt.Sprintf(`#hosts tr[data-host=%q][data-status="online"]`, name)) != 1 {
			t.Errorf("%s not listed online", name)
		}
	}
	if rows(`#hosts tr[data-host="new-1"][data-status="enrolled"]`) != 1 {
		t.Errorf("new-1 not listed as enrolled: %q", text(`#hosts tr[data-host="new-1"]`))
	}
	if rows(`#hosts tr[data-conflict="true"]`) != 1 || !strings.Contains(text(`#hosts tr[data-host="web-2"]`), "identity conflict") {
		t.Errorf("web-2 row = %q, want the identity conflict", text(`#hosts tr[data-host="web-2"]`))
	}
	if row := text(`#hosts tr[data-host="db-1"]`); !strings.Contains(row, "5.10.0-33-amd64") || !strings.Contains(row, "2.0 MiB") {
		t.Errorf("db-1 row = %q, want its kernel and spool", row)
	}

	// The prefix filter narrows the table, by name and by IP.
	for _, tc := range []struct {
		prefix string
		rows   int
	}{{"web", 2}, {"10.0.1.", 1}, {"", 4}} {
		do("filter "+tc.prefix,
			// Typing fires one input event per key; setting the value
			// and firing one event tests the same handler.
			chromedp.Evaluate[chromedp.Void](fmt.Sprintf(
				`(f => { f.value = %q; f.dispatchEvent(new Event("input")); })(document.getElementById("filter"))`, tc.prefix)),
			waitFor(fmt.Sprintf(`document.querySelectorAll("#hosts tbody tr").length === %d`, tc.rows), 10*time.Second),
		)
	}

	// db-1 falls silent past the offline timeout; the others keep
	// heartbeating. The page's periodic refresh shows the change.
	clk.Advance(100 * time.Second)
	beat("id-web-1", "web-1", "10.0.0.11", "6.1.0-28-amd64")
	beat("id-web-2", "web-2", "10.0.0.12", "6.12.9-amd64")
	// web-2 drops 25 events: its totals since the agent started were 10
	// (too old to alert on), the 25 are recent.
	if _, err := agents["id-web-2"].Send(context.Background(), &api.Heartbeat{
		HostID: "id-web-2", Hostname: "web-2", IPs: []string{"10.0.0.12"}, AgentVersion: "1.0.0",
		ModuleVersion: "1.0.0", ABIVersion: "1.0", Kernel: "6.12.9-amd64", AgentUptimeSeconds: 3700,
		Counters: api.Counters{Drops: map[string]uint64{"ring_full": 35}},
	}); err != nil {
		t.Fatal(err)
	}
	do("db-1 turns offline",
		waitFor(`document.querySelector('#hosts tr[data-host="db-1"]')?.dataset.status === "offline"`, 20*time.Second))
	do("drop and offline alerts",
		waitFor(`document.querySelector('#alerts-list li[data-kind="drops"][data-host="web-2"]') !== null &&
			document.querySelector('#alerts-list li[data-kind="offline"][data-host="db-1"]') !== null`, 20*time.Second))
	if got := text("#alerts-count"); got != "2" {
		t.Errorf("%s alerts firing, want 2: %q", got, text("#alerts"))
	}
	if a := text(`#alerts-list li[data-kind="drops"]`); !strings.Contains(a, "25 events dropped") || !strings.Contains(a, "ring_full 25") {
		t.Errorf("drops alert = %q", a)
	}
	if row := text(`#hosts tr[data-host="web-2"]`); !strings.Contains(row, "drops") || !strings.Contains(row, "25") {
		t.Errorf("web-2 row = %q, want its drops alert and 25 recent drops", row)
	}
	if row := text(`#hosts tr[data-host="web-1"]`); strings.Contains(row, "drops") {
		t.Errorf("web-1 alerts on old drops: %q", row)
	}
	if got := counts(); got != "4 2 2" {
		t.Errorf("counts after silence = %s, want 4 2 2", got)
	}
	if n := rows(`#hosts tr[data-status="offline"]`); n != 1 {
		t.Errorf("%d offline rows, want 1", n)
	}
	screenshot(t, ctx, artifacts, "console-hosts.png")

	// The detail view of web-1 shows its latest task result.
	do("detail view",
		chromedp.Click(chromedp.CSS(`#hosts tr[data-host="web-1"] a`)),
		chromedp.WaitVisible(chromedp.CSS("#detail")),
		waitFor(`document.querySelectorAll('#detail-tasks tr[data-kind="users"]').length === 1`, 10*time.Second),
	)
	if got := text("#detail-name"); got != "web-1" {
		t.Errorf("detail of %q", got)
	}
	if row := text(`#detail-tasks tr[data-kind="users"]`); !strings.Contains(row, users.Summary) || !strings.Contains(row, "uid0=root") {
		t.Errorf("users task row = %q", row)
	}
	if health := text("#detail-health"); !strings.Contains(health, "ring_full 10") {
		t.Errorf("health panel = %q, want drops by reason", health)
	}
	if ident := text("#detail-identity"); !strings.Contains(ident, "Enrolled") || !strings.Contains(ident, "127.0.0.1") {
		t.Errorf("identity panel = %q, want the enrolment", ident)
	}
	screenshot(t, ctx, artifacts, "console-host.png")

	// web-2's view names the clone that was refused.
	do("web-2 view",
		chromedp.Evaluate[chromedp.Void](`location.hash = "#/host/id-web-2"`),
		waitFor(`document.getElementById("detail-name").textContent === "web-2"`, 10*time.Second),
	)
	if ident := text("#detail-identity"); !strings.Contains(ident, "web-2-clone") || !strings.Contains(ident, "enrolment for this enrolled host id") {
		t.Errorf("web-2 identity panel = %q, want the refused clone", ident)
	}

	// Decommission db-1 from its view: asked, then done; the fleet view
	// no longer lists it and its agent's credential is refused.
	do("decommission db-1",
		chromedp.Evaluate[chromedp.Void](`location.hash = "#/host/id-db-1"`),
		waitFor(`document.getElementById("detail-name").textContent === "db-1"`, 10*time.Second),
		chromedp.Click(chromedp.CSS("#decommission")),
		chromedp.WaitVisible(chromedp.CSS("#decommission-confirm")),
	)
	screenshot(t, ctx, artifacts, "console-decommission.png")
	do("confirm decommission",
		chromedp.Click(chromedp.CSS("#decommission-confirm")),
		chromedp.WaitVisible(chromedp.CSS("#hosts")),
		waitFor(`document.querySelectorAll("#hosts tbody tr").length === 3 && !document.querySelector('#hosts tr[data-host="db-1"]')`, 10*time.Second),
	)
	if got := counts(); got != "3 2 1" {
		t.Errorf("counts after decommission = %s, want 3 2 1", got)
	}
	if _, err := agents["id-db-1"].Send(context.Background(), &api.Heartbeat{HostID: "id-db-1", Hostname: "db-1"}); !api.HasCode(err, "unknown_credential") {
		t.Errorf("db-1's agent after decommission: %v", err)
	}
}
