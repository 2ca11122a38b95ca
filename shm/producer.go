package shm

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Producer writes records into a Ring with the protocol of kernel/ring.c:
// reserve under a lock (moving only the producer position), fill the
// record outside it, commit by clearing BUSY with a release store. When the
// ring is full the newest record is dropped and counted, and a "lost N"
// record goes in front of the next one that fits. Safe for concurrent use.
//
// It serves tests, benchmarks and the agent's kernel-free mode; the module
// uses ring.c.
type Producer struct {
	ring *Ring
	mu   sync.Mutex
	// Records dropped since the last "lost N" record; under mu.
	lostPending uint64
	// The read position the last wake-up was for (ring.c's woken_rp);
	// committing goroutines race on it without mu, as C producers do.
	wokenRP atomic.Uint64
}

// notWoken is wokenRP before the first wake-up (SMITH_RING_NOT_WOKEN).
const notWoken = ^uint64(0)

// NewProducer returns a producer for r. Only one Producer (or C producer)
// may write a ring at a time: the lock is the Producer's own.
func NewProducer(r *Ring) *Producer {
	p := &Producer{ring: r}
	p.wokenRP.Store(notWoken)
	return p
}

// Reservation is a record reserved by Reserve: Raw (header included) is
// filled by the caller, then passed to Commit or Discard exactly once.
type Reservation struct {
	Raw []byte
}

func (p *Producer) count(c *uint64) { atomic.AddUint64(c, 1) }

// drop counts a record that did not reach the ring; under mu.
func (p *Producer) drop(c *uint64) {
	p.count(c)
	p.lostPending++
}

// place returns where a record of size bytes goes at or after pos, and the
// pad needed in front of it so it does not straddle the end.
func (p *Producer) place(pos, size uint64) (at, pad uint64) {
	off := pos & p.ring.mask
	if off+size > p.ring.Size() {
		pad = p.ring.Size() - off
	}
	return pos + pad, pad
}

func (p *Producer) putHdr(off uint64, n uint32, typ RecType, flags RecFlags) {
	d := p.ring.data[off : off+8]
	binary.LittleEndian.PutUint16(d[4:], uint16(typ))
	binary.LittleEndian.PutUint16(d[6:], uint16(flags))
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&d[0])), n)
}

// Reserve makes room for a record of n bytes (header included) with the
// given type and flags; the header is written with BUSY set. ok is false
// when the record is too large or the ring is full: the drop is counted.
func (p *Producer) Reserve(n uint32, typ RecType, flags RecFlags) (res Reservation, ok bool) {
	r := p.ring
	p.mu.Lock()
	defer p.mu.Unlock()
	if n < uint32(SizeofRecHdr) || n > r.maxRecord {
		p.drop(&r.meta.DroppedTooLarge)
		return Reservation{}, false
	}
	// Pairs with the reader's store-release of consumer_pos in Commit: the
	// reader is done with the bytes below it.
	cons := atomic.LoadUint64(r.cons)
	prod := atomic.LoadUint64(&r.meta.ProducerPos)

	pos := prod
	var lostAt, lostPad uint64
	if p.lostPending > 0 {
		lostAt, lostPad = p.place(pos, uint64(SizeofLost))
		pos = lostAt + uint64(SizeofLost)
	}
	recAt, recPad := p.place(pos, uint64(RecAlign(n)))
	end := recAt + uint64(RecAlign(n))
	// A producer position no producer could have written (the Go producer
	// may be handed any memory) makes the ring unusable: drop, as full.
	if prod%8 != 0 || prod-cons > r.Size() || end-cons > r.Size() {
		p.drop(&r.meta.DroppedFull)
		return Reservation{}, false
	}

	if p.lostPending > 0 {
		if lostPad > 0 {
			p.putHdr(prod&r.mask, uint32(lostPad)|RecDiscard, RecPad, 0)
		}
		off := lostAt & r.mask
		binary.LittleEndian.PutUint64(r.data[off+8:], p.lostPending)
		p.putHdr(off, uint32(SizeofLost), RecLost, 0)
		p.lostPending = 0
		p.count(&r.meta.LostRecords)
	}
	if recPad > 0 {
		p.putHdr((recAt-recPad)&r.mask, uint32(recPad)|RecDiscard, RecPad, 0)
	}
	off := recAt & r.mask
	p.putHdr(off, n|RecBusy, typ, flags)
	// Pairs with the reader's load-acquire of producer_pos: the headers
	// above (pads and lost committed, ours BUSY) are visible before it.
	atomic.StoreUint64(&r.meta.ProducerPos, end)
	return Reservation{Raw: r.data[off : off+uint64(n) : off+uint64(n)]}, true
}

// Commit publishes a reserved record. It returns true when the reader must
// be woken, by ring.c's rule: the ring is ready for it (see Ring.ready) and
// it was not woken for its read position yet.
func (p *Producer) Commit(res Reservation) bool {
	n := binary.LittleEndian.Uint32(res.Raw) &^ RecBusy
	// Pairs with the reader's load-acquire of the header.
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&res.Raw[0])), n)
	p.count(&p.ring.meta.Written)
	return p.wakeup()
}

// Discard gives a reserved record back; the reader skips it. Same result
// as Commit.
func (p *Producer) Discard(res Reservation) bool {
	n := binary.LittleEndian.Uint32(res.Raw)&^RecBusy | RecDiscard
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&res.Raw[0])), n)
	p.count(&p.ring.meta.Discarded)
	return p.wakeup()
}

// wakeup is the decision of ring.c's smith_ring_publish. Go's atomics are sequentially consistent, so the header
// store before it and the loads here are ordered as smp_mb() orders them.
func (p *Producer) wakeup() bool {
	v := p.ring.loadView()
	if !p.ring.ready(v) {
		return false
	}
	if p.wokenRP.Load() == v.read {
		return false
	}
	p.wokenRP.Store(v.read)
	return true
}

// Write reserves, copies and commits rec, whose first 8 bytes are a record
// header: its type and flags are used, its len is set to len(rec). ok is
// false when the record was dropped (counted); wake as from Commit.
func (p *Producer) Write(rec []byte) (ok, wake bool) {
	if len(rec) < SizeofRecHdr || len(rec) > int(RecLenMask) {
		p.mu.Lock()
		p.drop(&p.ring.meta.DroppedTooLarge)
		p.mu.Unlock()
		return false, false
	}
	res, ok := p.Reserve(uint32(len(rec)),
		RecType(binary.LittleEndian.Uint16(rec[4:])),
		RecFlags(binary.LittleEndian.Uint16(rec[6:])))
	if !ok {
		return false, false
	}
	copy(res.Raw[SizeofRecHdr:], rec[SizeofRecHdr:])
	return true, p.Commit(res)
}

// CountFault counts a record lost before it reached the ring because user
// memory could not be read; the next record is preceded by a lost record.
func (p *Producer) CountFault() {
	p.mu.Lock()
	p.drop(&p.ring.meta.DroppedFault)
	p.mu.Unlock()
}
