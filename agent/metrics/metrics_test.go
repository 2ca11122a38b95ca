package metrics

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestServeExposesCounters(t *testing.T) {
	c := &Counters{}
	c.Read.Add(10)
	c.Sent.Add(7)
	c.Spooled.Add(3)
	c.AddDrop(DropSpoolFull, 2)
	c.AddFiltered(FilterSelf)
	c.SpoolBytes.Store(4096)
	ring := func() Ring { return Ring{Fill: 0.25, Written: 100, DroppedFull: 5, HookMissed: 1, Lost: 5} }
	c.RingStats.Store(&ring)
	s, err := Serve("127.0.0.1:0", c)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	resp, err := http.Get("http://" + s.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		"smith_events_read_total 10",
		"smith_events_sent_total 7",
		"smith_events_spooled_total 3",
		`smith_events_dropped_total{reason="spool_full"} 2`,
		`smith_events_dropped_total{reason="ring_full"} 5`,
		`smith_events_dropped_total{reason="hook_missed"} 1`,
		`smith_events_filtered_total{reason="self"} 1`,
		"smith_ring_fill_ratio 0.25",
		"smith_ring_lost_total 5",
		"smith_module_records_written_total 100",
		"smith_spool_bytes 4096",
	} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("missing %q", want)
		}
	}
	if d := c.Drops(); d["spool_full"] != 2 || d["ring_full"] != 5 {
		t.Errorf("Drops() = %v", d)
	}
}

// Drop counters saved with Persist survive the process: a new Counters on
// the same file goes on from them; a damaged file starts at 0 and says so.
func TestPersistedDropsSurviveRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "drops")
	c := &Counters{}
	if note, err := c.Persist(path); err != nil || note == "" {
		t.Fatalf("first Persist: note %q err %v", note, err)
	}
	c.AddDrop(DropSpoolFull, 7)
	c.AddDrop(DropSpoolError, 2)
	// No Close, no flush: as after a SIGKILL.
	c2 := &Counters{}
	if note, err := c2.Persist(path); err != nil || note != "" {
		t.Fatalf("second Persist: note %q err %v", note, err)
	}
	if c2.Dropped(DropSpoolFull) != 7 || c2.Dropped(DropSpoolError) != 2 {
		t.Fatalf("after restart: spool_full %d spool_error %d", c2.Dropped(DropSpoolFull), c2.Dropped(DropSpoolError))
	}
	c2.AddDrop(DropSpoolFull, 1)
	raw, _ := os.ReadFile(path)
	raw[20] ^= 1
	os.WriteFile(path, raw, 0o600)
	c3 := &Counters{}
	if note, err := c3.Persist(path); err != nil || note == "" || c3.Dropped(DropSpoolFull) != 0 {
		t.Fatalf("corrupt file: note %q err %v spool_full %d", note, err, c3.Dropped(DropSpoolFull))
	}
}
