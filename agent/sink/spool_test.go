package sink

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// batchOf is a batch of the events {"seq":from} to from+n-1; those at
// the indices keep are marked by Keep, as the pipeline marks "lost N"
// events.
func batchOf(from, n int, keep ...int) *Batch {
	b := NewBatch(nil)
	for i := range n {
		b.End(fmt.Appendf(b.Buf(), `{"seq":%d}`, from+i))
		if slices.Contains(keep, i) {
			b.Keep()
		}
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

// A full spool still takes the events that report a loss, from a reserve
// of a sixteenth of its bound; past the reserve they are dropped like any
// other, and a spill (a copy of a batch in flight) never uses it.
func TestSpoolFullStillTakesLossReports(t *testing.T) {
	s, err := OpenSpool(t.TempDir(), 1600, 4096) // reserve 100 bytes
	if err != nil {
		t.Fatal(err)
	}
	// Events 0-9 take 21 bytes with their header, 10-99 22: 0-72 fit
	// (1,596 bytes); of the rest only the kept ones, 80, 90 and 99.
	n, err := s.Append(batchOf(0, 100, 50, 80, 90, 99), 0)
	if !errors.Is(err, ErrSpoolFull) || n != 76 {
		t.Fatalf("Append = %d, %v; want 76 (73 under the bound, 3 kept) and ErrSpoolFull", n, err)
	}
	// From index 5 on: a kept event before from is not written again.
	// 38 bytes are left in the reserve: one kept event of 23 fits.
	n, err = s.Append(batchOf(100, 10, 0, 6, 7, 8), 5)
	if !errors.Is(err, ErrSpoolFull) || n != 1 {
		t.Fatalf("second Append = %d, %v; want the one kept event that fits in the reserve", n, err)
	}
	if w, _, _, err := s.AppendSpan([][]byte{[]byte(`{"x":1}`)}); w != 0 || !errors.Is(err, ErrSpoolFull) {
		t.Fatalf("AppendSpan into a full spool = %d, %v; want 0 and ErrSpoolFull", w, err)
	}
	if _, bytes := s.Len(); bytes != 1685 {
		t.Fatalf("spool holds %d bytes, want 1,685 (bound 1,600 + reserve 100 at most)", bytes)
	}
	equal(t, drain(t, s, 1000), append(want(0, 73), `{"seq":80}`, `{"seq":90}`, `{"seq":99}`, `{"seq":106}`))
}

func lastSegment(t *testing.T, dir string) string {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) == 0 {
		t.Fatal("no segment")
	}
	return segs[len(segs)-1]
}

// A segment whose tail is not whole records: cut and counted once, and
// the spool goes on.
func TestSpoolCutsBadTail(t *testing.T) {
	for _, tc := range []struct {
		name string
		tail []byte
	}{
		{"torn tail", []byte{200, 0, 0, 0, 1, 2, 3}}, // a header whose event never came
		// What a file system may leave after a power loss: the size
		// grew, the data never came.
		{"zero-filled tail", make([]byte, 4096)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, _ := OpenSpool(dir, 1<<20, 1<<16)
			s.Append(batchOf(0, 10), 0)
			s.Close()
			f, _ := os.OpenFile(lastSegment(t, dir), os.O_WRONLY|os.O_APPEND, 0)
			f.Write(tc.tail)
			f.Close()
			s, err := OpenSpool(dir, 1<<20, 1<<16)
			if err != nil {
				t.Fatal(err)
			}
			if c := s.Corrupt(); c != 1 {
				t.Fatalf("Corrupt = %d, want 1 (the %s)", c, tc.name)
			}
			s.Append(batchOf(10, 5), 0)
			equal(t, drain(t, s, 4), want(0, 15))
		})
	}
}

// corruptEvent flips a byte inside the event {"seq":n} of a segment.
func corruptEvent(t *testing.T, path string, n int) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(raw), fmt.Sprintf(`{"seq":%d}`, n))
	if i < 0 {
		t.Fatalf("event %d not in %s", n, path)
	}
	raw[i+2] ^= 0xff
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestSpoolSkipsCorruptRecordInTheMiddle(t *testing.T) {
	for _, reopen := range []bool{false, true} {
		t.Run(fmt.Sprintf("reopen=%v", reopen), func(t *testing.T) {
			dir := t.TempDir()
			s, _ := OpenSpool(dir, 1<<20, 1<<16)
			s.Append(batchOf(0, 10), 0)
			corruptEvent(t, lastSegment(t, dir), 4)
			if reopen {
				s.Close()
				var err error
				if s, err = OpenSpool(dir, 1<<20, 1<<16); err != nil {
					t.Fatal(err)
				}
			}
			got := drain(t, s, 3)
			equal(t, got, append(want(0, 4), want(5, 5)...))
			if c := s.Corrupt(); c != 1 {
				t.Fatalf("Corrupt = %d, want 1", c)
			}
		})
	}
}

func TestSpoolCorruptLengthDoesNotSwallowTheRest(t *testing.T) {
	dir := t.TempDir()
	s, _ := OpenSpool(dir, 1<<20, 1<<16)
	s.Append(batchOf(0, 10), 0)
	s.Close()
	path := lastSegment(t, dir)
	raw, _ := os.ReadFile(path)
	// The length of record 2 claims far more than is there.
	i := strings.Index(string(raw), `{"seq":2}`) - spoolRecHdr
	raw[i+4], raw[i+5] = 0xff, 0x7f
	os.WriteFile(path, raw, 0o600)
	s, err := OpenSpool(dir, 1<<20, 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, drain(t, s, 100), append(want(0, 2), want(3, 7)...))
}

func TestSpoolWriteErrorIsReturnedNotFull(t *testing.T) {
	s, _ := OpenSpool(t.TempDir(), 1<<20, 1<<16)
	s.writeFn = func(*os.File, []byte) (int, error) { return 0, syscall.ENOSPC }
	n, err := s.Append(batchOf(0, 10), 0)
	if n != 0 || err == nil || errors.Is(err, ErrSpoolFull) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Append on a full disk = %d, %v; want 0 and ENOSPC", n, err)
	}
	// The disk has room again: nothing of the failed write is left.
	s.writeFn = func(f *os.File, p []byte) (int, error) { return f.Write(p) }
	if n, err := s.Append(batchOf(10, 3), 0); n != 3 || err != nil {
		t.Fatalf("Append = %d, %v", n, err)
	}
	equal(t, drain(t, s, 100), want(10, 3))
}

// A span from AppendSpan across segments: PeekBefore stops at its start,
// Reached says when the cursor is there, Past when it is beyond, and
// Advance to its end steps over it.
func TestSpoolSpan(t *testing.T) {
	s, err := OpenSpool(t.TempDir(), 1<<20, 100) // about four events a segment
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.Append(batchOf(0, 6), 0); n != 6 || err != nil {
		t.Fatal(n, err)
	}
	span := batchOf(6, 3)
	evs := [][]byte{span.Event(0), span.Event(1), span.Event(2)}
	n, start, end, err := s.AppendSpan(evs)
	if n != 3 || err != nil {
		t.Fatal(n, err)
	}
	if n, err := s.Append(batchOf(9, 2), 0); n != 2 || err != nil {
		t.Fatal(n, err)
	}
	var got []string
	var buf []byte
	var out [][]byte
	for !s.Reached(start) {
		var cur Cursor
		out, buf, cur, err = s.PeekBefore(4, start, buf, out)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range out {
			got = append(got, string(e))
		}
		if err := s.Advance(cur, len(out)); err != nil {
			t.Fatal(err)
		}
		if len(got) > 6 {
			t.Fatalf("read into the span: %q", got)
		}
	}
	if len(got) != 6 || got[5] != `{"seq":5}` {
		t.Fatalf("before the span: %q", got)
	}
	if s.Reached(end) || s.Past(start) {
		t.Fatal("at the span's start: its end reached, or its start passed")
	}
	if err := s.Advance(end, n); err != nil {
		t.Fatal(err)
	}
	if !s.Past(start) || !s.Reached(end) {
		t.Fatal("after the span: its start not passed, or its end not reached")
	}
	if rest := drain(t, s, 10); len(rest) != 2 || rest[0] != `{"seq":9}` {
		t.Fatalf("after the span: %q", rest)
	}
	if ev, _ := s.Len(); ev != 0 {
		t.Fatalf("%d events left", ev)
	}
}

// Peek reads a segment a region at a time: events across a region's end,
// one longer than a region, and a damaged one past the first region all
// come out as they went in (the damaged one skipped and counted).
func TestSpoolPeekAcrossRegions(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenSpool(dir, 64<<20, 16<<20)
	if err != nil {
		t.Fatal(err)
	}
	var wantEvs []string
	add := func(ev string) {
		b := NewBatch(nil)
		b.End(append(b.Buf(), ev...))
		if n, err := s.Append(b, 0); n != 1 || err != nil {
			t.Fatalf("append: %d, %v", n, err)
		}
		wantEvs = append(wantEvs, ev)
	}
	for i := range 3000 {
		add(fmt.Sprintf(`{"seq":%d,"pad":"%s"}`, i, strings.Repeat("x", i%700)))
		if i == 1500 {
			add(`{"big":"` + strings.Repeat("y", 3*peekBytes/2) + `"}`)
		}
	}
	seg := lastSegment(t, dir)
	raw, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(raw), `{"seq":2500,`)
	if i < peekBytes {
		t.Fatalf("event 2500 at %d, want it past the first region", i)
	}
	raw[i+2] ^= 0xff
	if err := os.WriteFile(seg, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	for i, ev := range wantEvs {
		if strings.HasPrefix(ev, `{"seq":2500,`) {
			wantEvs = append(wantEvs[:i:i], wantEvs[i+1:]...)
			break
		}
	}
	got := drain(t, s, 700)
	if len(got) != len(wantEvs) {
		t.Fatalf("%d events, want %d", len(got), len(wantEvs))
	}
	for i := range got {
		if got[i] != wantEvs[i] {
			t.Fatalf("event %d: %.40q, want %.40q", i, got[i], wantEvs[i])
		}
	}
	if c := s.Corrupt(); c != 1 {
		t.Fatalf("Corrupt = %d, want 1", c)
	}
}

// BenchmarkSpoolReplay is the replay's read side: Peek 1000 events of
// 350 bytes and Advance, over a spool refilled as it empties.
func BenchmarkSpoolReplay(b *testing.B) {
	s, err := OpenSpool(b.TempDir(), 1<<30, 64<<20)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	batch := NewBatch(nil)
	for i := range 256 {
		batch.End(fmt.Appendf(batch.Buf(), `{"seq":%d,"pad":"%s"}`, i, strings.Repeat("x", 330)))
	}
	var buf []byte
	var evs [][]byte
	b.SetBytes(350)
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; {
		b.StopTimer()
		for range 40 {
			if _, err := s.Append(batch, 0); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		for {
			var cur Cursor
			evs, buf, cur, err = s.Peek(1000, buf, evs)
			if err != nil {
				b.Fatal(err)
			}
			if len(evs) == 0 {
				break
			}
			n += len(evs)
			if err := s.Advance(cur, len(evs)); err != nil {
				b.Fatal(err)
			}
		}
	}
}
