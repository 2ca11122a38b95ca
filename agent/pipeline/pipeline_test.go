package pipeline

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"smith/agent/decode"
	"smith/agent/encode"
	"smith/agent/filter"
	"smith/agent/metrics"
	"smith/agent/sink"
	"smith/agent/source"
	"smith/internal/harness"
	"smith/internal/testfs"
	"smith/shm"
)

// memSink keeps every event; a stuck one never finishes a batch.
type memSink struct {
	mu     sync.Mutex
	events []map[string]any
	stuck  bool
}

func (m *memSink) Name() string { return "mem" }
func (m *memSink) Send(b *sink.Batch) {
	if m.stuck {
		return
	}
	m.mu.Lock()
	for i := 0; i < b.Len(); i++ {
		var v map[string]any
		if err := json.Unmarshal(b.Event(i), &v); err != nil {
			panic(fmt.Sprintf("invalid JSON %q: %v", b.Event(i), err))
		}
		if b.Kept(i) {
			v[keptKey] = true // a loss report, which a full spool keeps
		}
		m.events = append(m.events, v)
	}
	m.mu.Unlock()
	b.Done()
}

// keptKey marks, in what memSink keeps, the events the batch marked as
// loss reports (sink.Batch.Keep).
const keptKey = "(kept)"

func (m *memSink) Close(context.Context) error { return nil }
func (m *memSink) all() []map[string]any {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]map[string]any(nil), m.events...)
}

type ringFile struct {
	path string
	fr   *shm.FileRing
	prod *shm.Producer
}

func newRingFile(t testing.TB) *ringFile {
	t.Helper()
	path, fr := testfs.Ring(t, 1<<20)
	return &ringFile{path: path, fr: fr, prod: shm.NewProducer(fr.Ring)}
}

func (r *ringFile) exec(t *testing.T, tgid, ppid uint32, argv string) {
	t.Helper()
	ev := &decode.Event{Type: decode.TypeExecve, TimeNs: uint64(time.Now().UnixNano()), Pid: tgid, Tgid: tgid, Ppid: ppid, Comm: []byte("test")}
	ev.Fields[decode.FieldArgv] = decode.Field{Present: true, Value: []byte(argv)}
	rec := decode.AppendEvent(nil, ev)
	n, _, _ := decode.RecordLen(rec)
	if ok, _ := r.prod.Write(rec[:n]); !ok {
		t.Fatal("ring full")
	}
}

type run struct {
	cancel context.CancelFunc
	done   chan error
	sink   *memSink
	c      *metrics.Counters
}

func start(t *testing.T, rf *ringFile, stateDir string, s *memSink, selfPid uint32, opts ...func(*Options, *SeqState)) *run {
	t.Helper()
	src, err := source.OpenFile(rf.path, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	st, next, _, err := OpenSeqState(stateDir, src.ConsumerPos(), src.Size())
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := encode.New(encode.FormatSmith, encode.Host{Name: "h"})
	flt, _ := filter.New(selfPid, nil, nil)
	c := &metrics.Counters{}
	log := logrus.New()
	log.Out = io.Discard
	o := Options{Source: src, Encoder: enc, Filter: flt, Sinks: []sink.Sink{s}, Counters: c, State: st,
		NextSeq: next, RingSize: src.Size(), QueueEvents: 1024, Log: log, ShutdownTimeout: 300 * time.Millisecond}
	for _, f := range opts {
		f(&o, st)
	}
	p := New(o)
	ctx, cancel := context.WithCancel(context.Background())
	r := &run{cancel: cancel, done: make(chan error, 1), sink: s, c: c}
	go func() {
		err := p.Run(ctx)
		st.Close()
		src.Release()
		r.done <- err
	}()
	return r
}

func (r *run) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("pipeline did not stop")
	}
}

func TestPipelineDeliversInOrderWithSequenceNumbers(t *testing.T) {
	goroutines := runtime.NumGoroutine()
	rf := newRingFile(t)
	state := t.TempDir()
	for i := 0; i < 1000; i++ {
		rf.exec(t, 1000+uint32(i), 1, fmt.Sprintf("cmd\x00%d\x00", i))
	}
	rf.exec(t, 42, 1, "self\x00")   // the agent itself: filtered
	rf.exec(t, 43, 42, "child\x00") // its child: filtered
	rf.prod.Write(decode.AppendLost(nil, 7))
	r := start(t, rf, state, &memSink{}, 42)
	harness.WaitFor(t, 10*time.Second, "1001 events", func() bool { return len(r.sink.all()) == 1001 })
	r.stop(t)
	evs := r.sink.all()
	for i, ev := range evs[:1000] {
		if ev["seq"] != float64(i+1) || ev["args"].([]any)[1] != fmt.Sprint(i) {
			t.Fatalf("event %d: seq %v args %v", i, ev["seq"], ev["args"])
		}
	}
	if last := evs[1000]; last["data_type"] != "1" || last["lost"] != 7.0 || last["seq"] != 1001.0 || last[keptKey] != true {
		t.Fatalf("lost event %v, want one marked kept", last)
	}
	for i, ev := range evs[:1000] {
		if ev[keptKey] != nil {
			t.Fatalf("event %d marked kept: %v", i, ev)
		}
	}
	if r.c.Filtered(metrics.FilterSelf) != 2 || r.c.Read.Load() != 1003 {
		t.Fatalf("filtered %d read %d", r.c.Filtered(metrics.FilterSelf), r.c.Read.Load())
	}
	if rf.fr.Ring.ConsumerPos() != rf.fr.Ring.ProducerPos() {
		t.Fatal("ring not committed after delivery")
	}

	// A restart continues the numbering.
	rf.exec(t, 5000, 1, "after\x00restart\x00")
	r = start(t, rf, state, &memSink{}, 42)
	harness.WaitFor(t, 10*time.Second, "event after restart", func() bool { return len(r.sink.all()) == 1 })
	r.stop(t)
	if ev := r.sink.all()[0]; ev["seq"] != 1002.0 {
		t.Fatalf("after restart seq %v, want 1002", ev["seq"])
	}
	harness.WaitFor(t, 10*time.Second, "goroutines to end", func() bool { return runtime.NumGoroutine() <= goroutines })
}

func TestUndeliveredEventsAreReadAgainWithTheSameNumbers(t *testing.T) {
	rf := newRingFile(t)
	state := t.TempDir()
	for i := 0; i < 10; i++ {
		rf.exec(t, 100+uint32(i), 1, fmt.Sprint(i))
	}
	// A sink that never finishes: the agent stops without delivering.
	r := start(t, rf, state, &memSink{stuck: true}, 0)
	time.Sleep(50 * time.Millisecond)
	r.stop(t)
	if pos := rf.fr.Ring.ConsumerPos(); pos != 0 {
		t.Fatalf("ring committed to %d without delivery", pos)
	}
	r = start(t, rf, state, &memSink{}, 0)
	harness.WaitFor(t, 10*time.Second, "10 events", func() bool { return len(r.sink.all()) == 10 })
	r.stop(t)
	for i, ev := range r.sink.all() {
		if ev["seq"] != float64(i+1) {
			t.Fatalf("re-read event %d has seq %v", i, ev["seq"])
		}
	}
}

func TestSeqStateRecovery(t *testing.T) {
	dir := t.TempDir()
	st, next, fell, err := OpenSeqState(dir, 0, 1<<20)
	if err != nil || next != 1 || fell {
		t.Fatal(next, fell, err)
	}
	// Numbers reserved as the pipeline does before using them, then
	// committed: position 800 -> seq 11; pending: up to 1600 -> seq 21.
	if _, err := st.Reserve(1); err != nil {
		t.Fatal(err)
	}
	st.Write(800, 11, 1600, 21)
	st.Close()
	for _, tc := range []struct {
		pos      uint64
		want     uint64
		fellBack bool
	}{
		{800, 11, false},      // killed before the ring commit
		{1600, 21, false},     // killed after it
		{1608, 21, false},     // after it, pads skipped too
		{0, 1 << 16, true},    // module reloaded: high-water mark, never a repeat
		{1200, 1 << 16, true}, // impossible position
	} {
		os.WriteFile(filepath.Join(dir, "seq.copy"), nil, 0o600)
		d2 := t.TempDir()
		raw, _ := os.ReadFile(filepath.Join(dir, "seq"))
		os.WriteFile(filepath.Join(d2, "seq"), raw, 0o600)
		st, next, fell, err := OpenSeqState(d2, tc.pos, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		st.Close()
		if next < tc.want || (!tc.fellBack && next != tc.want) || fell != tc.fellBack {
			t.Errorf("pos %d: next %d fellBack %v, want %d %v", tc.pos, next, fell, tc.want, tc.fellBack)
		}
	}
}

// A restarted agent re-reads what the killed one had not committed; the
// previous agent's own activity there stays filtered, so the numbers do
// not shift.  The same pid after the restart is another process.
func TestPreviousAgentActivityStaysFiltered(t *testing.T) {
	rf := newRingFile(t)
	state := t.TempDir()
	me := uint32(os.Getpid()) // the "previous agent" is this process
	rf.exec(t, 500, 1, "a\x00")
	rf.exec(t, me, 1, "agent-own\x00")
	rf.exec(t, 600, me, "agent-child\x00")
	rf.exec(t, 501, 1, "b\x00")
	r := start(t, rf, state, &memSink{stuck: true}, me)
	time.Sleep(50 * time.Millisecond)
	r.stop(t) // nothing delivered, nothing committed

	r = start(t, rf, state, &memSink{}, 999999, func(o *Options, st *SeqState) {
		o.PrevPid, o.PrevEnd = st.PreviousPID(), rf.fr.Ring.ProducerPos()
	})
	harness.WaitFor(t, 10*time.Second, "2 events", func() bool { return len(r.sink.all()) == 2 })
	rf.exec(t, me, 1, "pid-reused\x00")
	harness.WaitFor(t, 10*time.Second, "3 events", func() bool { return len(r.sink.all()) == 3 })
	r.stop(t)
	evs := r.sink.all()
	for i, want := range []string{"a", "b", "pid-reused"} {
		if evs[i]["seq"] != float64(i+1) || evs[i]["args"].([]any)[0] != want {
			t.Fatalf("event %d: seq %v args %v, want seq %d %s", i, evs[i]["seq"], evs[i]["args"], i+1, want)
		}
	}
	if r.c.Filtered(metrics.FilterSelf) != 2 {
		t.Fatalf("filtered %d, want the previous agent's 2 records", r.c.Filtered(metrics.FilterSelf))
	}
}

func TestSeqStateStreams(t *testing.T) {
	dir := t.TempDir()
	st, next, _, err := OpenSeqState(dir, 0, 1<<20)
	if err != nil || next != 1 || st.Fresh() == "" || len(st.Stream()) != 16 {
		t.Fatalf("first open: next %d fresh %q stream %q err %v", next, st.Fresh(), st.Stream(), err)
	}
	first := st.Stream()
	st.Write(800, 11, 800, 11)
	st.Close()
	reopen := func() *SeqState {
		t.Helper()
		st, _, _, err := OpenSeqState(dir, 800, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		st.Close()
		return st
	}
	if st := reopen(); st.Stream() != first || st.Fresh() != "" || st.s1 != 11 {
		t.Fatalf("reopen: stream %s (was %s) fresh %q s1 %d", st.Stream(), first, st.Fresh(), st.s1)
	}
	// A damaged file (one bit) is not trusted: a new stream from 1.
	path := filepath.Join(dir, "seq")
	raw, _ := os.ReadFile(path)
	raw[17] ^= 1
	os.WriteFile(path, raw, 0o600)
	if st := reopen(); st.Stream() == first || st.Fresh() == "" || st.s1 != 1 {
		t.Fatalf("corrupt: stream %s (was %s) fresh %q s1 %d", st.Stream(), first, st.Fresh(), st.s1)
	}
	// Lost: a new stream again.
	second := reopen().Stream()
	os.Remove(path)
	if st := reopen(); st.Stream() == second || st.Fresh() == "" {
		t.Fatalf("lost: stream %s fresh %q", st.Stream(), st.Fresh())
	}
	// A state from before streams keeps its numbers in a new stream.
	var v2 [seqV2Len]byte
	for i, v := range []uint64{seqMagicV2, 800, 42, 800, 42, 1 << 16, 7} {
		binary.LittleEndian.PutUint64(v2[i*8:], v)
	}
	os.WriteFile(path, v2[:], 0o600)
	st, next, _, err = OpenSeqState(dir, 800, 1<<20)
	if err != nil || next != 42 || st.Fresh() != "" || st.PreviousPID() != 7 {
		t.Fatalf("v2 state: next %d fresh %q prev pid %d err %v", next, st.Fresh(), st.PreviousPID(), err)
	}
	st.Close()
}

// heldSink hands every batch to the test, which decides when it is done.
type heldSink struct {
	ch     chan *sink.Batch
	events int // in the batches recv returned
}

// heldPipeline wires a pipeline on rf's ring into a heldSink that holds
// depth batches, released when the test ends.
func heldPipeline(t *testing.T, rf *ringFile, depth int) (*Pipeline, source.Source, *heldSink) {
	h := &heldSink{ch: make(chan *sink.Batch, depth)}
	p, src, st := newPipeline(t, rf, h)
	t.Cleanup(func() {
		st.Close()
		src.Release()
	})
	return p, src, h
}

// recv takes batches until n events in all have come and returns them.
func (h *heldSink) recv(t *testing.T, n int) []*sink.Batch {
	t.Helper()
	var got []*sink.Batch
	for h.events < n {
		select {
		case b := <-h.ch:
			h.events += b.Len()
			got = append(got, b)
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d events reached the sink", h.events, n)
		}
	}
	return got
}

func (h *heldSink) Name() string                { return "held" }
func (h *heldSink) Send(b *sink.Batch)          { h.ch <- b }
func (h *heldSink) Close(context.Context) error { return nil }

// The reader goes on reading while batches are in flight, and the ring is
// committed only up to the oldest batch not done, however the sinks
// finish them.
func TestCommitFollowsTheOldestBatchInFlight(t *testing.T) {
	rf := newRingFile(t)
	p, src, h := heldPipeline(t, rf, 16)
	// Records of one size: the commit position after n records is n*size.
	write := func(from, n int) {
		for i := from; i < from+n; i++ {
			rf.exec(t, 1000, 1, fmt.Sprintf("cmd\x00%06d\x00", i))
		}
	}
	write(0, 1)
	size := rf.fr.Ring.ProducerPos()
	done, cancel := goRun(p)
	defer func() {
		cancel()
		<-done
	}()
	// The batches as they come, and the ring position after each.
	var batches []*sink.Batch
	var ends []uint64
	total := 0
	recvUntil := func(n int) {
		t.Helper()
		for _, b := range h.recv(t, n) {
			total += b.Len()
			batches = append(batches, b)
			ends = append(ends, uint64(total)*size)
		}
	}
	recvUntil(1)
	write(1, 512)
	recvUntil(513)
	// Every batch still in flight: the reader reads on (stop-and-wait
	// would sit in a commit here).
	write(513, 100)
	recvUntil(613)
	if c := src.ConsumerPos(); c != 0 || len(batches) < 3 {
		t.Fatalf("committed to %d with all %d batches in flight", c, len(batches))
	}
	consumer := func(want uint64, what string) {
		t.Helper()
		harness.WaitFor(t, 10*time.Second, what, func() bool { return src.ConsumerPos() == want })
	}
	// Done newest first, all but the second: the commit reaches the end
	// of the first and no further.
	for i := len(batches) - 1; i >= 0; i-- {
		if i != 1 {
			batches[i].Done()
		}
	}
	write(613, 1) // the reader wakes, reads, and looks at what is durable
	recvUntil(614)
	consumer(ends[0], "commit up to the first batch")
	if c := src.ConsumerPos(); c != ends[0] {
		t.Fatalf("committed to %d past the second batch (in flight), want %d", c, ends[0])
	}
	batches[1].Done()
	// The reader commits when it wakes: for the next record here (a
	// reader with nothing to read is woken only once nothing is in flight).
	write(614, 1)
	recvUntil(615)
	consumer(613*size, "commit up to the batch before the last")
	// The last two done, nothing new in the ring: the sleeping reader is
	// woken to commit everything.
	for _, b := range batches[len(batches)-2:] {
		b.Done()
	}
	consumer(615*size, "commit of everything")
}

// Task results do not wait for the ring to run empty: under a load that
// keeps it busy they ship at once, numbered apart from the records.
func TestTasksShipUnderLoad(t *testing.T) {
	rf := newRingFile(t)
	for i := range 4000 {
		rf.exec(t, 1000, 1, fmt.Sprintf("cmd\x00%06d\x00", i))
	}
	s := &memSink{}
	p, src, st := newPipeline(t, rf, s)
	// Queued before the reader starts, with 4000 records ready.
	if !p.AddTasks([]encode.TaskItem{{TaskID: "t1", Kind: "users", Fields: [][2]string{{"name", "root"}}}}) {
		t.Fatal("task queue full")
	}
	done, cancel := goRun(p)
	harness.WaitFor(t, 10*time.Second, "4001 events", func() bool { return len(s.all()) == 4001 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st.Close()
	src.Release()
	evs := s.all()
	at := -1
	seen := map[float64]bool{}
	for i, ev := range evs {
		if seen[ev["seq"].(float64)] {
			t.Fatalf("seq %v twice", ev["seq"])
		}
		seen[ev["seq"].(float64)] = true
		if ev["data_type"] == encode.DataTypeTask {
			at = i
		}
	}
	if at < 0 || at > batchEvents {
		t.Fatalf("the task item is event %d of %d: it waited for the ring to run empty", at, len(evs))
	}
}

// newPipeline wires a pipeline on rf's ring file into sinks.
func newPipeline(t *testing.T, rf *ringFile, sinks ...sink.Sink) (*Pipeline, source.Source, *SeqState) {
	t.Helper()
	src, err := source.OpenFile(rf.path, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	st, next, _, err := OpenSeqState(t.TempDir(), src.ConsumerPos(), src.Size())
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := encode.New(encode.FormatSmith, encode.Host{Name: "h"})
	log := logrus.New()
	log.Out = io.Discard
	p := New(Options{Source: src, Encoder: enc, Sinks: sinks, Counters: &metrics.Counters{}, State: st,
		NextSeq: next, RingSize: src.Size(), QueueEvents: 8 * batchEvents, Log: log, ShutdownTimeout: 100 * time.Millisecond})
	return p, src, st
}

// Batches done out of order go back to the pool and come back in flight
// while older ones are not done: the commit must still follow every one.
func TestCommitWithBatchesReusedOutOfOrder(t *testing.T) {
	rf := newRingFile(t)
	p, src, h := heldPipeline(t, rf, 64)
	done, cancel := goRun(p)
	defer func() {
		cancel()
		<-done
	}()
	var held []*sink.Batch
	n := 0
	for round := 0; round < 20; round++ {
		for range 300 {
			rf.exec(t, 1000, 1, fmt.Sprintf("cmd\x00%06d\x00", n))
			n++
		}
		// Keep the oldest in flight; finish the others, newest first,
		// as they come, so that they are reused behind it.  (Holding
		// them all until the round is in would hold the whole pool when
		// a slow reader cuts the round into many small batches.)
		for h.events < n {
			held = append(held, h.recv(t, h.events+1)...)
			for i := len(held) - 1; i >= 1; i-- {
				held[i].Done()
			}
			held = held[:1]
		}
	}
	held[0].Done()
	harness.WaitFor(t, 10*time.Second, "everything committed", func() bool { return src.ConsumerPos() == rf.fr.Ring.ProducerPos() })
}

// Records filtered while nothing is in flight are committed; a batch in
// flight after them must not take the commit back to where it was.
func TestCommitAfterFilteredRecords(t *testing.T) {
	rf := newRingFile(t)
	p, src, h := heldPipeline(t, rf, 16)
	p.o.Filter, _ = filter.New(42, nil, nil)
	rf.exec(t, 42, 1, "self\x00") // the agent itself: filtered, committed
	done, cancel := goRun(p)
	filtered := rf.fr.Ring.ProducerPos()
	harness.WaitFor(t, 10*time.Second, "the filtered record committed", func() bool { return src.ConsumerPos() == filtered })
	rf.exec(t, 1000, 1, "cmd\x00")
	var b *sink.Batch
	select {
	case b = <-h.ch:
	case <-time.After(10 * time.Second):
		t.Fatal("no batch")
	}
	rf.exec(t, 1001, 1, "cmd\x00") // the reader wakes and commits what is durable
	var b2 *sink.Batch
	select {
	case b2 = <-h.ch:
	case err := <-done:
		t.Fatalf("Run ended: %v", err)
	}
	b.Done()
	b2.Done()
	harness.WaitFor(t, 10*time.Second, "everything committed", func() bool { return src.ConsumerPos() == rf.fr.Ring.ProducerPos() })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// goRun runs p until cancel; done receives what Run returns.
func goRun(p *Pipeline) (chan error, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	return done, cancel
}

// A corrupt consumer position (misaligned, beyond the producer, stale) at
// a restart must not make every restart fail at the same place: the
// agent goes on at the producer's position, reports the gap in the
// stream (a lost event with gap_bytes) and in its metrics, and reads
// what comes after.
func TestCorruptConsumerPositionIsSkippedWithAGapEvent(t *testing.T) {
	for _, tc := range []struct {
		name string
		cons func(committed, prod uint64) uint64
		gap  func(committed, prod uint64) uint64 // gap_bytes expected
	}{
		{"misaligned", func(c, _ uint64) uint64 { return c + 4 }, func(c, p uint64) uint64 { return p - c - 4 }},
		{"beyond the producer", func(_, p uint64) uint64 { return p + 1<<30 }, func(uint64, uint64) uint64 { return 0 }},
		{"stale", func(_, p uint64) uint64 { return p - 2<<20 }, func(uint64, uint64) uint64 { return 1 << 20 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rf := newRingFile(t)
			state := t.TempDir()
			// Fill past a few ring sizes (read and committed) so that a
			// stale position can lie more than the ring behind.
			arg := string(make([]byte, 1000))
			for rf.fr.Ring.ProducerPos() < 3*rf.fr.Ring.Size() {
				for i := 0; i < 500; i++ {
					rf.exec(t, 100+uint32(i), 1, arg)
				}
				drainRing(t, rf)
			}
			r := start(t, rf, state, &memSink{}, 0)
			rf.exec(t, 1, 1, "before")
			harness.WaitFor(t, 10*time.Second, "the first event", func() bool { return len(r.sink.all()) == 1 })
			r.stop(t)
			committed := rf.fr.Ring.ConsumerPos()
			rf.exec(t, 2, 1, "unread") // skipped by the resynchronisation
			prod := rf.fr.Ring.ProducerPos()
			writeConsumerPos(t, rf, tc.cons(committed, prod))

			var src source.Source
			s := &memSink{}
			r = start(t, rf, state, s, 0, func(o *Options, _ *SeqState) { src = o.Source })
			if got := rf.fr.Ring.ConsumerPos(); got != prod {
				t.Fatalf("consumer page at %d after the start, want the producer's %d", got, prod)
			}
			rf.exec(t, 3, 1, "after")
			harness.WaitFor(t, 10*time.Second, "the gap and the event after it", func() bool { return len(s.all()) == 2 })
			m := src.Ring() // before stop releases the ring
			r.stop(t)
			evs := s.all()
			if g := evs[0]; g["data_type"] != "1" || g["lost"] != 0.0 || g["gap_bytes"] != float64(tc.gap(committed, prod)) || g[keptKey] != true {
				t.Fatalf("first event %v, want a lost event with gap_bytes %d, marked kept", g, tc.gap(committed, prod))
			}
			if ev := evs[1]; ev["tgid"] != 3.0 || ev[keptKey] != nil || ev["seq"].(float64) <= evs[0]["seq"].(float64) {
				t.Fatalf("event after the gap %v", ev)
			}
			if m.Resyncs != 1 || m.ResyncBytes != tc.gap(committed, prod) {
				t.Fatalf("ring metrics %+v, want 1 resync of %d bytes", m, tc.gap(committed, prod))
			}
			if rf.fr.Ring.ConsumerPos() != rf.fr.Ring.ProducerPos() {
				t.Fatal("ring not committed after the gap")
			}
		})
	}
}

// writeConsumerPos writes the consumer page of the ring file behind the
// mapping's back, as a corrupt or stale writer would.
func writeConsumerPos(t *testing.T, rf *ringFile, pos uint64) {
	t.Helper()
	f, err := os.OpenFile(rf.path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], pos)
	if _, err := f.WriteAt(b[:], 0); err != nil {
		t.Fatal(err)
	}
}

// drainRing reads and commits every record of the ring file.
func drainRing(t *testing.T, rf *ringFile) {
	t.Helper()
	rd, err := shm.NewReader(rf.fr.Ring, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range testfs.Records(t, rd.Next) {
		// read; the commit below takes them all
	}
	rd.Commit()
}

// spillSink models the Kafka sink with a broker that stalls: it holds
// the first four batches (its requests in flight) and queues the rest;
// asked to Spill, it makes the four durable without freeing them, and
// from then on is done with every batch at once (the spool takes them).
type spillSink struct {
	heldSink
	mu       sync.Mutex
	held     []*sink.Batch
	queued   []*sink.Batch
	spilling bool
	spills   atomic.Int32
	inFlight int // batches held in flight (0: 4)
}

func (s *spillSink) Send(b *sink.Batch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.spilling:
		b.Done()
	case len(s.held) < max(s.inFlight, 4):
		s.held = append(s.held, b)
	default:
		s.queued = append(s.queued, b)
	}
}

func (s *spillSink) Spill() {
	s.spills.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.spilling {
		return
	}
	s.spilling = true
	for _, b := range s.held {
		b.Durable()
	}
	for _, b := range s.queued {
		b.Done()
	}
	s.queued = nil
}

// answer frees the batches held since the spill (their requests
// answered).
func (s *spillSink) answer() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.held {
		b.Free()
	}
	s.held = nil
}

// tryExec writes an exec record, false when the ring has no room.
func (r *ringFile) tryExec(i int) bool {
	ev := &decode.Event{Type: decode.TypeExecve, TimeNs: uint64(time.Now().UnixNano()), Pid: 1000, Tgid: 1000, Ppid: 1, Comm: []byte("test")}
	ev.Fields[decode.FieldArgv] = decode.Field{Present: true, Value: fmt.Appendf(nil, "cmd\x00%06d\x00", i)}
	rec := decode.AppendEvent(nil, ev)
	n, _, _ := decode.RecordLen(rec)
	ok, _ := r.prod.Write(rec[:n])
	return ok
}

// A sink that holds its batches (a broker that stalls) fills the ring
// behind them; past half the ring the pipeline has it spill, and commits
// past the spilled batches although they never come back: the ring goes
// on taking records, three times its size.
func TestRingFillingBehindTheSinksSpills(t *testing.T) {
	rf := newRingFile(t)
	s := &spillSink{}
	p, src, st := newPipeline(t, rf, s)
	t.Cleanup(func() {
		st.Close()
		src.Release()
	})
	done, cancel := goRun(p)
	defer func() {
		cancel()
		<-done
	}()
	i := 0
	write := func(until uint64) {
		t.Helper()
		for ; src.ProducerPos() < until; i++ {
			harness.WaitFor(t, 10*time.Second, "room in the ring", func() bool { return rf.tryExec(i) })
		}
	}
	// A quarter of the ring: the batches are all out, nothing spilled,
	// nothing committed.
	write(src.Size() / 4)
	time.Sleep(50 * time.Millisecond)
	if n, c := s.spills.Load(), src.ConsumerPos(); n != 0 || c != 0 {
		t.Fatalf("a quarter of the ring held: %d spills, committed to %d; want none", n, c)
	}
	// Past half: a spill, and the ring is given back.
	write(src.Size() * 3 / 4)
	harness.WaitFor(t, 10*time.Second, "a spill", func() bool { return s.spills.Load() > 0 })
	write(3 * src.Size())
	harness.WaitFor(t, 10*time.Second, "a commit of everything", func() bool { return src.ConsumerPos() == src.ProducerPos() })
}

// When every batch is in flight at the spill, the spilled ones are durable
// but their memory is still held: the reader reads on into spare batches,
// given up again once the held ones are freed.
func TestSpilledBatchesLeaveTheReaderSpares(t *testing.T) {
	rf := newRingFile(t)
	s := &spillSink{inFlight: 1 << 10}
	p, src, st := newPipeline(t, rf, s)
	t.Cleanup(func() {
		st.Close()
		src.Release()
	})
	done, cancel := goRun(p)
	i := 0
	write := func(until uint64) {
		t.Helper()
		for ; src.ProducerPos() < until; i++ {
			harness.WaitFor(t, 10*time.Second, "room in the ring", func() bool { return rf.tryExec(i) })
		}
	}
	// Every batch out first (at most 8 x 256 small records: far below
	// the half of the ring that makes a spill), then past half the ring.
	harness.WaitFor(t, 10*time.Second, "every batch in flight", func() bool {
		for range 10 {
			if rf.tryExec(i) {
				i++
			}
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.held) == p.nbat
	})
	if n := s.spills.Load(); n != 0 {
		t.Fatalf("%d spills before half the ring", n)
	}
	write(src.Size() * 3 / 4)
	harness.WaitFor(t, 10*time.Second, "a spill", func() bool { return s.spills.Load() > 0 })
	write(3 * src.Size())
	harness.WaitFor(t, 10*time.Second, "a commit of everything", func() bool { return src.ConsumerPos() == src.ProducerPos() })
	if n := p.spares.Load(); n == 0 || int(n) > p.nbat {
		t.Fatalf("%d spare batches with every batch spilled; want 1..%d", n, p.nbat)
	}
	s.answer()
	harness.WaitFor(t, 10*time.Second, "the spares given up", func() bool { return p.spares.Load() == 0 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
