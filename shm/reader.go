package shm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
)

// ErrClosed is returned by Read and Wait after Close.
var ErrClosed = errors.New("ring reader closed")

// errNoWaiter is returned by Wait on a Reader made without a Waiter.
var errNoWaiter = errors.New("ring reader has no waiter: use Next")

// Record is a zero-copy view of one record in the ring. Raw aliases the
// ring's memory and is valid until the Reader's next Commit (or a Wait
// that commits); copy what must live longer.
type Record struct {
	Pos   uint64   // ring position of the header
	Type  RecType  // the header's type
	Flags RecFlags // the header's flags
	Raw   []byte   // the whole record, header included, len bytes
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
}

// Reader consumes the records of a Ring. It is not safe for concurrent use,
// except Close, which may be called from any goroutine to interrupt a
// blocked Read or Wait.
type Reader struct {
	ring   *Ring
	waiter Waiter
	pos    uint64 // next record to read
	cons   uint64 // last position stored to the consumer page
	prod   uint64 // last producer position loaded
	err    error  // sticky: a corrupt ring cannot be read further
	stats  ReaderStats
	closed atomic.Bool
}

// NewReader starts reading at the ring's committed consumer position, so
// records a previous reader left unconsumed are read, not lost. w is how
// Read and Wait block (nil: only Next is usable).
func NewReader(r *Ring, w Waiter) (*Reader, error) {
	rd := &Reader{ring: r, waiter: w}
	rd.cons = r.ConsumerPos()
	rd.pos, rd.prod = rd.cons, rd.cons
	if rd.cons%8 != 0 {
		return nil, fmt.Errorf("consumer position %d not 8-byte aligned: %w", rd.cons, ErrCorrupt)
	}
	if err := rd.loadProducer(); err != nil {
		return nil, err
	}
	return rd, nil
}

// loadProducer refreshes the cached producer position and checks it
// against what the protocol allows.
func (r *Reader) loadProducer() error {
	// Pairs with the producers' store-release of producer_pos: the headers
	// of records below it are visible once we see it.
	p := r.ring.ProducerPos()
	switch {
	case p < r.prod:
		r.err = fmt.Errorf("producer position went back from %d to %d: %w", r.prod, p, ErrCorrupt)
	case p-r.cons > r.ring.Size():
		r.err = fmt.Errorf("producer position %d is more than the ring size (%d) ahead of the consumer at %d: %w", p, r.ring.Size(), r.cons, ErrCorrupt)
	case p%8 != 0:
		r.err = fmt.Errorf("producer position %d not 8-byte aligned: %w", p, ErrCorrupt)
	default:
		r.prod = p
	}
	return r.err
}

// Next returns the next committed record without blocking; ok is false when
// there is none yet (the ring is empty or the next record is still being
// written). Pad and discarded records are skipped.
func (r *Reader) Next() (rec Record, ok bool, err error) {
	if r.err != nil {
		return Record{}, false, r.err
	}
	for {
		if r.pos == r.prod {
			if err := r.loadProducer(); err != nil {
				return Record{}, false, err
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
		switch {
		case n < uint32(SizeofRecHdr) || n > r.ring.maxRecord:
			r.err = fmt.Errorf("record at %d has length %d outside [%d, %d]: %w", r.pos, n, SizeofRecHdr, r.ring.maxRecord, ErrCorrupt)
		case off+step > r.ring.Size():
			r.err = fmt.Errorf("record at %d of length %d crosses the end of the ring: %w", r.pos, n, ErrCorrupt)
		case r.pos+step > r.prod:
			r.err = fmt.Errorf("record at %d of length %d extends past the producer position %d: %w", r.pos, n, r.prod, ErrCorrupt)
		}
		if r.err != nil {
			return Record{}, false, r.err
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
			if n < uint32(SizeofLost) {
				r.err = fmt.Errorf("lost record at %d has length %d, want %d: %w", pos, n, SizeofLost, ErrCorrupt)
				return Record{}, false, r.err
			}
			r.stats.LostRecords++
			r.stats.Lost += binary.LittleEndian.Uint64(raw[8:])
		}
		r.stats.Records++
		return rec, true, nil
	}
}

// Commit hands every record returned so far back to the producers: one
// store-release of the consumer position for the whole batch. Views
// returned before it are invalid afterwards.
func (r *Reader) Commit() {
	if r.pos != r.cons {
		// Pairs with the producers' load-acquire of consumer_pos in reserve:
		// our reads of the records are done before they may overwrite them.
		atomic.StoreUint64(r.ring.cons, r.pos)
		r.cons = r.pos
	}
}

// ready reports whether Next would return a record (or an error) now.
func (r *Reader) ready() bool {
	if r.err != nil {
		return true
	}
	if r.pos == r.prod {
		if r.loadProducer() != nil {
			return true
		}
		if r.pos == r.prod {
			return false
		}
	}
	return r.ring.hdrWord(r.pos&r.ring.mask)&RecBusy == 0
}

// Wait blocks until a record is ready, the ring turns out corrupt, or Close.
// It commits first: producers wake a reader only when it has consumed
// everything before their record, so a reader must not sleep on a batch it
// holds. Views returned before Wait are invalid afterwards.
//
// A record that is reserved but not yet committed (BUSY) is not ready. The
// device stays readable meanwhile (its producer is ahead), so on the device
// Wait polls again until the commit, which comes within the hook that
// reserved it; an Eventfd is signalled by that commit.
func (r *Reader) Wait() error {
	if r.waiter == nil {
		return errNoWaiter
	}
	r.Commit()
	for {
		if r.closed.Load() {
			return ErrClosed
		}
		// The commit above is a sequentially consistent store and ready
		// loads after it: either the producer's commit sees our consumer
		// position and wakes us, or we see its record here.
		if r.ready() {
			return nil
		}
		if err := r.waiter.Wait(); err != nil {
			if errors.Is(err, ErrClosed) {
				return ErrClosed
			}
			return fmt.Errorf("wait for ring records: %w", err)
		}
	}
}

// Read returns the next record, blocking until there is one. When it has
// to block it commits (see Wait), so views from earlier calls end there.
func (r *Reader) Read() (Record, error) {
	for {
		rec, ok, err := r.Next()
		if err != nil {
			return Record{}, err
		}
		if ok {
			return rec, nil
		}
		if err := r.Wait(); err != nil {
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
