package shm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"sync/atomic"
	"unsafe"
)

// ErrCorrupt is wrapped by every error about ring contents the protocol
// cannot produce: bad lengths, positions or layout.
var ErrCorrupt = errors.New("corrupt ring")

// Ring is the memory of one ring: the consumer page, the meta page and the
// data area. It does not own the memory; whoever mapped it unmaps it, after
// every Reader and Producer on it is done.
type Ring struct {
	cons      *uint64       // consumer_pos: written by the reader only
	page      *RingConsumer // the whole reader page (cons is its first field)
	meta      *RingMeta     // producer page: read-only to a reader of the device
	data      []byte
	mask      uint64
	maxRecord uint32
}

// NewRing wraps memory that already holds a ring (the device's, or a file
// a producer initialised). It validates the meta page: magic, ABI major,
// data size (a power of two matching len(data)) and max_record.
func NewRing(consumer, meta, data []byte) (*Ring, error) {
	return newRing(consumer, meta, data, RingMinSize)
}

// newRing is NewRing with a smaller lower bound on the data size, so that
// tests and the fuzz target can use rings of a few hundred bytes.
func newRing(consumer, meta, data []byte, minSize uint64) (*Ring, error) {
	if len(consumer) < SizeofRingConsumer || len(meta) < SizeofRingMeta {
		return nil, fmt.Errorf("ring pages too small (consumer %d, meta %d bytes): %w", len(consumer), len(meta), ErrCorrupt)
	}
	if !aligned8(consumer) || !aligned8(meta) || (len(data) > 0 && !aligned8(data)) {
		return nil, fmt.Errorf("ring memory not 8-byte aligned: %w", ErrCorrupt)
	}
	m := (*RingMeta)(unsafe.Pointer(&meta[0]))
	if m.Magic != RingMagic {
		return nil, fmt.Errorf("ring magic %#x, want %#x: %w", m.Magic, RingMagic, ErrCorrupt)
	}
	if m.ABIMajor != ABIMajor {
		return nil, fmt.Errorf("ring ABI %d.%d, this reader speaks %d.x: %w", m.ABIMajor, m.ABIMinor, ABIMajor, ErrCorrupt)
	}
	size := m.DataSize
	if size < minSize || size > RingMaxSize || bits.OnesCount64(size) != 1 {
		return nil, fmt.Errorf("ring data size %d is not a power of two in [%d, %d]: %w", size, minSize, RingMaxSize, ErrCorrupt)
	}
	if uint64(len(data)) != size {
		return nil, fmt.Errorf("ring data size %d, but %d bytes are mapped: %w", size, len(data), ErrCorrupt)
	}
	if m.MaxRecord < uint32(SizeofLost) || uint64(m.MaxRecord) > min(RecMaxLen, size/4) {
		return nil, fmt.Errorf("ring max_record %d outside [%d, %d]: %w", m.MaxRecord, SizeofLost, min(RecMaxLen, size/4), ErrCorrupt)
	}
	return &Ring{
		cons:      (*uint64)(unsafe.Pointer(&consumer[0])),
		page:      (*RingConsumer)(unsafe.Pointer(&consumer[0])),
		meta:      m,
		data:      data,
		mask:      size - 1,
		maxRecord: m.MaxRecord,
	}, nil
}

// InitRing lays out an empty ring over the given memory, as
// smith_ring_init does in C, and wraps it. pageSize is recorded in the meta
// page; the data area is assumed to sit two pages after the start of the
// mapping, as on the device.
func InitRing(consumer, meta, data []byte, pageSize uint32) (*Ring, error) {
	return initRing(consumer, meta, data, pageSize, RingMinSize)
}

func initRing(consumer, meta, data []byte, pageSize uint32, minSize uint64) (*Ring, error) {
	if len(consumer) < SizeofRingConsumer || len(meta) < SizeofRingMeta {
		return nil, fmt.Errorf("init ring: pages too small (consumer %d, meta %d bytes)", len(consumer), len(meta))
	}
	if !aligned8(consumer) || !aligned8(meta) {
		return nil, fmt.Errorf("init ring: memory not 8-byte aligned")
	}
	size := uint64(len(data))
	m := (*RingMeta)(unsafe.Pointer(&meta[0]))
	*m = RingMeta{
		Magic:      RingMagic,
		ABIMajor:   ABIMajor,
		ABIMinor:   ABIMinor,
		PageSize:   pageSize,
		MaxRecord:  uint32(min(RecMaxLen, size/4)),
		DataSize:   size,
		DataOffset: 2 * uint64(pageSize),
	}
	page := (*RingConsumer)(unsafe.Pointer(&consumer[0]))
	atomic.StoreUint64(&page.ConsumerPos, 0)
	atomic.StoreUint64(&page.ReadPos, 0)
	atomic.StoreUint64(&page.WakeupBytes, 0)
	r, err := newRing(consumer, meta, data, minSize)
	if err != nil {
		return nil, fmt.Errorf("init ring: %w", err)
	}
	return r, nil
}

// memPageSize is the page size recorded by NewMemRing.
const memPageSize = 4096

// NewMemRing allocates an empty ring of dataSize bytes on the Go heap, for
// tests, benchmarks and in-process use.
func NewMemRing(dataSize uint64) (*Ring, error) {
	return newMemRing(dataSize, RingMinSize)
}

func newMemRing(dataSize, minSize uint64) (*Ring, error) {
	if dataSize < minSize || dataSize > RingMaxSize || bits.OnesCount64(dataSize) != 1 {
		return nil, fmt.Errorf("ring data size %d is not a power of two in [%d, %d]", dataSize, minSize, RingMaxSize)
	}
	words := make([]uint64, (2*memPageSize+dataSize)/8)
	mem := unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), len(words)*8)
	return initRing(mem[:memPageSize], mem[memPageSize:2*memPageSize], mem[2*memPageSize:], memPageSize, minSize)
}

// Size is the data area's size in bytes.
func (r *Ring) Size() uint64 { return r.mask + 1 }

// MaxRecord is the largest record length a producer writes to this ring.
func (r *Ring) MaxRecord() uint32 { return r.maxRecord }

// Meta returns a snapshot of the meta page's static fields and counters.
func (r *Ring) Meta() RingMeta {
	m := RingMeta{
		Magic:       r.meta.Magic,
		ABIMajor:    r.meta.ABIMajor,
		ABIMinor:    r.meta.ABIMinor,
		PageSize:    r.meta.PageSize,
		MaxRecord:   r.meta.MaxRecord,
		DataSize:    r.meta.DataSize,
		DataOffset:  r.meta.DataOffset,
		ProducerPos: r.ProducerPos(),
	}
	m.Counters = r.Counters()
	return m
}

// Counters reads the meta page's counters. Each is read atomically; the
// set is not a snapshot of one instant.
func (r *Ring) Counters() Counters {
	c := &r.meta.Counters
	return Counters{
		Written:         atomic.LoadUint64(&c.Written),
		DroppedFull:     atomic.LoadUint64(&c.DroppedFull),
		DroppedTooLarge: atomic.LoadUint64(&c.DroppedTooLarge),
		DroppedFault:    atomic.LoadUint64(&c.DroppedFault),
		Truncated:       atomic.LoadUint64(&c.Truncated),
		HookMissed:      atomic.LoadUint64(&c.HookMissed),
		LostRecords:     atomic.LoadUint64(&c.LostRecords),
		Discarded:       atomic.LoadUint64(&c.Discarded),
	}
}

// ProducerPos is the producers' position (load-acquire).
func (r *Ring) ProducerPos() uint64 { return atomic.LoadUint64(&r.meta.ProducerPos) }

// ConsumerPos is the reader's committed position.
func (r *Ring) ConsumerPos() uint64 { return atomic.LoadUint64(r.cons) }

// ReadPos is the read position the reader last published (ABI 1.1), as
// stored: it may be outside [ConsumerPos, ProducerPos].
func (r *Ring) ReadPos() uint64 { return atomic.LoadUint64(&r.page.ReadPos) }

// WakeupBytes is the watermark the reader last published (ABI 1.1).
func (r *Ring) WakeupBytes() uint64 { return atomic.LoadUint64(&r.page.WakeupBytes) }

// view is the reader's page and the producer position, loaded once, with
// ring.c's corrections: a read position outside [cons, prod] is taken as
// cons, a watermark above half the ring as half.
type view struct {
	cons, read, wakeup, prod uint64
}

func (r *Ring) loadView() view {
	v := view{
		cons:   atomic.LoadUint64(&r.page.ConsumerPos),
		read:   atomic.LoadUint64(&r.page.ReadPos),
		wakeup: atomic.LoadUint64(&r.page.WakeupBytes),
		prod:   atomic.LoadUint64(&r.meta.ProducerPos),
	}
	v.fix(r.Size())
	return v
}

func (v *view) fix(size uint64) {
	if v.read-v.cons > v.prod-v.cons {
		v.read = v.cons
	}
	v.wakeup = min(v.wakeup, size/2)
}

// short is how many bytes the producers must still commit before v (fixed)
// is due by size: the watermark past the read position, or half the ring
// past the commit position, whichever comes first (0: due, or no
// watermark).
func (v view) short(size uint64) uint64 {
	if v.wakeup == 0 {
		return 0
	}
	toMark, toHalf := uint64(0), uint64(0)
	if read := v.prod - v.read; read < v.wakeup {
		toMark = v.wakeup - read
	}
	if held := v.prod - v.cons; held < size/2 {
		toHalf = size/2 - held
	}
	return min(toMark, toHalf)
}

// ready is ring.c's smith_ring_ready, the predicate of smith_abi.h that
// decides both a producer's wake-up and the device's poll(): a committed
// record lies at the read position and the watermark is reached, or the
// ring is half full, or a "lost N" record lies at the read position (or
// right after a pad there).
func (r *Ring) ready(v view) bool {
	if v.read == v.prod {
		return false
	}
	off := v.read & r.mask &^ 7
	w := r.hdrWord(off)
	if w&RecBusy != 0 {
		return false
	}
	if v.short(r.Size()) == 0 {
		return true
	}
	typ := RecType(binary.LittleEndian.Uint16(r.data[off+4:]))
	if typ == RecPad && w&RecLenMask >= uint32(SizeofRecHdr) {
		off = (off + uint64(RecAlign(w&RecLenMask))) & r.mask
		w = r.hdrWord(off)
		typ = RecType(binary.LittleEndian.Uint16(r.data[off+4:]))
	}
	return w&RecBusy == 0 && typ == RecLost
}

// hdrWord loads the len word of the record header at data offset off with
// acquire semantics; off is 8-aligned and at most Size()-8.
func (r *Ring) hdrWord(off uint64) uint32 {
	return atomic.LoadUint32((*uint32)(unsafe.Pointer(&r.data[off])))
}

func aligned8(b []byte) bool { return uintptr(unsafe.Pointer(unsafe.SliceData(b)))%8 == 0 }

// SizeofLost and SizeofTestRec are the fixed parts of those records.
const (
	SizeofLost    = int(unsafe.Sizeof(Lost{}))
	SizeofTestRec = int(unsafe.Sizeof(TestRec{}))
	SizeofEvent   = int(unsafe.Sizeof(Event{}))
	SizeofField   = int(unsafe.Sizeof(Field{}))
)
