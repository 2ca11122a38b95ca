package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"smith/heartbeat/api"
)

// A host that drops events alerts (log, list, webhook, /metrics) and the
// alert resolves once the drop window has passed the burst; a host that
// goes silent alerts offline.
func TestDropAndOfflineAlerts(t *testing.T) {
	var mu sync.Mutex
	var got []api.AlertEvent
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev api.AlertEvent
		json.NewDecoder(r.Body).Decode(&ev)
		mu.Lock()
		got = append(got, ev)
		mu.Unlock()
	}))
	defer hook.Close()
	f := newFixture(t)
	wh := NewWebhook(hook.URL, hook.Client(), f.srv.cfg.Log)
	f.srv.cfg.Webhook = wh
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go wh.Run(ctx)

	hb := heartbeat("id-1", "web-1")
	hb.Counters.Drops = map[string]uint64{"ring_full": 0}
	db := heartbeat("id-2", "db-1")
	db.Counters.Drops = nil
	f.mustSend(hb)
	f.mustSend(db)
	f.srv.maintain()
	f.clock.Advance(30 * time.Second)
	hb.AgentUptimeSeconds += 30
	hb.Counters.Drops = map[string]uint64{"ring_full": 12}
	f.mustSend(hb)
	f.mustSend(db)
	f.srv.maintain()

	l := f.list("")
	if len(l.Alerts) != 1 || l.Alerts[0].Kind != api.AlertDrops || l.Alerts[0].Hostname != "web-1" ||
		!strings.Contains(l.Alerts[0].Detail, "ring_full 12") {
		t.Fatalf("fleet alerts: %+v", l.Alerts)
	}
	// /metrics: the console credential, and the firing alert.
	if code, _ := f.do("GET", api.MetricsPath, ""); code != 401 {
		t.Errorf("anonymous /metrics: %d", code)
	}
	code, body := f.do("GET", api.MetricsPath, consolePw)
	for _, want := range []string{
		`smith_console_alerts_firing{kind="drops"} 1`,
		`smith_console_hosts{state="online"} 2`,
		`smith_console_heartbeats_total{status="200"} 4`,
		`smith_console_fleet_recent_drops{reason="ring_full"} 12`,
	} {
		if code != 200 || !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q (%d)", want, code)
		}
	}

	// Five minutes later without new drops the alert resolves; db-1,
	// silent meanwhile, goes offline.
	for i := 0; i < 10; i++ {
		f.clock.Advance(30 * time.Second)
		hb.AgentUptimeSeconds += 30
		f.mustSend(hb)
		f.srv.maintain()
	}
	if l := f.list(""); len(l.Alerts) != 1 || l.Alerts[0].Kind != api.AlertOffline || l.Alerts[0].Hostname != "db-1" {
		t.Errorf("alerts after the window: %+v", l.Alerts)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if (n >= 3 && wh.Sent.Load() >= 3) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	var seq []string
	for _, ev := range got {
		seq = append(seq, ev.State+" "+ev.Kind+" "+ev.Hostname)
	}
	want := "firing drops web-1,firing offline db-1,resolved drops web-1"
	if strings.Join(seq, ",") != want {
		t.Errorf("webhook got %v, want %s", seq, want)
	}
	if wh.Sent.Load() != 3 || wh.Failed.Load() != 0 {
		t.Errorf("webhook sent %d failed %d", wh.Sent.Load(), wh.Failed.Load())
	}
}
