package shm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by Read and Wait after Close.
var ErrClosed = errors.New("ring reader closed")

// ErrDeadline is returned by Read and Wait when the deadline set with
// SetDeadline passed; it is os.ErrDeadlineExceeded.
var ErrDeadline = os.ErrDeadlineExceeded

// ErrWoken may be returned by a Waiter's Wait when it was woken for work
// other than records; Reader.Wait then returns it at once.
var ErrWoken = errors.New("ring waiter woken")

// DefaultWakeupTimeout is how long a Reader sleeps at most while records
// below its watermark wait: the latency bound of a record at any rate.
const DefaultWakeupTimeout = 100 * time.Millisecond

// idleTimeoutFactor: a Reader that found nothing at all after a whole
// timeout sleeps with a watermark of 0 (the first record wakes it) and
// this many timeouts as its bound, so an idle host pays few wake-ups.
const idleTimeoutFactor = 10

// errNoWaiter is returned by Wait on a Reader made without a Waiter.
var errNoWaiter = errors.New("ring reader has no waiter: use Next")

// Record is a zero-copy view of one record in the ring. Raw aliases the
// ring's memory and is valid until the Reader commits past it (Commit, or
// CommitTo beyond its Pos); copy what must live longer.
//
// A record with Resync set is not in the ring: the Reader made it up when
// it resynchronised (see Resync). It is a RecLost record with a count of
// 0 (how many records the gap held is unknown); Pos is Resync.From and
// End is Resync.To.
type Record struct {
	Pos    uint64   // ring position of the header
	Type   RecType  // the header's type
	Flags  RecFlags // the header's flags
	Raw    []byte   // the whole record, header included, len bytes
	Resync *Resync  // set on the gap record of a resynchronisation only
}

// End is the ring position just after the record: a valid CommitTo target.
func (r Record) End() uint64 {
	if r.Resync != nil {
		return r.Resync.To
	}
	return r.Pos + uint64(RecAlign(uint32(len(r.Raw))))
}

// Resync is a gap a Reader skipped. The reader's side of the ring is
// untrusted memory: a consumer position that is not 8-byte aligned, ahead
// of the producer or more than the ring behind it (stale, or written by
// something else), or a record header at the read position with a length
// no producer writes (its bytes were overwritten because the consumer
// page was), cannot be read on from. Rather than fail for good, and make
// every restarted reader fail again at the same position, the Reader
// gives up what lies between its position and the producer's and goes on
// from the producer's: the records written from then on are read as
// usual. A consumer page changed behind the Reader's back while it waits
// (the module then drops or overwrites records) is stored back the same
// way, as a gap of 0 bytes.
//
// The producer's side is kernel memory, read-only to a reader: a producer
// position that goes back or is not 8-byte aligned stays an error.
type Resync struct {
	From  uint64 // the position found corrupt (as found: maybe misaligned)
	To    uint64 // where reading goes on: the producer position (the read position for a page stored back)
	Bytes uint64 // bytes of records skipped: To - From, at most the ring's size; 0 when From was ahead of To
	Err   error  // what was wrong; wraps ErrCorrupt
}

// Payload is the record after its 8-byte header.
func (r Record) Payload() []byte { return r.Raw[SizeofRecHdr:] }

// LostCount is the count of a RecLost record, and false for other types.
func (r Record) LostCount() (uint64, bool) {
	if r.Type != RecLost || len(r.Raw) < SizeofLost {
		return 0, false
	}
	return binary.LittleEndian.Uint64(r.Raw[8:]), true
}

// ReaderStats counts what a Reader has seen since it was made.
type ReaderStats struct {
	Records     uint64 // records returned by Next, lost records included
	LostRecords uint64 // "lost N" records returned
	Lost        uint64 // sum of their counts: records the producer dropped
	Skipped     uint64 // pad and discarded records stepped over
	Wakeups     uint64 // sleeps in the Waiter that ended (record, timeout or other)
	Resyncs     uint64 // resynchronisations (gap records returned)
	ResyncBytes uint64 // sum of their Bytes
}

// Reader consumes the records of a Ring. It keeps two positions: the read
// position (Next and Read advance it) and the commit position (Commit and
// CommitTo move it), before which producers may reuse the ring. It is not
// safe for concurrent use, except Close, SetDeadline and Wake, which may be
// called from any goroutine.
type Reader struct {
	ring    *Ring
	waiter  Waiter
	pos     uint64  // read position: next record to read
	cons    uint64  // commit position: last stored to the consumer page
	prod    uint64  // last producer position loaded
	err     error   // sticky: a corrupt producer side cannot be read further
	gap     *Resync // a resynchronisation not yet returned by Next
	stats   ReaderStats
	closed  atomic.Bool
	wakeup  uint64        // watermark in bytes (SetWakeup)
	timeout time.Duration // sleep bound (SetWakeup)
	legacy  bool          // a 1.0 producer: it wakes on consumer_pos only
	// deadline of a blocked Read or Wait, unix ns; 0 none (SetDeadline)
	deadline atomic.Int64
	// The producer position and when Wait last looked at it: its rate,
	// for a Waiter that polls (untilDue).
	seenProd uint64
	seenAt   time.Time
}

// NewReader starts reading at the ring's committed consumer position, so
// records a previous reader read but did not commit are read again, not
// lost. A corrupt consumer position (see Resync) is replaced at once by
// the producer position, stored to the consumer page so that producers
// have room again, and the first Next returns the gap record. w is how
// Read and Wait block (nil: only Next is usable). The watermark starts at
// a quarter of the ring and the timeout at DefaultWakeupTimeout
// (SetWakeup changes them).
func NewReader(r *Ring, w Waiter) (*Reader, error) {
	rd := &Reader{ring: r, waiter: w, wakeup: r.Size() / 4, timeout: DefaultWakeupTimeout}
	rd.legacy = r.meta.ABIMinor < 1
	cons, p := r.ConsumerPos(), r.ProducerPos()
	if p%8 != 0 {
		return nil, fmt.Errorf("producer position %d not 8-byte aligned: %w", p, ErrCorrupt)
	}
	rd.cons, rd.pos, rd.prod = cons, cons, p
	var why error
	switch {
	case cons%8 != 0:
		why = fmt.Errorf("consumer position %d not 8-byte aligned", cons)
	case cons > p:
		why = fmt.Errorf("consumer position %d is ahead of the producer at %d", cons, p)
	case p-cons > r.Size():
		why = fmt.Errorf("consumer position %d is more than the ring size (%d) behind the producer at %d", cons, r.Size(), p)
	}
	if why != nil {
		rd.gap = rd.resync(p, why)
		rd.commit(p)
	}
	rd.publish(rd.wakeup)
	return rd, nil
}

// resync moves the read position to the producer position p, giving up
// the records between them: it returns the gap and counts it.
func (r *Reader) resync(p uint64, why error) *Resync {
	g := &Resync{From: r.pos, To: p, Err: fmt.Errorf("%w: %w", why, ErrCorrupt)}
	if r.pos <= p {
		g.Bytes = min(p-r.pos, r.ring.Size())
	}
	r.pos, r.prod = p, p
	r.stats.Resyncs++
	r.stats.ResyncBytes += g.Bytes
	return g
}

// gapRecord is the record Next returns for g: a "lost" record of count 0
// in memory of its own.
func (r *Reader) gapRecord(g *Resync) Record {
	raw := make([]byte, SizeofLost)
	binary.LittleEndian.PutUint32(raw, uint32(SizeofLost))
	binary.LittleEndian.PutUint16(raw[4:], uint16(RecLost))
	r.stats.Records++
	r.stats.LostRecords++
	return Record{Pos: g.From, Type: RecLost, Raw: raw, Resync: g}
}

// SetWakeup sets how the Reader asks to be woken: once bytes of records lie
// past its read position (0: on the first record), and at the latest after
// timeout, which bounds how long a record below the watermark waits.
// bytes is at most half the ring (the producers wake the reader at that
// fill level anyway); timeout is positive.
func (r *Reader) SetWakeup(bytes uint64, timeout time.Duration) error {
	if bytes > r.ring.Size()/2 {
		return fmt.Errorf("wake-up watermark %d bytes: more than half the ring (%d bytes)", bytes, r.ring.Size()/2)
	}
	if timeout <= 0 {
		return fmt.Errorf("wake-up timeout %v: want a positive duration", timeout)
	}
	r.wakeup, r.timeout = bytes, timeout
	return nil
}

// SetDeadline makes a blocked Read or Wait return ErrDeadline once t has
// passed; the zero time removes the deadline. Safe from any goroutine; a
// Wait already asleep sees a new deadline at its next wake-up, within the
// wake-up timeout.
func (r *Reader) SetDeadline(t time.Time) {
	if t.IsZero() {
		r.deadline.Store(0)
		return
	}
	r.deadline.Store(max(t.UnixNano(), 1))
}

// publish stores the read position and the watermark to the reader page,
// with sequentially consistent stores: the loads that follow (ready) are
// ordered after them, as smp_mb() orders them in ring.c (pair D/D').
func (r *Reader) publish(wakeup uint64) {
	if r.legacy {
		return
	}
	atomic.StoreUint64(&r.ring.page.WakeupBytes, wakeup)
	atomic.StoreUint64(&r.ring.page.ReadPos, r.pos)
}

// loadProducer refreshes the cached producer position and checks it
// against what the protocol allows. With bad (what is wrong at the read
// position), or when the producer is more than the ring ahead of the read
// position (it overwrote records not yet read), the Reader resynchronises
// to it: r.gap is set.
func (r *Reader) loadProducer(bad error) error {
	// Pairs with the producers' store-release of producer_pos: the headers
	// of records below it are visible once we see it.
	p := r.ring.ProducerPos()
	switch {
	case p < r.prod:
		r.err = fmt.Errorf("producer position went back from %d to %d: %w", r.prod, p, ErrCorrupt)
	case p%8 != 0:
		r.err = fmt.Errorf("producer position %d not 8-byte aligned: %w", p, ErrCorrupt)
	case bad != nil:
		r.gap = r.resync(p, bad)
	case p-r.pos > r.ring.Size():
		r.gap = r.resync(p, fmt.Errorf("producer position %d is more than the ring size (%d) ahead of the read position %d: unread records were overwritten", p, r.ring.Size(), r.pos))
	default:
		r.prod = p
	}
	return r.err
}

// Next returns the next committed record without blocking; ok is false when
// there is none yet (the ring is empty or the next record is still being
// written). Pad and discarded records are skipped. A header at the read
// position that no producer writes makes the Reader resynchronise: Next
// returns the gap record (Record.Resync) and reads on from the producer
// position.
func (r *Reader) Next() (rec Record, ok bool, err error) {
	if r.err != nil {
		return Record{}, false, r.err
	}
	for {
		if r.gap != nil {
			g := r.gap
			r.gap = nil
			return r.gapRecord(g), true, nil
		}
		if r.pos == r.prod {
			if err := r.loadProducer(nil); err != nil {
				return Record{}, false, err
			}
			if r.gap != nil {
				continue
			}
			if r.pos == r.prod {
				return Record{}, false, nil
			}
		}
		off := r.pos & r.ring.mask
		// Pairs with the producer's store-release that clears BUSY: the
		// record's bytes are visible once we see it clear.
		w := r.ring.hdrWord(off)
		if w&RecBusy != 0 {
			return Record{}, false, nil
		}
		n := w & RecLenMask
		step := uint64(RecAlign(n))
		var bad error
		switch {
		case n < uint32(SizeofRecHdr) || n > r.ring.maxRecord:
			bad = fmt.Errorf("record at %d has length %d outside [%d, %d]", r.pos, n, SizeofRecHdr, r.ring.maxRecord)
		case off+step > r.ring.Size():
			bad = fmt.Errorf("record at %d of length %d crosses the end of the ring", r.pos, n)
		case r.pos+step > r.prod:
			bad = fmt.Errorf("record at %d of length %d extends past the producer position %d", r.pos, n, r.prod)
		case w&RecDiscard == 0 && RecType(binary.LittleEndian.Uint16(r.ring.data[off+4:])) == RecLost && n < uint32(SizeofLost):
			bad = fmt.Errorf("lost record at %d has length %d, want %d", r.pos, n, SizeofLost)
		}
		if bad != nil {
			if err := r.loadProducer(bad); err != nil {
				return Record{}, false, err
			}
			continue
		}
		pos := r.pos
		r.pos += step
		if w&RecDiscard != 0 {
			r.stats.Skipped++
			continue
		}
		raw := r.ring.data[off : off+uint64(n) : off+uint64(n)]
		rec := Record{
			Pos:   pos,
			Type:  RecType(binary.LittleEndian.Uint16(raw[4:])),
			Flags: RecFlags(binary.LittleEndian.Uint16(raw[6:])),
			Raw:   raw,
		}
		if rec.Type == RecLost {
			r.stats.LostRecords++
			r.stats.Lost += binary.LittleEndian.Uint64(raw[8:])
		}
		r.stats.Records++
		return rec, true, nil
	}
}

// Commit hands every record read so far back to the producers: one
// store-release of the consumer position for the whole batch. Views
// returned before it are invalid afterwards.
func (r *Reader) Commit() { r.commit(r.pos) }

// CommitTo hands the records before pos back to the producers. pos is the
// End of a record returned by Next or Read (or the commit position): it
// lies between the commit position and the read position, 8-aligned.
// Views of records before pos are invalid afterwards.
func (r *Reader) CommitTo(pos uint64) error {
	if pos%8 != 0 || pos-r.cons > r.pos-r.cons {
		return fmt.Errorf("commit to %d: outside [commit %d, read %d] or not 8-aligned", pos, r.cons, r.pos)
	}
	r.commit(pos)
	return nil
}

func (r *Reader) commit(pos uint64) {
	if pos != r.cons {
		// Pairs with the producers' load-acquire of consumer_pos in reserve:
		// our reads of the records are done before they may overwrite them.
		atomic.StoreUint64(r.ring.cons, pos)
		r.cons = pos
	}
}

// ReadPos is the read position: the ring position of the next record.
func (r *Reader) ReadPos() uint64 { return r.pos }

// CommitPos is the commit position last stored to the consumer page.
func (r *Reader) CommitPos() uint64 { return r.cons }

// state says what Wait finds at the read position: due (the ring's ready
// predicate holds for the given watermark, as the producers evaluate it),
// any (a committed record is there, watermark or not) and busy (the
// producer is ahead but the record there is still being written).
func (r *Reader) state(wakeup uint64) (due, any, busy bool) {
	if r.err != nil || r.gap != nil {
		return true, true, false
	}
	if c := r.ring.ConsumerPos(); c != r.cons {
		// Only this Reader writes the consumer page: something else did,
		// and the producers now count free space from a wrong position.
		atomic.StoreUint64(r.ring.cons, r.cons)
		r.gap = &Resync{From: r.pos, To: r.pos, Err: fmt.Errorf("consumer position changed behind the reader from %d to %d, stored back: %w", r.cons, c, ErrCorrupt)}
		r.stats.Resyncs++
		return true, true, false
	}
	// Always the producer's current position: a stale one could judge the
	// watermark unmet after a producer, seeing it met, woke us for the
	// last time at this read position.
	if r.loadProducer(nil) != nil || r.gap != nil {
		return true, true, false
	}
	if r.pos == r.prod {
		return false, false, false
	}
	if r.ring.hdrWord(r.pos&r.ring.mask)&RecBusy != 0 {
		return false, false, true
	}
	if r.legacy {
		return true, true, false
	}
	v := view{cons: r.cons, read: r.pos, wakeup: wakeup, prod: r.prod}
	v.fix(r.ring.Size())
	return r.ring.ready(v), true, false
}

// Wait publishes the read position and blocks until records are due: the
// watermark is reached (or the ring is half full, or a lost record
// arrived), or the wake-up timeout passed with at least one record ready.
// It returns early with ErrClosed after Close, ErrDeadline after the
// deadline, or ErrWoken when the Waiter was woken for other work. Wait does
// not commit: views stay valid. (With a 1.0 producer, which wakes a reader
// only at its commit position, Wait commits first, as 1.0 readers did.)
//
// A reader that finds nothing at all for a whole timeout asks to be woken
// by the first record and sleeps up to ten timeouts, so an idle host costs
// about one wake-up a second, while a record still arrives at once.
func (r *Reader) Wait() error {
	if r.waiter == nil {
		return errNoWaiter
	}
	if r.legacy {
		r.Commit()
	}
	wakeup, bound := r.wakeup, r.timeout
	r.publish(wakeup)
	start := time.Now()
	for {
		if r.closed.Load() {
			return ErrClosed
		}
		// publish's stores are sequentially consistent and state loads
		// after them: either a producer's commit sees our read position
		// and wakes us, or we see its record here.
		due, any, busy := r.state(wakeup)
		if due {
			return nil
		}
		now := time.Now()
		sleep := bound - now.Sub(start)
		if sleep <= 0 {
			switch {
			case any:
				return nil
			case !busy && wakeup != 0:
				// Nothing at all: wake on the first record, sleep longer.
				wakeup, bound = 0, idleTimeoutFactor*r.timeout
				r.publish(wakeup)
				start = now
				continue
			}
			// A record is being written at the read position: its commit
			// wakes us; look again after a timeout in case it never comes.
			start, sleep = now, bound
		}
		if _, polls := r.waiter.(poller); polls {
			sleep = min(sleep, r.untilDue(wakeup, now))
		}
		if d := r.deadline.Load(); d != 0 {
			left := time.Duration(d - now.UnixNano())
			if left <= 0 {
				return ErrDeadline
			}
			sleep = min(sleep, left)
		}
		err := r.waiter.Wait(sleep)
		r.stats.Wakeups++
		if err != nil {
			switch {
			case errors.Is(err, ErrClosed):
				return ErrClosed
			case errors.Is(err, ErrWoken):
				return ErrWoken
			}
			return fmt.Errorf("wait for ring records: %w", err)
		}
	}
}

// minPollSleep is the shortest sleep untilDue asks of a polling Waiter;
// rateWindow is how long it waits for the producer to move before it
// takes it for idle.
const (
	minPollSleep = 250 * time.Microsecond
	rateWindow   = 10 * time.Millisecond
)

// untilDue is how long a Waiter that polls (nothing wakes it when
// records come: a ring in a file) should sleep so as to look again about
// when the records become due, at the rate the producer position rose
// since Wait last looked: the watermark (wakeup bytes past the read
// position) or half the ring past the commit position, as the device
// would wake the reader.  Without a rate yet (the first look, or a
// producer that did not move since a look less than rateWindow ago) it
// looks again after a millisecond; a producer still for longer is idle,
// and the Waiter sleeps its own interval.
func (r *Reader) untilDue(wakeup uint64, now time.Time) time.Duration {
	prod, seen, at := r.prod, r.seenProd, r.seenAt
	if wakeup == 0 {
		return time.Duration(math.MaxInt64)
	}
	if at.IsZero() {
		r.seenProd, r.seenAt = prod, now
		return 4 * minPollSleep // a second look, for a rate
	}
	dt := now.Sub(at)
	if prod <= seen || dt <= 0 {
		if dt < rateWindow {
			return 4 * minPollSleep // too soon to tell: keep the sample
		}
		r.seenProd, r.seenAt = prod, now
		return time.Duration(math.MaxInt64) // idle: the Waiter's interval
	}
	r.seenProd, r.seenAt = prod, now
	v := view{cons: r.cons, read: r.pos, wakeup: wakeup, prod: prod}
	v.fix(r.ring.Size())
	eta := float64(v.short(r.ring.Size())) / float64(prod-seen) * float64(dt)
	if eta >= float64(time.Hour) {
		return time.Duration(math.MaxInt64) // a slow producer: the interval
	}
	return max(time.Duration(eta), minPollSleep)
}

// Wake makes a blocked Wait (or the next one) return ErrWoken, for work
// other than records. Safe from any goroutine; it does nothing when the
// Reader's Waiter is not a Waker.
func (r *Reader) Wake() {
	if w, ok := r.waiter.(Waker); ok {
		w.Wake()
	}
}

// Read returns the next record, blocking (in Wait) until there is one. It
// never commits: Commit or CommitTo give the records back.
func (r *Reader) Read() (Record, error) {
	for {
		rec, ok, err := r.Next()
		if err != nil {
			return Record{}, err
		}
		if ok {
			return rec, nil
		}
		if err := r.Wait(); err != nil && !errors.Is(err, ErrWoken) {
			return Record{}, err
		}
	}
}

// Close interrupts a blocked Read or Wait, which then return ErrClosed, and
// closes the Waiter. It does not unmap the ring: its owner does that once
// the reading goroutine has returned. Safe to call from any goroutine, and
// more than once.
func (r *Reader) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	if r.waiter != nil {
		return r.waiter.Close()
	}
	return nil
}

// Stats returns what the Reader has seen so far.
func (r *Reader) Stats() ReaderStats { return r.stats }

// Pending is the number of bytes between the committed consumer position
// and the last producer position seen: how full the ring was.
func (r *Reader) Pending() uint64 { return r.prod - r.cons }

// Ring returns the ring being read.
func (r *Reader) Ring() *Ring { return r.ring }
