package store

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"smith/heartbeat/api"
)

func kindsOf(events []api.AlertEvent) []string {
	var out []string
	for _, e := range events {
		out = append(out, e.State+" "+e.HostID+" "+e.Kind)
	}
	return out
}

// Drops are judged over the window, not as totals: an old burst stops
// alerting once the window has passed it, a new one alerts again.
func TestDropsAlertOverTheWindowNotTotals(t *testing.T) {
	r, err := Open(filepath.Join(t.TempDir(), "hosts.db"), Policy{OfflineAfter: 90 * time.Second, DropWindow: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	hb := api.Heartbeat{HostID: "h", Hostname: "web-1", AgentVersion: "1", ModuleVersion: "m1", AgentUptimeSeconds: 10,
		Counters: api.Counters{Drops: map[string]uint64{"ring_full": 0}, SpoolBytes: 25, SpoolMaxBytes: 100}}
	now := t0
	beat := func(d time.Duration, drops uint64) {
		now = now.Add(d)
		hb.AgentUptimeSeconds += int64(d / time.Second)
		hb.Counters.Drops = map[string]uint64{"ring_full": drops}
		r.heartbeat(&hb, "", now)
	}
	beat(0, 0)
	if ev := r.Evaluate(now); len(ev) != 0 {
		t.Errorf("healthy host: %v", kindsOf(ev))
	}
	beat(30*time.Second, 40) // a burst of 40
	ev := r.Evaluate(now)
	if !slices.Equal(kindsOf(ev), []string{"firing h drops"}) || ev[0].Detail != "40 events dropped in the last 5m0s (ring_full 40)" {
		t.Fatalf("after a burst: %+v", ev)
	}
	h, _ := r.Lookup("h", now)
	if h.DropsRecentTotal != 40 || h.DropsTotal != 40 || h.SpoolFillPct != 25 || !h.ModuleLoaded || len(h.Alerts) != 1 {
		t.Errorf("host view: %+v", h)
	}
	// Five minutes of heartbeats without new drops: the total stays
	// 40, the alert resolves.
	for i := 0; i < 9; i++ {
		beat(30*time.Second, 40)
	}
	if ev := r.Evaluate(now); len(ev) != 0 {
		t.Errorf("4m30s after the burst: %v", kindsOf(ev))
	}
	beat(30*time.Second, 40)
	if ev := r.Evaluate(now); !slices.Equal(kindsOf(ev), []string{"resolved h drops"}) {
		t.Errorf("5 min after the burst: %v", kindsOf(ev))
	}
	if h, _ := r.Lookup("h", now); h.DropsRecentTotal != 0 || h.DropsTotal != 40 || len(h.Alerts) != 0 {
		t.Errorf("after the window: recent %d total %d alerts %v", h.DropsRecentTotal, h.DropsTotal, h.Alerts)
	}
	// The agent restarts with fresh counters: 3 new drops are recent.
	hb.AgentUptimeSeconds = 0
	beat(30*time.Second, 3)
	if ev := r.Evaluate(now); !slices.Equal(kindsOf(ev), []string{"firing h drops"}) {
		t.Errorf("after a restart with drops: %v", kindsOf(ev))
	}
}

func TestModuleUnloadedOfflineAndDrift(t *testing.T) {
	r, err := Open(filepath.Join(t.TempDir(), "hosts.db"), Policy{OfflineAfter: 90 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, id := range []string{"a", "b", "c"} {
		r.heartbeat(&api.Heartbeat{HostID: id, Hostname: id, AgentVersion: "1.1", ModuleVersion: "1.0"}, "", t0)
	}
	r.heartbeat(&api.Heartbeat{HostID: "old", Hostname: "old", AgentVersion: "1.0", ModuleVersion: "1.0"}, "", t0)
	if ev := r.Evaluate(t0); len(ev) != 0 {
		t.Fatalf("healthy fleet: %v", kindsOf(ev))
	}
	l := r.List("", t0)
	drift := 0
	for _, h := range l.Hosts {
		if h.VersionDrift {
			drift++
			if h.HostID != "old" {
				t.Errorf("%s drifts", h.HostID)
			}
		}
	}
	if drift != 1 || l.AgentVersion != "1.1" || l.ModuleVersion != "1.0" {
		t.Errorf("drift %d, fleet versions %q %q", drift, l.AgentVersion, l.ModuleVersion)
	}
	// b's module is unloaded; c falls silent.
	t1 := t0.Add(100 * time.Second)
	for _, id := range []string{"a", "old"} {
		r.heartbeat(&api.Heartbeat{HostID: id, Hostname: id, AgentVersion: "1.1", ModuleVersion: "1.0"}, "", t1)
	}
	r.heartbeat(&api.Heartbeat{HostID: "b", Hostname: "b", AgentVersion: "1.1"}, "", t1)
	got := kindsOf(r.Evaluate(t1))
	if !slices.Equal(got, []string{"firing b module_unloaded", "firing c offline"}) {
		t.Errorf("alerts: %v", got)
	}
	if l := r.List("", t1); len(l.Alerts) != 2 {
		t.Errorf("fleet alerts: %+v", l.Alerts)
	}
	// Both come back.
	t2 := t1.Add(30 * time.Second)
	for _, id := range []string{"b", "c"} {
		r.heartbeat(&api.Heartbeat{HostID: id, Hostname: id, AgentVersion: "1.1", ModuleVersion: "1.0"}, "", t2)
	}
	if got := kindsOf(r.Evaluate(t2)); !slices.Equal(got, []string{"resolved b module_unloaded", "resolved c offline"}) {
		t.Errorf("resolved: %v", got)
	}
}
