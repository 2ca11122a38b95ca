//go:build !vmtest

package shm

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"
	"unsafe"
)

func unsafeBytes(words []uint64) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), len(words)*8)
}

func metaOf(b []byte) *RingMeta { return (*RingMeta)(unsafe.Pointer(&b[0])) }

// testRec builds a SMITH_REC_TEST record of n bytes with the payload
// pattern of smith_abi.h.
func testRec(n int, producer uint32, seq uint64) []byte {
	b := make([]byte, n)
	binary.LittleEndian.PutUint16(b[4:], uint16(RecTest))
	if n >= SizeofTestRec {
		binary.LittleEndian.PutUint32(b[8:], producer)
		binary.LittleEndian.PutUint64(b[16:], seq)
		for i := range b[SizeofTestRec:] {
			b[SizeofTestRec+i] = byte(seq + uint64(i))
		}
	}
	return b
}

func newTestRing(t testing.TB, size uint64) (*Ring, *Producer, *Reader) {
	t.Helper()
	return newWaitingRing(t, size, nil)
}

// newWaitingRing is newTestRing with the reader sleeping on w.
func newWaitingRing(t testing.TB, size uint64, w Waiter) (*Ring, *Producer, *Reader) {
	t.Helper()
	r, err := newMemRing(size, 64)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := NewReader(r, w)
	if err != nil {
		t.Fatal(err)
	}
	return r, NewProducer(r), rd
}

func mustWrite(t testing.TB, p *Producer, rec []byte) {
	t.Helper()
	if ok, _ := p.Write(rec); !ok {
		t.Fatalf("write of %d bytes dropped", len(rec))
	}
}

// mustNext returns the next record, failing if there is none.
func mustNext(t testing.TB, rd *Reader) Record {
	t.Helper()
	rec, ok, err := rd.Next()
	if err != nil || !ok {
		t.Fatalf("Next: ok %v, err %v; want a record", ok, err)
	}
	return rec
}

// mustSeqs reads the next records and checks their test sequence numbers.
func mustSeqs(t testing.TB, rd *Reader, want ...uint64) {
	t.Helper()
	for i, w := range want {
		if seq := binary.LittleEndian.Uint64(mustNext(t, rd).Raw[16:]); seq != w {
			t.Fatalf("record %d: seq %d, want %d", i, seq, w)
		}
	}
}

func mustBeEmpty(t testing.TB, rd *Reader) {
	t.Helper()
	if rec, ok, err := rd.Next(); ok || err != nil {
		t.Fatalf("Next: got record type %d at %d (err %v); want none", rec.Type, rec.Pos, err)
	}
}

func TestEmptyRingHasNoRecord(t *testing.T) {
	_, _, rd := newTestRing(t, 256)
	mustBeEmpty(t, rd)
}

func TestRecordsOfEverySizeRoundTrip(t *testing.T) {
	r, p, rd := newTestRing(t, RingMinSize)
	if r.MaxRecord() != RingMinSize/4 {
		t.Fatalf("max record %d, want %d", r.MaxRecord(), RingMinSize/4)
	}
	for n := SizeofRecHdr; n <= int(r.MaxRecord()); n++ {
		want := testRec(n, 0, uint64(n))
		mustWrite(t, p, want)
		got := mustNext(t, rd)
		if string(got.Payload()) != string(want[SizeofRecHdr:]) || len(got.Raw) != n || got.Type != RecTest {
			t.Fatalf("record of %d bytes came back as %d bytes of type %d with other content", n, len(got.Raw), got.Type)
		}
		rd.Commit()
	}
	mustBeEmpty(t, rd)
	if c := r.Counters(); c.Written != uint64(r.MaxRecord())-7 || c.Dropped() != 0 {
		t.Fatalf("counters %+v", c)
	}
}

// fillAndConsume writes and reads records of the given sizes, leaving the
// reader caught up at their end.
func fillAndConsume(t *testing.T, p *Producer, rd *Reader, sizes ...int) {
	t.Helper()
	for _, n := range sizes {
		mustWrite(t, p, testRec(n, 1, 0))
		mustNext(t, rd)
		rd.Commit()
	}
}

func TestRecordAtTheEndIsPaddedToTheStart(t *testing.T) {
	r, p, rd := newTestRing(t, 256)
	fillAndConsume(t, p, rd, 64, 64, 64, 56) // 8 bytes left before the end
	mustWrite(t, p, testRec(24, 0, 2))
	rec := mustNext(t, rd)
	if rec.Pos != 256 || len(rec.Raw) != 24 {
		t.Fatalf("record at %d of %d bytes; want at 256 (the start, one lap on), 24 bytes", rec.Pos, len(rec.Raw))
	}
	if seq := binary.LittleEndian.Uint64(rec.Raw[16:]); seq != 2 {
		t.Fatalf("seq %d, want 2", seq)
	}
	if s := rd.Stats(); s.Skipped != 1 {
		t.Fatalf("skipped %d records, want the one pad", s.Skipped)
	}
	if got := r.ProducerPos(); got != 280 {
		t.Fatalf("producer at %d, want 280", got)
	}
}

func TestExactlyFullRingAcceptsNoMore(t *testing.T) {
	r, p, rd := newTestRing(t, 256)
	for i := range 4 {
		mustWrite(t, p, testRec(64, 0, uint64(i)))
	}
	if ok, _ := p.Write(testRec(8, 0, 9)); ok {
		t.Fatal("an 8-byte record fit into a full ring")
	}
	if c := r.Counters(); c.DroppedFull != 1 || c.Written != 4 {
		t.Fatalf("counters %+v; want 4 written, 1 dropped full", c)
	}
	for i := range 4 {
		mustSeqs(t, rd, uint64(i))
	}
	mustBeEmpty(t, rd)
}

func TestOneByteShortIsDropped(t *testing.T) {
	tests := []struct {
		name string
		len  int
		fits bool
	}{
		{"8 bytes into 8", 8, true},
		{"9 bytes (16 aligned) into 8", 9, false},
		{"16 bytes into 8", 16, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, p, rd := newTestRing(t, 256)
			for _, n := range []int{64, 64, 64, 56} {
				mustWrite(t, p, testRec(n, 0, 0))
			}
			ok, _ := p.Write(testRec(tc.len, 0, 9))
			if ok != tc.fits {
				t.Fatalf("write of %d bytes with 8 free: ok %v, want %v", tc.len, ok, tc.fits)
			}
			want := Counters{Written: 4}
			if tc.fits {
				want.Written++
			} else {
				want.DroppedFull++
			}
			if c := r.Counters(); c != want {
				t.Fatalf("counters %+v, want %+v", c, want)
			}
			for range want.Written {
				mustNext(t, rd)
			}
			mustBeEmpty(t, rd)
		})
	}
}

func TestLostRecordNeedsRoomToo(t *testing.T) {
	r, p, rd := newTestRing(t, 256)
	for _, n := range []int{64, 64, 64, 48} {
		mustWrite(t, p, testRec(n, 0, 0))
	}
	p.CountFault()
	// 16 bytes free: enough for the record, not for the lost record too.
	if ok, _ := p.Write(testRec(16, 0, 9)); ok {
		t.Fatal("record written without room for the lost record in front")
	}
	if c := r.Counters(); c.DroppedFault != 1 || c.DroppedFull != 1 || c.LostRecords != 0 {
		t.Fatalf("counters %+v", c)
	}
	for range 4 {
		mustNext(t, rd)
	}
	rd.Commit()
	mustWrite(t, p, testRec(16, 0, 9))
	if n, ok := mustNext(t, rd).LostCount(); !ok || n != 2 {
		t.Fatalf("lost count %d (ok %v), want 2", n, ok)
	}
}

func TestBusyRecordStopsTheReader(t *testing.T) {
	_, p, rd := newTestRing(t, 256)
	res, ok := p.Reserve(32, RecTest, 0)
	if !ok {
		t.Fatal("reserve failed")
	}
	mustWrite(t, p, testRec(32, 0, 7))
	mustBeEmpty(t, rd) // the committed record behind a busy one waits
	copy(res.Raw[SizeofRecHdr:], testRec(32, 0, 6)[SizeofRecHdr:])
	p.Commit(res)
	mustSeqs(t, rd, 6, 7)
}

func TestDiscardedRecordIsSkipped(t *testing.T) {
	r, p, rd := newTestRing(t, 256)
	res, ok := p.Reserve(40, RecTest, 0)
	if !ok {
		t.Fatal("reserve failed")
	}
	p.Discard(res)
	mustWrite(t, p, testRec(24, 0, 3))
	if rec := mustNext(t, rd); rec.Pos != 40 {
		t.Fatalf("record at %d, want 40 (after the discarded one)", rec.Pos)
	}
	mustBeEmpty(t, rd)
	if c := r.Counters(); c.Discarded != 1 || c.Written != 1 {
		t.Fatalf("counters %+v", c)
	}
	if s := rd.Stats(); s.Skipped != 1 || s.Records != 1 {
		t.Fatalf("reader stats %+v", s)
	}
}

func TestDropsAreReportedByALostRecord(t *testing.T) {
	tests := []struct {
		name          string
		fill          []int // records written and consumed first
		full          int   // record sizes written until the ring is full
		dropFull      int
		dropTooLarge  int
		dropFault     int
		wantLostAt    uint64
		wantRecordAt  uint64
		wantPadsFound uint64
	}{
		{name: "ring full", full: 64, dropFull: 3, wantLostAt: 256, wantRecordAt: 272},
		{name: "too large", dropTooLarge: 2, wantLostAt: 0, wantRecordAt: 16},
		{name: "user fault", dropFault: 1, wantLostAt: 0, wantRecordAt: 16},
		{name: "all reasons", full: 64, dropFull: 1, dropTooLarge: 1, dropFault: 1, wantLostAt: 256, wantRecordAt: 272},
		{name: "lost record padded to the start", fill: []int{64, 64, 64, 56}, dropFault: 1, wantLostAt: 256, wantRecordAt: 272, wantPadsFound: 1},
		{name: "record padded after the lost record", fill: []int{64, 64, 64, 40}, dropFault: 1, wantLostAt: 232, wantRecordAt: 256, wantPadsFound: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, p, rd := newTestRing(t, 256)
			fillAndConsume(t, p, rd, tc.fill...)
			if tc.full > 0 {
				for {
					if ok, _ := p.Write(testRec(tc.full, 1, 0)); !ok {
						break
					}
				}
				for i := 1; i < tc.dropFull; i++ {
					p.Write(testRec(tc.full, 1, 0))
				}
				for {
					if _, ok, _ := rd.Next(); !ok {
						break
					}
				}
				rd.Commit()
			}
			for range tc.dropTooLarge {
				if ok, _ := p.Write(testRec(int(r.MaxRecord())+1, 1, 0)); ok {
					t.Fatal("a record over max_record was written")
				}
			}
			for range tc.dropFault {
				p.CountFault()
			}
			mustWrite(t, p, testRec(24, 2, 42))

			lost := mustNext(t, rd)
			n, ok := lost.LostCount()
			want := uint64(tc.dropFull + tc.dropTooLarge + tc.dropFault)
			if !ok || n != want || lost.Pos != tc.wantLostAt {
				t.Fatalf("first record: type %d at %d count %d; want a lost record at %d counting %d", lost.Type, lost.Pos, n, tc.wantLostAt, want)
			}
			rec := mustNext(t, rd)
			if rec.Type != RecTest || rec.Pos != tc.wantRecordAt || binary.LittleEndian.Uint64(rec.Raw[16:]) != 42 {
				t.Fatalf("second record: type %d at %d; want the test record at %d", rec.Type, rec.Pos, tc.wantRecordAt)
			}
			mustBeEmpty(t, rd)
			c := r.Counters()
			if c.DroppedFull != uint64(tc.dropFull) || c.DroppedTooLarge != uint64(tc.dropTooLarge) ||
				c.DroppedFault != uint64(tc.dropFault) || c.LostRecords != 1 {
				t.Fatalf("counters %+v", c)
			}
			if s := rd.Stats(); s.Lost != want || s.LostRecords != 1 || s.Skipped != tc.wantPadsFound {
				t.Fatalf("reader stats %+v; want lost %d in 1 record, %d pads", s, want, tc.wantPadsFound)
			}
			// The next record goes without a lost record in front.
			mustWrite(t, p, testRec(24, 2, 43))
			if rec := mustNext(t, rd); rec.Type != RecTest {
				t.Fatalf("record after the lost one has type %d", rec.Type)
			}
		})
	}
}

// TestCommitWakeRule walks through ring.c's wake-up rule (smith_abi.h,
// ready()) on the Go producer, which the cross-language test holds to
// ring.c byte for byte: a watermark counted from the read position, one
// wake-up per published read position, the half-full and lost-record
// forced wakes, and never for a record still being written.
func TestCommitWakeRule(t *testing.T) {
	r, p, rd := newTestRing(t, 1024)
	write := func(n int, wantWake bool, what string) {
		t.Helper()
		ok, wake := p.Write(testRec(n, 0, 0))
		if !ok {
			t.Fatalf("%s: dropped", what)
		}
		if wake != wantWake {
			t.Fatalf("%s: wake-up %v, want %v (read %d, commit %d, producer %d, watermark %d)",
				what, wake, wantWake, r.ReadPos(), r.ConsumerPos(), r.ProducerPos(), r.WakeupBytes())
		}
	}
	readAll := func() {
		for {
			if _, ok, err := rd.Next(); err != nil || !ok {
				return
			}
		}
	}

	// Watermark 0: the first record past the read position wakes, the
	// ones after it do not until the reader publishes a new position.
	rd.publish(0)
	write(24, true, "first record, watermark 0")
	write(24, false, "second record, reader already woken for this position")
	readAll()
	write(24, false, "read on but not yet published")
	readAll()
	rd.publish(0)
	write(24, true, "first record after the reader published its new position")
	readAll()

	// Watermark 64 bytes: the third 24-byte record reaches it.
	rd.publish(64)
	write(24, false, "24 bytes past the read position, watermark 64")
	write(24, false, "48 bytes past the read position, watermark 64")
	write(24, true, "72 bytes past the read position, watermark 64")
	write(24, false, "past the watermark, already woken")

	// Not committed: nothing is read or committed, so the ring fills;
	// at half the ring (512 bytes past the commit position) it forces a
	// wake-up even below the watermark.
	readAll()
	rd.Commit() // commit at the read position, 192
	rd.publish(512)
	write(200, false, "200 bytes, watermark 512")
	readAll() // read to 392, commit stays at 192
	rd.publish(512)
	write(200, false, "400 bytes past the commit, 200 past the read position")
	write(200, true, "600 bytes past the commit: the ring is half full")

	// A record being written at the read position: not ready, whatever
	// comes after it; its own commit wakes.
	readAll()
	rd.Commit()
	rd.publish(0)
	res, ok := p.Reserve(40, RecTest, 0)
	if !ok {
		t.Fatal("reserve")
	}
	write(24, false, "record behind a BUSY one at the read position")
	if !p.Commit(res) {
		t.Fatal("commit of the BUSY record at the read position: no wake-up")
	}

	// A lost record at the read position is urgent: it wakes below the
	// watermark.
	readAll()
	rd.Commit()
	rd.publish(512)
	p.CountFault()
	write(24, true, "lost record in front, watermark 512")
	write(24, false, "after the lost record, already woken")

	// A read position outside [commit, producer] is taken as the commit.
	readAll()
	rd.Commit()
	r.page.ReadPos, r.page.WakeupBytes = r.ProducerPos()+4096, 0
	write(24, true, "read position past the producer: counted from the commit")
}

func TestNewReaderResumesAtTheCommittedPosition(t *testing.T) {
	r, p, rd := newTestRing(t, 256)
	for i := range 3 {
		mustWrite(t, p, testRec(32, 0, uint64(i)))
	}
	mustNext(t, rd)
	rd.Commit()
	mustNext(t, rd) // read, not committed: the next reader sees it again
	rd2, err := NewReader(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	mustSeqs(t, rd2, 1, 2)
}

func TestBatchCommitStoresOnce(t *testing.T) {
	r, p, rd := newTestRing(t, 256)
	for i := range 3 {
		mustWrite(t, p, testRec(32, 0, uint64(i)))
	}
	for range 3 {
		mustNext(t, rd)
		if r.ConsumerPos() != 0 {
			t.Fatal("consumer position moved before Commit")
		}
	}
	rd.Commit()
	if r.ConsumerPos() != 96 {
		t.Fatalf("consumer at %d after Commit, want 96", r.ConsumerPos())
	}
}

// corrupt writes raw words into a ring to build states no producer makes.
type corruptRing struct {
	r *Ring
}

func (c corruptRing) hdr(off uint64, n uint32, typ RecType) {
	binary.LittleEndian.PutUint32(c.r.data[off:], n)
	binary.LittleEndian.PutUint16(c.r.data[off+4:], uint16(typ))
}
func (c corruptRing) prod(p uint64) { c.r.meta.ProducerPos = p }
func (c corruptRing) cons(p uint64) { *c.r.cons = p }

// corruptMemRing is a ring of 256 bytes in the state setup writes.
func corruptMemRing(t *testing.T, setup func(c corruptRing)) *Ring {
	t.Helper()
	r, err := newMemRing(256, 64)
	if err != nil {
		t.Fatal(err)
	}
	setup(corruptRing{r})
	return r
}

// A producer side no producer makes is an error, and it sticks: the
// producer's page is not the reader's to correct.
func TestCorruptProducerGivesAnError(t *testing.T) {
	tests := []struct {
		name  string
		setup func(c corruptRing)
		later func(c corruptRing) // after NewReader, before Next
	}{
		{"producer misaligned", func(c corruptRing) { c.hdr(0, 8, RecTest); c.prod(12) }, func(corruptRing) {}},
		// A bad header makes the reader resynchronise to a producer
		// position that is itself misaligned.
		{"producer misaligned behind a bad header", func(c corruptRing) { c.hdr(0, 4, RecTest); c.prod(8) }, func(c corruptRing) { c.prod(12) }},
		{"producer back behind a bad header", func(c corruptRing) { c.hdr(0, 4, RecTest); c.prod(64) }, func(c corruptRing) { c.prod(32) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := corruptMemRing(t, tc.setup)
			rd, err := NewReader(r, nil)
			if err == nil {
				tc.later(corruptRing{r})
				_, _, err = rd.Next()
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err %v, want ErrCorrupt", err)
			}
			if rd != nil {
				if _, _, err2 := rd.Next(); !errors.Is(err2, ErrCorrupt) {
					t.Fatalf("second Next: %v, want the error to stick", err2)
				}
			}
		})
	}
}

// A corrupt reader side (the consumer page, or headers overwritten
// because of it) makes the reader resynchronise to the producer: a gap
// record first, then the records written from there, read as usual.
func TestCorruptReaderSideResynchronises(t *testing.T) {
	tests := []struct {
		name            string
		setup           func(c corruptRing)
		from, to, bytes uint64
		atStart         bool // found by NewReader: the page is fixed at once
	}{
		{"length below the header", func(c corruptRing) { c.hdr(0, 4, RecTest); c.prod(8) }, 0, 8, 8, false},
		{"zero length", func(c corruptRing) { c.hdr(0, 0, RecTest); c.prod(64) }, 0, 64, 64, false},
		{"length above max_record", func(c corruptRing) { c.hdr(0, 72, RecTest); c.prod(128) }, 0, 128, 128, false},
		{"discarded length above max_record", func(c corruptRing) { c.hdr(0, 72|RecDiscard, RecPad); c.prod(128) }, 0, 128, 128, false},
		{"record crossing the end", func(c corruptRing) { c.cons(224); c.hdr(224, 40, RecTest); c.prod(288) }, 224, 288, 64, false},
		{"record past the producer", func(c corruptRing) { c.hdr(0, 32, RecTest); c.prod(16) }, 0, 16, 16, false},
		{"lost record too short", func(c corruptRing) { c.hdr(0, 8, RecLost); c.prod(8) }, 0, 8, 8, false},
		{"consumer misaligned", func(c corruptRing) { c.cons(4); c.prod(64) }, 4, 64, 60, true},
		{"consumer beyond the producer", func(c corruptRing) { c.cons(1024); c.prod(64) }, 1024, 64, 0, true},
		{"stale consumer, more than the ring behind", func(c corruptRing) { c.cons(64); c.prod(4096) }, 64, 4096, 256, true},
		{"producer more than the ring ahead", func(c corruptRing) { c.prod(264) }, 0, 264, 256, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := corruptMemRing(t, tc.setup)
			rd, err := NewReader(r, nil)
			if err != nil {
				t.Fatalf("NewReader: %v, want a reader that resynchronises", err)
			}
			if tc.atStart && r.ConsumerPos() != tc.to {
				t.Fatalf("consumer page at %d after NewReader, want the producer's %d", r.ConsumerPos(), tc.to)
			}
			gap := mustNext(t, rd)
			g := gap.Resync
			if g == nil || gap.Type != RecLost {
				t.Fatalf("first record: type %d, resync %v; want the gap record", gap.Type, g)
			}
			if g.From != tc.from || g.To != tc.to || g.Bytes != tc.bytes || gap.Pos != tc.from || gap.End() != tc.to {
				t.Fatalf("gap %+v (pos %d, end %d), want from %d to %d, %d bytes", *g, gap.Pos, gap.End(), tc.from, tc.to, tc.bytes)
			}
			if n, ok := gap.LostCount(); !ok || n != 0 {
				t.Fatalf("gap record's lost count %d (%v), want 0: unknown", n, ok)
			}
			if !errors.Is(g.Err, ErrCorrupt) {
				t.Fatalf("gap error %v, want ErrCorrupt", g.Err)
			}
			if st := rd.Stats(); st.Resyncs != 1 || st.ResyncBytes != tc.bytes {
				t.Fatalf("stats %+v, want 1 resync of %d bytes", st, tc.bytes)
			}
			mustBeEmpty(t, rd)
			if err := rd.CommitTo(gap.End()); err != nil {
				t.Fatal(err)
			}
			if r.ConsumerPos() != tc.to {
				t.Fatalf("consumer at %d after committing the gap, want %d", r.ConsumerPos(), tc.to)
			}
			// The producer has room again and the reader reads on.
			p := NewProducer(r)
			mustWrite(t, p, testRec(32, 0, 7))
			rec := mustNext(t, rd)
			if rec.Pos != tc.to || rec.Type != RecTest || binary.LittleEndian.Uint64(rec.Raw[16:]) != 7 {
				t.Fatalf("record after the gap: pos %d type %d, want the test record at %d", rec.Pos, rec.Type, tc.to)
			}
			rd.Commit()
			mustBeEmpty(t, rd)
		})
	}
}

// Records overwritten after the reader read some: the producer is more
// than the ring ahead of the read position.
func TestOverrunReaderResynchronises(t *testing.T) {
	r, p, rd := newTestRing(t, 256)
	mustWrite(t, p, testRec(32, 0, 0))
	mustWrite(t, p, testRec(32, 0, 1))
	first := mustNext(t, rd)
	r.meta.ProducerPos = 32 + 8*256
	mustNext(t, rd) // the second record, below the old producer position
	gap := mustNext(t, rd)
	if gap.Resync == nil || gap.Resync.From != 64 || gap.End() != 32+8*256 || gap.Resync.Bytes != 256 {
		t.Fatalf("got %+v, want a gap from 64 to %d of 256 bytes", gap, 32+8*256)
	}
	// What was read before the gap can still be committed, then the gap.
	if err := rd.CommitTo(first.End()); err != nil {
		t.Fatal(err)
	}
	if err := rd.CommitTo(gap.End()); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, p, testRec(24, 0, 2))
	if rec := mustNext(t, rd); rec.Resync != nil || rec.Pos != gap.End() {
		t.Fatalf("record after the gap at %d, want %d", rec.Pos, gap.End())
	}
}

// A consumer page written behind the reader's back while it waits (the
// producers would count free space from it) is stored back, and Wait
// reports it with a gap record of 0 bytes.
func TestConsumerPageChangedWhileWaitingIsStoredBack(t *testing.T) {
	r, p, rd := newWaitingRing(t, 256, NewIntervalWaiter(time.Millisecond))
	defer rd.Close()
	mustWrite(t, p, testRec(32, 0, 0))
	mustNext(t, rd)
	rd.Commit()
	*r.cons = 1 << 40 // the producers now see the ring as full
	if ok, _ := p.Write(testRec(32, 0, 1)); ok {
		t.Fatal("the producer wrote with the consumer position ahead of it")
	}
	rd.SetDeadline(time.Now().Add(10 * time.Second))
	if err := rd.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if r.ConsumerPos() != 32 {
		t.Fatalf("consumer page %d after Wait, want 32 stored back", r.ConsumerPos())
	}
	gap := mustNext(t, rd)
	if gap.Resync == nil || gap.Resync.From != 32 || gap.End() != 32 || gap.Resync.Bytes != 0 || !errors.Is(gap.Resync.Err, ErrCorrupt) {
		t.Fatalf("got %+v, want a 0-byte gap at 32", gap)
	}
	mustWrite(t, p, testRec(32, 0, 2))
	// The producer's drop comes back as its own "lost 1" record.
	if n, ok := mustNext(t, rd).LostCount(); !ok || n != 1 {
		t.Fatalf("lost count %d (%v), want the producer's 1", n, ok)
	}
	if rec := mustNext(t, rd); binary.LittleEndian.Uint64(rec.Raw[16:]) != 2 {
		t.Fatal("the record written after the store-back is not read")
	}
}

func TestBadMetaPageIsRejected(t *testing.T) {
	tests := []struct {
		name  string
		spoil func(m *RingMeta)
	}{
		{"magic", func(m *RingMeta) { m.Magic = 0x12345678 }},
		{"ABI major", func(m *RingMeta) { m.ABIMajor = ABIMajor + 1 }},
		{"size not a power of two", func(m *RingMeta) { m.DataSize = RingMinSize + 8 }},
		{"size beyond the mapping", func(m *RingMeta) { m.DataSize = 2 * RingMinSize }},
		{"max_record above a quarter", func(m *RingMeta) { m.MaxRecord = RingMinSize/4 + 8 }},
		{"max_record below a lost record", func(m *RingMeta) { m.MaxRecord = 8 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			words := make([]uint64, (2*memPageSize+RingMinSize)/8)
			mem := unsafeBytes(words)
			if _, err := InitRing(mem[:memPageSize], mem[memPageSize:2*memPageSize], mem[2*memPageSize:], memPageSize); err != nil {
				t.Fatal(err)
			}
			tc.spoil(metaOf(mem[memPageSize:]))
			if _, err := NewRing(mem[:memPageSize], mem[memPageSize:2*memPageSize], mem[2*memPageSize:]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestNewerMinorVersionIsAccepted(t *testing.T) {
	words := make([]uint64, (2*memPageSize+RingMinSize)/8)
	mem := unsafeBytes(words)
	if _, err := InitRing(mem[:memPageSize], mem[memPageSize:2*memPageSize], mem[2*memPageSize:], memPageSize); err != nil {
		t.Fatal(err)
	}
	metaOf(mem[memPageSize:]).ABIMinor = ABIMinor + 1
	if _, err := NewRing(mem[:memPageSize], mem[memPageSize:2*memPageSize], mem[2*memPageSize:]); err != nil {
		t.Fatalf("a newer minor version was rejected: %v", err)
	}
}

// eachWaiter runs f on a Reader of an empty ring for each Waiter of this
// package that needs no device.
func eachWaiter(t *testing.T, f func(t *testing.T, rd *Reader)) {
	waiters := []struct {
		name string
		new  func() (Waiter, error)
	}{
		{"eventfd", func() (Waiter, error) { return NewEventfd() }},
		{"interval", func() (Waiter, error) { return NewIntervalWaiter(time.Hour), nil }},
	}
	for _, tc := range waiters {
		t.Run(tc.name, func(t *testing.T) {
			w, err := tc.new()
			if err != nil {
				t.Fatal(err)
			}
			_, _, rd := newWaitingRing(t, 256, w)
			defer rd.Close()
			f(t, rd)
		})
	}
}

func TestCloseInterruptsABlockedRead(t *testing.T) {
	eachWaiter(t, func(t *testing.T, rd *Reader) {
		errc := make(chan error, 1)
		go func() {
			_, err := rd.Read()
			errc <- err
		}()
		time.Sleep(10 * time.Millisecond) // let Read block; the test holds either way
		if err := rd.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; !errors.Is(err, ErrClosed) {
			t.Fatalf("Read returned %v, want ErrClosed", err)
		}
		if _, err := rd.Read(); !errors.Is(err, ErrClosed) {
			t.Fatalf("Read after Close returned %v, want ErrClosed", err)
		}
	})
}

func TestEventfdWakesABlockedRead(t *testing.T) {
	ev, err := NewEventfd()
	if err != nil {
		t.Fatal(err)
	}
	_, p, rd := newWaitingRing(t, 256, ev)
	defer rd.Close()
	// Watermark 0 and a timeout far beyond the test: only the producer's
	// wake-ups can make Read return.
	if err := rd.SetWakeup(0, time.Hour); err != nil {
		t.Fatal(err)
	}
	got := make(chan uint64)
	go func() {
		for range 100 {
			rec, err := rd.Read()
			if err != nil {
				close(got)
				return
			}
			seq := binary.LittleEndian.Uint64(rec.Raw[16:])
			rd.Commit()
			got <- seq
		}
	}()
	for i := range uint64(100) {
		ok, wake := p.Write(testRec(24, 0, i))
		if !ok {
			t.Fatalf("write %d dropped", i)
		}
		if wake {
			if err := ev.Signal(); err != nil {
				t.Fatal(err)
			}
		}
		if seq, ok := <-got; !ok || seq != i {
			t.Fatalf("read seq %d (ok %v), want %d", seq, ok, i)
		}
	}
}

func TestWakeInterruptsAWait(t *testing.T) {
	eachWaiter(t, func(t *testing.T, rd *Reader) {
		if err := rd.SetWakeup(0, time.Hour); err != nil {
			t.Fatal(err)
		}
		// A Wake before the Wait is kept: the Wait returns at once.
		rd.Wake()
		if err := rd.Wait(); !errors.Is(err, ErrWoken) {
			t.Fatalf("Wait after Wake returned %v, want ErrWoken", err)
		}
		errc := make(chan error, 1)
		go func() { errc <- rd.Wait() }()
		time.Sleep(10 * time.Millisecond) // let Wait block; the test holds either way
		rd.Wake()
		if err := <-errc; !errors.Is(err, ErrWoken) {
			t.Fatalf("Wait returned %v, want ErrWoken", err)
		}
		// Read goes on waiting after a Wake: here the deadline ends it.
		rd.Wake()
		rd.SetDeadline(time.Now().Add(20 * time.Millisecond))
		if _, err := rd.Read(); !errors.Is(err, ErrDeadline) {
			t.Fatalf("Read returned %v, want ErrDeadline", err)
		}
	})
}

// A Waiter that polls (a ring in a file: nothing wakes it) is asked to
// look again when the producer's rate says the watermark will be reached,
// not only at its interval: here an hour, with records coming every
// millisecond and due after 64 of them.
func TestPollingWaitLooksWhenTheWatermarkIsDue(t *testing.T) {
	_, p, rd := newWaitingRing(t, 1<<20, NewIntervalWaiter(time.Hour))
	defer rd.Close()
	const recLen = 128
	if err := rd.SetWakeup(64*recLen, time.Hour); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := uint64(0); ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			p.Write(testRec(recLen, 1, i))
		}
	}()
	defer func() { close(stop); <-done }()
	rd.SetDeadline(time.Now().Add(20 * time.Second)) // what an hour's sleep would hit
	if err := rd.Wait(); err != nil {
		t.Fatalf("Wait: %v, want the watermark reached", err)
	}
	if got := rd.Ring().ProducerPos() - rd.ReadPos(); got < 64*recLen {
		t.Fatalf("Wait returned with %d bytes to read, the watermark is %d", got, 64*recLen)
	}
}
