// Package sink delivers encoded events: Kafka (with a disk spool for
// what Kafka cannot take now), a rotating file, stdout.
//
// Events travel in Batches.  A sink calls Batch.Done once the batch is
// durable for it: acknowledged by Kafka or written to the spool, written
// to the file or stdout.  The pipeline commits the ring only when every
// sink is done with everything read, so an agent killed at any moment
// reads the unfinished events again after a restart (at least once,
// with the same sequence numbers).  A sink that made a batch durable
// while it still needs its memory (the Kafka sink spilling a batch in
// flight to its spool) calls Durable then and Free when it is done.
package sink

import (
	"context"
	"slices"
	"sync/atomic"
)

// Batch is a run of encoded events, each followed by '\n' in one buffer.
type Batch struct {
	buf  []byte
	ends []int        // end of each event in buf, before its '\n'
	refs atomic.Int32 // sinks that still use the memory
	durs atomic.Int32 // sinks for which the batch is not durable yet
	lost atomic.Int32 // events a sink dropped (counted by reason)
	// keep are the events (by index, rising) that report a loss: a full
	// spool still takes them, from its reserve (see Spool).
	keep []int
	// release is called once when the last reference is done.
	release func(*Batch)
	// durable (may be nil) is called once when the batch is durable for
	// every sink, before or with release.
	durable func(*Batch)
}

// NewBatch returns an empty batch; release (may be nil) runs when the last
// sink is done with it.
func NewBatch(release func(*Batch)) *Batch { return &Batch{release: release} }

// NewBatchSized is NewBatch with room for events events of bytes in all
// before its buffers grow: a batch that is refilled again and again is
// allocated at its working size once, instead of growing by doubling
// (each step a copy, and garbage for the GC) the first time it fills.
// The memory is not touched until events are written into it.
func NewBatchSized(release func(*Batch), events, bytes int) *Batch {
	return &Batch{release: release, buf: make([]byte, 0, bytes), ends: make([]int, 0, events)}
}

// Reset empties the batch for reuse.
func (b *Batch) Reset() {
	b.buf = b.buf[:0]
	b.ends = b.ends[:0]
	b.keep = b.keep[:0]
	b.lost.Store(0)
}

// Keep marks the last event as one that reports a loss (a "lost N" or a
// gap event): the one event a full spool must not drop, since the loss it
// reports would then be known only to the module's counters.
func (b *Batch) Keep() {
	if n := len(b.ends); n > 0 && (len(b.keep) == 0 || b.keep[len(b.keep)-1] != n-1) {
		b.keep = append(b.keep, n-1)
	}
}

// Kept tells whether event i is marked by Keep.
func (b *Batch) Kept(i int) bool {
	_, ok := slices.BinarySearch(b.keep, i)
	return ok
}

// isKept tells whether ev, a slice of b's buffer (as Event returns),
// is an event marked by Keep.
func (b *Batch) isKept(ev []byte) bool {
	for _, i := range b.keep {
		if e := b.Event(i); len(e) > 0 && len(ev) > 0 && &e[0] == &ev[0] {
			return true
		}
	}
	return false
}

// AddLost notes that a sink dropped n of the batch's events (the sink
// counts them by reason): they are not counted as sent.
func (b *Batch) AddLost(n int) { b.lost.Add(int32(n)) }

// Delivered is the number of events no sink dropped.
func (b *Batch) Delivered() int { return max(0, b.Len()-int(b.lost.Load())) }

// Lost is the number of events sinks dropped (AddLost).
func (b *Batch) Lost() int { return int(b.lost.Load()) }

// Buf returns the buffer to append the next event to; End must follow.
func (b *Batch) Buf() []byte { return b.buf }

// End records that buf (returned by Buf, with one event appended) holds a
// complete event.
func (b *Batch) End(buf []byte) {
	b.ends = append(b.ends, len(buf))
	b.buf = append(buf, '\n')
}

// Truncate drops the bytes appended after the last complete event (an
// event that was encoded and then not reported).
func (b *Batch) Truncate() {
	if n := len(b.ends); n > 0 {
		b.buf = b.buf[:b.ends[n-1]+1]
	} else {
		b.buf = b.buf[:0]
	}
}

// Len is the number of events.
func (b *Batch) Len() int { return len(b.ends) }

// Bytes is the size of the batch with newlines.
func (b *Batch) Bytes() int { return len(b.buf) }

// Event returns event i without its newline.
func (b *Batch) Event(i int) []byte {
	start := 0
	if i > 0 {
		start = b.ends[i-1] + 1
	}
	return b.buf[start:b.ends[i]:b.ends[i]]
}

// Lines returns every event, newline-terminated: JSON lines.
func (b *Batch) Lines() []byte { return b.buf }

// OnDurable sets the function called once the batch is durable for every
// sink (the pipeline's ring commit), which may come before the release of
// its memory.
func (b *Batch) OnDurable(f func(*Batch)) { b.durable = f }

// Hold sets the number of sinks that will call Done.
func (b *Batch) Hold(n int) {
	b.durs.Store(int32(n))
	b.refs.Store(int32(n))
}

// Done is called by each sink once the batch is durable for it and its
// memory no longer needed: Durable and Free in one.
func (b *Batch) Done() {
	b.Durable()
	b.Free()
}

// Durable is called by a sink, at most once and then instead of Done,
// once the batch is durable for it while it still reads the events; Free
// must follow.
func (b *Batch) Durable() {
	if b.durs.Add(-1) == 0 && b.durable != nil {
		b.durable(b)
	}
}

// Free is called by a sink that called Durable once it no longer reads
// the events.
func (b *Batch) Free() {
	if b.refs.Add(-1) == 0 && b.release != nil {
		b.release(b)
	}
}

// Spiller is a sink that can make the batches it holds durable at once
// (the Kafka sink writes those waiting for Kafka to its spool), asked when
// the ring fills behind batches not yet durable.
type Spiller interface {
	Spill()
}

// Sink is one destination of events.
type Sink interface {
	// Name is the sink's config name: "stdout", "file", "kafka".
	Name() string
	// Send queues the batch; it must not block for long.  The sink calls
	// b.Done exactly once, when the batch is durable (or counted dropped).
	Send(b *Batch)
	// Close delivers what is queued, calls Done for every batch it holds
	// and stops.  ctx bounds the wait; what it cannot deliver in time is
	// left undone (not committed in the ring: read again after restart).
	Close(ctx context.Context) error
}
