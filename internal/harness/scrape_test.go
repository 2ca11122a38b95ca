// SPDX-License-Identifier: GPL-2.0

package harness

import (
	"context"
	"strings"
	"testing"
	"time"

	"smith/agent/metrics"
)

// The scraper reads what agent/metrics serves, by its names.
func TestScrapeReadsTheAgentsEndpoint(t *testing.T) {
	var c metrics.Counters
	c.Read.Add(5)
	c.AddDrop(metrics.DropSpoolFull, 3)
	c.AddDrop(metrics.DropTooLarge, 2)
	c.SpoolEvents.Store(4)
	srv, err := metrics.Serve("127.0.0.1:0", &c)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	m, err := Scrape(context.Background(), MetricsURL(srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := m.Value(metrics.NameRead); !ok || v != 5 {
		t.Errorf("read %v %v", v, ok)
	}
	if v, ok := m.Dropped(metrics.DropSpoolFull.String()); !ok || v != 3 {
		t.Errorf("spool_full %v %v", v, ok)
	}
	if v, ok := m.Dropped(metrics.RingDropFull); !ok || v != 0 {
		t.Errorf("ring_full %v %v", v, ok)
	}
	if v, ok := m.Value(metrics.NameSpoolEvents); !ok || v != 4 {
		t.Errorf("spool events %v %v", v, ok)
	}
	if s := m.Sum(metrics.NameDropped); s != 5 {
		t.Errorf("drops sum %v", s)
	}
	if by := m.ByLabel(metrics.NameDropped, metrics.LabelReason); by["message_too_large"] != 2 || len(by) != len(metrics.DropNames)+5 {
		t.Errorf("by reason %v", by)
	}
	if _, ok := m.Value("smith_no_such_series"); ok {
		t.Error("a missing series was found")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := Scrape(ctx, "http://127.0.0.1:1/metrics"); err == nil {
		t.Error("no error with nothing listening")
	}
}

func TestParseMetricsLabelsAndErrors(t *testing.T) {
	m, err := ParseMetrics(strings.NewReader("# HELP x y\nx{b=\"2\",a=\"q\\\"1\"} 7 1700000000\ny 1.5\n"))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := m.Value("x", "a", `q"1`, "b", "2"); !ok || v != 7 {
		t.Errorf("x %v %v", v, ok)
	}
	if v, ok := m.Value("y"); !ok || v != 1.5 {
		t.Errorf("y %v %v", v, ok)
	}
	// A series whose name only starts with another's is not summed in.
	m, err = ParseMetrics(strings.NewReader("d{reason=\"a\"} 12\nd{reason=\"b\"} 3\nd_extra 100\n"))
	if err != nil || m.Sum("d") != 15 || len(m.ByLabel("d", "reason")) != 2 {
		t.Errorf("sum %v by label %v (%v); want 15 from two reasons", m.Sum("d"), m.ByLabel("d", "reason"), err)
	}
	for _, bad := range []string{"x{a=1} 2\n", "x{a=\"1} 2\n", "x 1e\n", "x\n"} {
		if _, err := ParseMetrics(strings.NewReader(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
