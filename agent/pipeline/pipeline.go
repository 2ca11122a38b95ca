// Package pipeline runs the agent's stages: read a record from the ring,
// decode it in place, filter, enrich, encode it into a batch, hand batches
// to the sinks, and commit the ring once every sink is done with them.
//
//	source --Next--> decode -> filter -> enrich -> encode --batch--> sinks
//	   ^                                                              |
//	   +------------- Commit when all batches are durable <-----------+
//
// One goroutine does everything up to the batch, so the record view needs
// no copy: encode writes the JSON straight from the ring into the batch.
// The queue between the reader and the sinks is a fixed set of batches:
// when all are in flight the reader waits, the ring absorbs the burst, and
// what the ring cannot hold the module counts (ring_full) — nothing is
// dropped unseen in between.
package pipeline

import (
	"context"
	"errors"
	"fmt"
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
	// RingSize is the ring's data size: the reader commits at least every
	// quarter of it.
	RingSize uint64
	// QueueEvents bounds the events between the reader and the sinks.
	QueueEvents int
	// ShutdownTimeout bounds the flush on shutdown.
	ShutdownTimeout time.Duration
	Log             logrus.FieldLogger
}

// Pipeline is the running agent.
type Pipeline struct {
	o     Options
	free  chan *sink.Batch
	nbat  int
	tasks chan []encode.TaskItem
	log   logrus.FieldLogger

	next       uint64 // next sequence number
	committed  uint64 // sequence number at the committed position
	hw         uint64 // numbers below this are reserved in the state
	lastEnd    uint64 // ring position after the last record read
	lastCommit time.Time
	decodeLog  time.Time
}

// batchEvents is how many events a batch holds at most; a batch also
// ends whenever the ring has nothing more ready.
const batchEvents = 256

// New prepares a pipeline.
func New(o Options) *Pipeline {
	// Every number goes out with the state's stream id: (stream, seq) is
	// unique even after a lost state file.
	o.Encoder.SetStream(o.State.Stream())
	n := max(2, o.QueueEvents/batchEvents)
	p := &Pipeline{o: o, free: make(chan *sink.Batch, n), nbat: n, tasks: make(chan []encode.TaskItem, 16), log: o.Log,
		next: o.NextSeq, committed: o.NextSeq}
	for range n {
		p.free <- sink.NewBatch(p.release)
	}
	if o.ShutdownTimeout == 0 {
		p.o.ShutdownTimeout = 10 * time.Second
	}
	return p
}

func (p *Pipeline) release(b *sink.Batch) {
	p.o.Counters.Sent.Add(uint64(b.Delivered()))
	b.Reset()
	p.free <- b
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
	p.lastCommit = time.Now()
	var (
		ev   decode.Event
		meta encode.Meta
		buf  []byte
		cur  *sink.Batch
		err  error
	)
	for ctx.Err() == nil {
		rec, ok, nerr := src.Next()
		if nerr != nil {
			err = fmt.Errorf("read ring: %w", nerr)
			break
		}
		if ok {
			if cur == nil {
				// All batches in flight: wait for a sink to finish one
				// (the ring holds the backlog meanwhile), or for the stop.
				select {
				case cur = <-p.free:
				case <-ctx.Done():
				}
				if cur == nil {
					// rec was read but not handled: committing now would
					// drop it, so leave the ring as it is (read again at
					// the next start).
					return nil
				}
			}
			if buf, err = p.record(rec, cur, &ev, &meta, buf); err != nil {
				break
			}
			if cur.Len() >= batchEvents {
				p.submit(cur)
				cur = nil
			}
			// A commit waits for the sinks while producers keep writing:
			// every quarter of the ring leaves three quarters of room for
			// that wait, whose length grows with what is in flight.
			// (shm commits everything read at once; a commit up to a
			// position would free the ring as acknowledgements come.)
			if p.lastEnd-src.ConsumerPos() > p.o.RingSize/4 || time.Since(p.lastCommit) > 200*time.Millisecond {
				cur = p.flush(cur)
				if err = p.commit(ctx, false); err != nil {
					break
				}
			}
			continue
		}
		cur = p.flush(cur)
		if err = p.commit(ctx, false); err != nil {
			break
		}
		if err = p.shipTasks(ctx); err != nil {
			break
		}
		// Wait commits everything read: only safe once it is delivered,
		// which commit made sure of unless we are stopping.
		if ctx.Err() != nil {
			break
		}
		if werr := src.Wait(); werr != nil {
			if !errors.Is(werr, source.ErrClosed) {
				err = fmt.Errorf("wait for ring: %w", werr)
			}
			break
		}
	}
	p.flush(cur)
	if cerr := p.commit(ctx, true); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// record turns one ring record into an event in b.
func (p *Pipeline) record(rec shm.Record, b *sink.Batch, ev *decode.Event, meta *encode.Meta, buf []byte) ([]byte, error) {
	p.lastEnd = rec.Pos + uint64(shm.RecAlign(uint32(len(rec.Raw))))
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
		b.End(p.o.Encoder.AppendLost(b.Buf(), seq, ev.Lost, time.Now().UnixNano()))
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
		if err := p.o.State.Reserve(p.next); err != nil {
			return 0, err
		}
		p.hw = p.next + seqReserve
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
		p.free <- b
		return nil
	}
	p.submit(b)
	return nil
}

func (p *Pipeline) submit(b *sink.Batch) {
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
			p.free <- b
		}
	}()
	for len(held) < p.nbat {
		select {
		case b := <-p.free:
			held = append(held, b)
		case <-timeout:
			return false
		case <-cancelled:
			return false
		}
	}
	return true
}

// commit waits until everything read is durable, records the sequence
// state, then commits the ring.
func (p *Pipeline) commit(ctx context.Context, final bool) error {
	src := p.o.Source
	t0 := time.Now()
	ok := p.waitIdle(ctx, final)
	if d := time.Since(t0); d > 20*time.Millisecond {
		p.log.Debugf("commit waited %s for the sinks (%d bytes of ring read)", d, p.lastEnd-src.ConsumerPos())
	}
	if !ok {
		if !final {
			return nil // stopping: the final commit decides
		}
		p.log.Warnf("shutdown: sinks did not finish within %s; undelivered events stay in the ring and are read again at the next start", p.o.ShutdownTimeout)
		return nil
	}
	if p.lastEnd == src.ConsumerPos() && p.next == p.committed {
		p.lastCommit = time.Now()
		return nil
	}
	// State first: a kill between the two leaves the ring at P1 and the
	// state knowing both, so the numbers after a restart are right.
	if err := p.o.State.Write(src.ConsumerPos(), p.committed, p.lastEnd, p.next); err != nil {
		return err
	}
	src.Commit()
	p.committed = p.next
	p.lastCommit = time.Now()
	return nil
}

// shipTasks sends queued task items, at a commit point: their numbers are
// written to the state before they leave, so a crash can lose them (the
// heartbeat summarised them too) but never reuse their numbers.
func (p *Pipeline) shipTasks(ctx context.Context) error {
	for {
		var items []encode.TaskItem
		select {
		case items = <-p.tasks:
		default:
			return nil
		}
		pos := p.o.Source.ConsumerPos()
		first := p.next
		p.log.Debugf("shipping %d task result items from sequence number %d", len(items), first)
		if err := p.o.State.Write(pos, first+uint64(len(items)), pos, first+uint64(len(items))); err != nil {
			return err
		}
		now := time.Now().UnixNano()
		b := <-p.free
		for i := range items {
			b.End(p.o.Encoder.AppendTaskItem(b.Buf(), first+uint64(i), now, &items[i]))
		}
		p.next += uint64(len(items))
		p.committed = p.next
		p.flush(b)
		if !p.waitIdle(ctx, false) {
			return nil
		}
	}
}
