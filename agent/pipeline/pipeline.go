// Package pipeline runs the agent's stages: read a record from the ring,
// decode it in place, filter, enrich, encode it into a batch, hand batches
// to the sinks, and commit the ring up to the oldest record a sink is not
// done with.
//
//	source --Next--> decode -> filter -> enrich -> encode --batch--> sinks
//	   ^                                                              |
//	   +---- CommitTo(end of the oldest batch not durable) <----------+
//
// One goroutine does everything up to the batch, so the record view needs
// no copy: encode writes the JSON straight from the ring into the batch.
// The reader never waits for the sinks: it keeps reading while earlier
// batches are in flight (ring ABI 1.1 keeps the read position apart from
// the commit position), and the ring is committed cumulatively, in
// submission order, up to the end of the last batch before the oldest one
// not yet durable.  The queue between the reader and the sinks is a fixed
// set of batches: when all are in flight the reader waits for one, the
// ring absorbs the burst, and what the ring cannot hold the module counts
// (ring_full) — nothing is dropped unseen in between.  When records not
// yet durable fill half the ring, the sinks that can are asked to spill
// what they hold to disk (sink.Spiller), which makes it durable at once.
// docs/AGENT.md has the design and why.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"smith/agent/decode"
	"smith/agent/encode"
	"smith/agent/enrich"
	"smith/agent/filter"
	"smith/agent/metrics"
	"smith/agent/sink"
	"smith/agent/source"
	"smith/shm"
)

// Options wire a Pipeline.
type Options struct {
	Source   source.Source
	Encoder  *encode.Encoder
	Enricher *enrich.Enricher // nil: no enrichment
	Filter   *filter.Filter   // nil: report everything
	Sinks    []sink.Sink
	Counters *metrics.Counters
	State    *SeqState
	// NextSeq is the number of the first event (from OpenSeqState).
	NextSeq uint64
	// PrevPid (SeqState.PreviousPID) and PrevEnd (the producer position at
	// start): records before PrevEnd may have been read by the previous
	// agent, and what it did there is its own activity, filtered as its
	// self filter did, so re-read records keep their numbers.  PrevPid 0:
	// no such filter.
	PrevPid uint32
	PrevEnd uint64
	// RingSize is the ring's data size: commits come in steps of a
	// sixteenth of it while reading.
	RingSize uint64
	// QueueEvents bounds the events between the reader and the sinks.
	QueueEvents int
	// ShutdownTimeout bounds the flush on shutdown.
	ShutdownTimeout time.Duration
	Log             logrus.FieldLogger
}

// Pipeline is the running agent.
type Pipeline struct {
	o    Options
	free *pool
	nbat int // the batches queue_size makes
	// A batch a sink made durable but still reads (a spilled one, its
	// request in flight) holds no ring space but holds its memory: the
	// reader gets a spare batch for each (at most nbat spares), dropped
	// again as those are freed.  durHeld counts them, spares the spares
	// out, back tells waitIdle that a spare was dropped.
	durHeld atomic.Int32
	spares  atomic.Int32
	back    chan struct{}
	tasks   chan []encode.TaskItem
	log     logrus.FieldLogger

	next      uint64 // next sequence number
	hw        uint64 // numbers below this are reserved in the state
	lastEnd   uint64 // ring position after the last record read
	decodeLog time.Time

	// The batches in flight, oldest first, and what is durable: every
	// record before durEnd, every number below durSeq.  release (a sink
	// goroutine) and the reader share them under mu.
	mu        sync.Mutex
	flights   []flight
	durEnd    uint64
	durSeq    uint64
	commitPos uint64 // the ring's commit position (the reader writes it)
	commitSeq uint64 // the number of the record at commitPos
	waiting   atomic.Bool
	readPos   atomic.Uint64 // lastEnd, for durable

	// The sinks that can make what they hold durable at once (Spill),
	// asked when the ring fills behind batches not yet durable.
	spillers []sink.Spiller
	spillAt  time.Time // the last time they were asked
}

// flight is a batch in flight: once it and every older one are durable,
// the records before end are, and the next record's number is seq.
type flight struct {
	b        *sink.Batch
	end, seq uint64
	done     bool
}

// batchEvents is how many events a batch holds at most; a batch also
// ends whenever the ring has nothing more ready.
const batchEvents = 256

// batchEventBytes is what a batch starts with room for per event: a
// connect with its process and ancestry is about 1.2 KB of JSON, an exec
// more (a batch of longer events grows as needed).
const batchEventBytes = 1536

// queueBatches is how many batches queueEvents events make.
func queueBatches(queueEvents int) int { return max(2, queueEvents/batchEvents) }

// Batches is how many batches a pipeline of queueEvents may have out at
// once: its queue and as many spares (for spilled batches still held).
// A sink that queues batches needs room for all of them, so that Send
// never blocks the reader.
func Batches(queueEvents int) int { return 2 * queueBatches(queueEvents) }

// New prepares a pipeline.
func New(o Options) *Pipeline {
	// Every number goes out with the state's stream id: (stream, seq) is
	// unique even after a lost state file.
	o.Encoder.SetStream(o.State.Stream())
	n := queueBatches(o.QueueEvents)
	p := &Pipeline{o: o, free: newPool(2 * n), nbat: n, back: make(chan struct{}, 1), tasks: make(chan []encode.TaskItem, 16), log: o.Log,
		next: o.NextSeq, durSeq: o.NextSeq, commitSeq: o.NextSeq, flights: make([]flight, 0, n)}
	for range n {
		p.free.put(p.newBatch())
	}
	for _, s := range o.Sinks {
		if sp, ok := s.(sink.Spiller); ok {
			p.spillers = append(p.spillers, sp)
		}
	}
	if o.ShutdownTimeout == 0 {
		p.o.ShutdownTimeout = 10 * time.Second
	}
	return p
}

func (p *Pipeline) newBatch() *sink.Batch {
	b := sink.NewBatchSized(p.release, batchEvents, batchEvents*batchEventBytes)
	b.OnDurable(p.durable)
	return b
}

// release runs when the last sink is done with b's memory (any
// goroutine), after durable: b goes back to the pool, or is dropped
// when it is a spare no durable batch needs any longer.
func (p *Pipeline) release(b *sink.Batch) {
	p.o.Counters.Sent.Add(uint64(b.Delivered()))
	held := p.durHeld.Add(-1)
	for {
		n := p.spares.Load()
		if n <= held {
			break
		}
		if p.spares.CompareAndSwap(n, n-1) {
			select {
			case p.back <- struct{}{}:
			default:
			}
			return
		}
	}
	b.Reset()
	p.free.put(b)
}

// spare returns a new batch when a batch durable but not yet freed
// holds one the reader could use, nil otherwise.
func (p *Pipeline) spare() *sink.Batch {
	for {
		n := p.spares.Load()
		if n >= p.durHeld.Load() || int(n) >= p.nbat {
			return nil
		}
		if p.spares.CompareAndSwap(n, n+1) {
			return p.newBatch()
		}
	}
}

// durable runs when b is durable for every sink (any goroutine): it
// moves the durable position over every durable batch at the head.
func (p *Pipeline) durable(b *sink.Batch) {
	p.durHeld.Add(1)
	p.mu.Lock()
	for i := range p.flights {
		// A batch done out of order goes back to the pool and may be
		// in flight again behind its old, done, entry: mark the new one.
		// (A batch is durable before it is released, never after.)
		if p.flights[i].b == b && !p.flights[i].done {
			p.flights[i].done = true
			break
		}
	}
	k := 0
	for k < len(p.flights) && p.flights[k].done {
		p.durEnd, p.durSeq = p.flights[k].end, p.flights[k].seq
		k++
	}
	if k > 0 {
		p.flights = append(p.flights[:0], p.flights[k:]...)
	}
	// Wake a reader asleep while records became durable when an eighth
	// of the ring can be given back (the ring must not wait for the
	// reader's watermark to free space), or when everything is durable
	// and nothing new is in the ring (it would sleep on, uncommitted).
	// Not at every acknowledgement: each would turn into a tiny batch, a
	// wake-up and a produce request of its own.
	wake := k > 0 && p.waiting.Load() && (p.durEnd-p.commitPos >= p.o.RingSize/8 ||
		len(p.flights) == 0 && p.o.Source.ProducerPos() <= p.readPos.Load())
	p.mu.Unlock()
	if wake {
		p.o.Source.Wake()
	}
}

// AddTasks queues task result items to be shipped as events.  It returns
// false when the queue is full (the caller reports the task as failed).
func (p *Pipeline) AddTasks(items []encode.TaskItem) bool {
	select {
	case p.tasks <- items:
		// The reader may be waiting for records: have it look.
		p.o.Source.Wake()
		return true
	default:
		return false
	}
}

// Run reads until ctx is cancelled or the ring fails, then flushes what is
// in flight (bounded by ShutdownTimeout) and commits what was delivered.
func (p *Pipeline) Run(ctx context.Context) error {
	src := p.o.Source
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-ctx.Done():
			src.Close()
		case <-stop:
		}
	}()
	p.lastEnd = src.ConsumerPos()
	p.mu.Lock()
	p.durEnd, p.commitPos = p.lastEnd, p.lastEnd
	p.mu.Unlock()
	var (
		ev   decode.Event
		meta encode.Meta
		buf  []byte
		cur  *sink.Batch
		err  error
	)
	for ctx.Err() == nil {
		if len(p.tasks) > 0 {
			cur = p.flush(cur)
			if err = p.shipTasks(ctx); err != nil {
				break
			}
		}
		rec, ok, nerr := src.Next()
		if nerr != nil {
			err = fmt.Errorf("read ring: %w", nerr)
			break
		}
		if ok {
			if cur == nil {
				// All batches in flight: wait for a sink to finish one
				// (the ring holds the backlog meanwhile), or for the stop.
				if cur, err = p.freeBatch(ctx); cur == nil {
					// rec was read but not handled: it is past every
					// commit, so it is read again at the next start.
					break
				}
			}
			if buf, err = p.record(rec, cur, &ev, &meta, buf); err != nil {
				break
			}
			if cur.Len() >= batchEvents {
				p.submit(cur)
				cur = nil
				p.relieve()
				// Give back what is durable, in steps of a sixteenth of
				// the ring (one state write each), not per batch.
				if err = p.commit(cur, p.o.RingSize/16); err != nil {
					break
				}
			}
			continue
		}
		cur = p.flush(cur)
		var more bool
		if more, err = p.idle(ctx); !more {
			break
		}
	}
	p.flush(cur)
	if !p.waitIdle(ctx, true) {
		p.log.Warnf("shutdown: sinks did not finish within %s; undelivered events stay in the ring and are read again at the next start", p.o.ShutdownTimeout)
	}
	if cerr := p.commit(nil, 0); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// freeBatch waits for a batch to fill, or for the stop (nil).  While it
// waits, the ring may fill behind the batches in flight: it asks the
// spillers to make them durable when it does (relieve), and commits what
// is durable (a spilled batch can be durable long before it is free).
func (p *Pipeline) freeBatch(ctx context.Context) (*sink.Batch, error) {
	if b := p.free.take(); b != nil {
		return b, nil
	}
	if len(p.spillers) == 0 {
		for {
			select {
			case <-p.free.ready:
				if b := p.free.take(); b != nil {
					return b, nil
				}
			case <-ctx.Done():
				return nil, nil
			}
		}
	}
	t := time.NewTicker(spillCheck)
	defer t.Stop()
	for {
		p.relieve()
		if err := p.commit(nil, p.o.RingSize/16); err != nil {
			return nil, err
		}
		if b := p.spare(); b != nil {
			return b, nil
		}
		if b := p.free.take(); b != nil {
			return b, nil
		}
		select {
		case <-p.free.ready:
		case <-ctx.Done():
			return nil, nil
		case <-t.C:
		}
	}
}

// spillCheck is how often a reader waiting for a batch looks at the ring.
const spillCheck = 2 * time.Millisecond

// spillFill is the share of the ring records not yet durable may take
// before the spillers are asked to make theirs durable: half the ring,
// so that the other half absorbs the time a spill takes while the
// producer goes on.  Below it nothing is written to disk.
const spillFill = 2

// relieve asks the spillers to make what they hold durable when records
// not yet durable fill more than half of the ring, at most once per
// spillCheck.
func (p *Pipeline) relieve() {
	if len(p.spillers) == 0 {
		return
	}
	p.mu.Lock()
	held, dur := len(p.flights), p.durEnd
	p.mu.Unlock()
	if held == 0 || p.o.Source.ProducerPos()-dur < p.o.RingSize/spillFill {
		return
	}
	if now := time.Now(); now.Sub(p.spillAt) >= spillCheck {
		p.spillAt = now
		for _, s := range p.spillers {
			s.Spill()
		}
	}
}

// idle runs when the ring has nothing ready and no batch is being
// filled: it commits what is durable and waits for records, a wake-up or
// the stop.  It returns false when Run must stop (with the error, if
// one ended it).
func (p *Pipeline) idle(ctx context.Context) (bool, error) {
	src := p.o.Source
	if src.CommitsOnWait() {
		// A 1.0 module's ring: Wait commits everything read, so it
		// must all be durable first (stop and wait).
		if !p.waitIdle(ctx, false) {
			return false, nil
		}
	}
	if err := p.commit(nil, 0); err != nil {
		return false, err
	}
	if ctx.Err() != nil {
		return false, nil
	}
	p.readPos.Store(p.lastEnd)
	p.waiting.Store(true)
	// A batch that became durable between commit and here finds
	// waiting false and does not wake us: commit once more.
	if err := p.commit(nil, 0); err != nil {
		return false, err
	}
	werr := src.Wait()
	p.waiting.Store(false)
	if werr != nil {
		if !errors.Is(werr, source.ErrClosed) {
			return false, fmt.Errorf("wait for ring: %w", werr)
		}
		return false, nil
	}
	return true, nil
}

// record turns one ring record into an event in b.
func (p *Pipeline) record(rec shm.Record, b *sink.Batch, ev *decode.Event, meta *encode.Meta, buf []byte) ([]byte, error) {
	p.lastEnd = rec.End()
	kind, err := decode.Decode(rec.Raw, ev)
	if err != nil {
		p.o.Counters.AddDrop(metrics.DropDecode, 1)
		if time.Since(p.decodeLog) > 10*time.Second {
			p.decodeLog = time.Now()
			p.log.WithError(err).Errorf("record at ring position %d not decoded (counted as decode_error)", rec.Pos)
		}
		return buf, nil
	}
	switch kind {
	case decode.KindLost:
		p.o.Counters.Read.Add(1)
		seq, err := p.seq()
		if err != nil {
			return buf, err
		}
		if g := rec.Resync; g != nil {
			// The reader's position was corrupt: it went on at the
			// producer's, and the stream shows the gap.
			p.log.WithError(g.Err).Warnf("ring reader resynchronised from position %d to the producer's %d: %d bytes of records skipped (a lost event with gap_bytes)", g.From, g.To, g.Bytes)
			b.End(p.o.Encoder.AppendGap(b.Buf(), seq, g.Bytes, time.Now().UnixNano()))
			b.Keep()
			break
		}
		b.End(p.o.Encoder.AppendLost(b.Buf(), seq, ev.Lost, time.Now().UnixNano()))
		b.Keep() // a full spool still takes it
	case decode.KindEvent:
		p.o.Counters.Read.Add(1)
		if p.o.PrevPid != 0 && rec.Pos < p.o.PrevEnd && (ev.Tgid == p.o.PrevPid || ev.Ppid == p.o.PrevPid) {
			p.o.Counters.AddFiltered(metrics.FilterSelf)
			return buf, nil
		}
		if p.o.Filter != nil {
			var skip bool
			var why metrics.Filter
			if skip, why, buf = p.o.Filter.Skip(ev, buf); skip {
				p.o.Counters.AddFiltered(why)
				return buf, nil
			}
		}
		if p.o.Enricher != nil {
			p.o.Enricher.Enrich(ev, meta)
		}
		seq, err := p.seq()
		if err != nil {
			return buf, err
		}
		meta.Seq = seq
		b.End(p.o.Encoder.AppendEvent(b.Buf(), ev, meta))
	}
	return buf, nil
}

func (p *Pipeline) seq() (uint64, error) {
	if p.next >= p.hw {
		lim, err := p.o.State.Reserve(p.next)
		if err != nil {
			return 0, err
		}
		// Back at the middle of the block: Reserve raises the mark in
		// the background then, before it is reached.
		p.hw = min(lim, p.next+seqReserve/2)
	}
	s := p.next
	p.next++
	return s, nil
}

// flush submits b if it holds events, and returns nil.
func (p *Pipeline) flush(b *sink.Batch) *sink.Batch {
	if b == nil {
		return nil
	}
	if b.Len() == 0 {
		p.free.put(b)
		return nil
	}
	p.submit(b)
	return nil
}

// submit queues b as the newest flight and hands it to every sink.
func (p *Pipeline) submit(b *sink.Batch) {
	p.mu.Lock()
	p.flights = append(p.flights, flight{b: b, end: p.lastEnd, seq: p.next})
	p.mu.Unlock()
	b.Hold(len(p.o.Sinks))
	for _, s := range p.o.Sinks {
		s.Send(b)
	}
}

// waitIdle waits until every batch is back (all sinks done).  It gives
// up (false) when ctx ends, or for the final flush when the shutdown
// timeout expires.
func (p *Pipeline) waitIdle(ctx context.Context, final bool) bool {
	var timeout <-chan time.Time
	cancelled := ctx.Done()
	if final {
		cancelled = nil
		t := time.NewTimer(p.o.ShutdownTimeout)
		defer t.Stop()
		timeout = t.C
	}
	held := make([]*sink.Batch, 0, p.nbat)
	defer func() {
		for _, b := range held {
			p.free.put(b)
		}
	}()
	for len(held) < p.nbat+int(p.spares.Load()) {
		if b := p.free.take(); b != nil {
			held = append(held, b)
			continue
		}
		select {
		case <-p.free.ready:
		case <-p.back:
		case <-timeout:
			return false
		case <-cancelled:
			return false
		}
	}
	return true
}

// commit gives the ring back up to what is durable, when that is at least
// step bytes past the commit position.  Nothing in flight and no event in
// cur: everything read is done, filtered records included.  The sequence
// state is written first: a kill between the two leaves the ring at the
// old position and the state knowing both, so the numbers after a restart
// are right.
func (p *Pipeline) commit(cur *sink.Batch, step uint64) error {
	p.mu.Lock()
	end, seq := p.durEnd, p.durSeq
	if len(p.flights) == 0 && (cur == nil || cur.Len() == 0) {
		// The durable point moves too: the next flight's predecessor
		// is this (filtered records after the last batch included).
		end, seq = p.lastEnd, p.next
		p.durEnd, p.durSeq = end, seq
	}
	from, fromSeq := p.commitPos, p.commitSeq
	p.mu.Unlock()
	if end == from && seq == fromSeq {
		return nil
	}
	if end-from < step && step > 0 {
		return nil
	}
	if err := p.o.State.Write(from, fromSeq, end, seq); err != nil {
		return err
	}
	if err := p.o.Source.CommitTo(end); err != nil {
		return fmt.Errorf("commit ring: %w", err)
	}
	p.mu.Lock()
	p.commitPos, p.commitSeq = end, seq
	p.mu.Unlock()
	return nil
}

// shipTasks sends queued task items.  Their numbers must not sit among
// those of ring records that could be read again, so it first waits for
// everything in flight (tasks are rare: a short stop) and commits; then
// the state says that the next record gets the number after the items.
// A crash can lose the items (the heartbeat summarised them too) but
// never reuse their numbers.
func (p *Pipeline) shipTasks(ctx context.Context) error {
	if !p.waitIdle(ctx, false) {
		return nil
	}
	if err := p.commit(nil, 0); err != nil {
		return err
	}
	for {
		var items []encode.TaskItem
		select {
		case items = <-p.tasks:
		default:
			return nil
		}
		pos := p.lastEnd
		first := p.next
		if len(items) == 0 {
			continue
		}
		if _, err := p.o.State.Reserve(first + uint64(len(items)) - 1); err != nil {
			return err
		}
		p.log.Debugf("shipping %d task result items from sequence number %d", len(items), first)
		if err := p.o.State.Write(pos, first+uint64(len(items)), pos, first+uint64(len(items))); err != nil {
			return err
		}
		now := time.Now().UnixNano()
		b := p.free.take() // all are free: waitIdle had them
		for b == nil {
			<-p.free.ready
			b = p.free.take()
		}
		for i := range items {
			b.End(p.o.Encoder.AppendTaskItem(b.Buf(), first+uint64(i), now, &items[i]))
		}
		p.next += uint64(len(items))
		p.mu.Lock()
		// Everything before is durable and the state holds the items'
		// numbers as used: the durable point moves past them at once.
		p.commitSeq, p.durSeq = p.next, p.next
		p.mu.Unlock()
		p.flush(b)
	}
}
