package sink

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func batchOf(from, n int) *Batch {
	b := NewBatch(nil)
	for i := from; i < from+n; i++ {
		b.End(fmt.Appendf(b.Buf(), `{"seq":%d}`, i))
	}
	return b
}

// drain peeks and advances until the spool is empty, returning the events.
func drain(t *testing.T, s *Spool, step int) []string {
	t.Helper()
	var got []string
	var buf []byte
	var evs [][]byte
	for {
		var cur Cursor
		var err error
		evs, buf, cur, err = s.Peek(step, buf, evs)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			return got
		}
		for _, e := range evs {
			got = append(got, string(e))
		}
		if err := s.Advance(cur, len(evs)); err != nil {
			t.Fatal(err)
		}
	}
}

func want(from, n int) []string {
	var w []string
	for i := from; i < from+n; i++ {
		w = append(w, fmt.Sprintf(`{"seq":%d}`, i))
	}
	return w
}

func equal(t *testing.T, got, want []string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %d events %v\nwant %d %v", len(got), got, len(want), want)
	}
}

func TestSpoolKeepsOrderAcrossSegmentsAndReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenSpool(dir, 1<<20, 4096) // many small segments
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if n, err := s.Append(batchOf(i*100, 100), 0); err != nil || n != 100 {
			t.Fatalf("append: %d %v", n, err)
		}
	}
	if ev, _ := s.Len(); ev != 1000 {
		t.Fatalf("Len = %d events", ev)
	}
	equal(t, drain(t, s, 7), want(0, 1000))
	s.Close()

	// Reopen after a partial read: the unread rest comes back in order.
	s, _ = OpenSpool(dir, 1<<20, 4096)
	s.Append(batchOf(0, 300), 0)
	evs, _, cur, err := s.Peek(120, nil, nil)
	if err != nil || len(evs) != 120 {
		t.Fatal(len(evs), err)
	}
	s.Advance(cur, len(evs))
	s.Close()
	s, err = OpenSpool(dir, 1<<20, 4096)
	if err != nil {
		t.Fatal(err)
	}
	if ev, _ := s.Len(); ev != 180 {
		t.Fatalf("after reopen Len = %d, want 180", ev)
	}
	equal(t, drain(t, s, 50), want(120, 180))
	if ev, bytes := s.Len(); ev != 0 || bytes != 0 {
		t.Fatalf("drained spool holds %d events, %d bytes", ev, bytes)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("drained spool keeps %d segments", len(segs))
	}
}

func TestSpoolBoundCountsWhatDoesNotFit(t *testing.T) {
	s, err := OpenSpool(t.TempDir(), 1000, 4096)
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.Append(batchOf(0, 100), 0) // 18 bytes each with header
	if !errors.Is(err, ErrSpoolFull) || n == 0 || n >= 100 {
		t.Fatalf("Append = %d, %v; want some written and ErrSpoolFull", n, err)
	}
	if _, bytes := s.Len(); bytes > 1000 {
		t.Fatalf("spool holds %d bytes over its bound", bytes)
	}
	equal(t, drain(t, s, 1000), want(0, n))
}

func TestSpoolCutsTornTail(t *testing.T) {
	dir := t.TempDir()
	s, _ := OpenSpool(dir, 1<<20, 1<<16)
	s.Append(batchOf(0, 10), 0)
	s.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	f, _ := os.OpenFile(segs[len(segs)-1], os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte{200, 0, 0, 0, 1, 2, 3}) // a header whose event never came
	f.Close()
	s, err := OpenSpool(dir, 1<<20, 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	s.Append(batchOf(10, 5), 0)
	equal(t, drain(t, s, 4), want(0, 15))
}
