//go:build !vmtest

package shm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// A fuzz input is a whole ring: fuzzHdr bytes of parameters, then the data
// area's bytes (repeated or cut to the ring size).
//
//	[0]      log2 of the data size, mod 7, plus 6: 64..4096 bytes
//	[1]      mode: bit 0 set = meta page taken raw from the data bytes
//	         (mostly rejected by NewRing); bit 1 = producer writes too
//	[2:10]   consumer position
//	[10:18]  producer position
//	[18:26]  read position (ABI 1.1; any value, as a reader may write)
//	[26:34]  wakeup_bytes (ABI 1.1)
const fuzzHdr = 34

// ringFromFuzz builds a ring from a fuzz input; nil when NewRing rejects
// the meta page (which is a correct outcome, not a failure).
func ringFromFuzz(in []byte) (*Ring, byte) {
	if len(in) < fuzzHdr {
		return nil, 0
	}
	size := uint64(1) << (6 + in[0]%7)
	mode := in[1]
	words := make([]uint64, (2*memPageSize+size)/8)
	mem := unsafeBytes(words)
	cons, meta, data := mem[:memPageSize], mem[memPageSize:2*memPageSize], mem[2*memPageSize:]
	body := in[fuzzHdr:]
	if mode&1 != 0 {
		copy(meta, body)
	} else {
		m := metaOf(meta)
		*m = RingMeta{Magic: RingMagic, ABIMajor: ABIMajor, ABIMinor: ABIMinor, PageSize: memPageSize,
			MaxRecord: uint32(size / 4), DataSize: size, DataOffset: 2 * memPageSize}
	}
	binary.LittleEndian.PutUint64(cons, binary.LittleEndian.Uint64(in[2:]))
	binary.LittleEndian.PutUint64(cons[OffsetofReadPos:], binary.LittleEndian.Uint64(in[18:]))
	binary.LittleEndian.PutUint64(cons[OffsetofWakeupBytes:], binary.LittleEndian.Uint64(in[26:]))
	metaOf(meta).ProducerPos = binary.LittleEndian.Uint64(in[10:])
	for i := 0; len(body) > 0 && i < len(data); i += len(body) {
		copy(data[i:], body)
	}
	r, err := newRing(cons, meta, data, 64)
	if err != nil {
		return nil, mode
	}
	return r, mode
}

// drain reads until the ring is empty or corrupt, checking what every
// record claims; bounded because each record moves the position on.
func drain(t *testing.T, rd *Reader) {
	last := uint64(0)
	for i := 0; ; i++ {
		if i > int(rd.ring.Size()) {
			t.Fatalf("more records than bytes in the ring: the reader is not moving")
		}
		rec, ok, err := rd.Next()
		if err != nil || !ok {
			return
		}
		if i > 0 && rec.Pos <= last {
			t.Fatalf("record at %d after one at %d", rec.Pos, last)
		}
		last = rec.Pos
		if len(rec.Raw) < SizeofRecHdr || len(rec.Raw) > int(rd.ring.maxRecord) {
			t.Fatalf("record at %d of %d bytes returned", rec.Pos, len(rec.Raw))
		}
		if rec.Type == RecLost {
			if _, ok := rec.LostCount(); !ok {
				t.Fatalf("lost record at %d without a count", rec.Pos)
			}
		}
		if i%3 == 0 {
			rd.Commit()
		}
	}
}

// FuzzReader feeds arbitrary ring contents (meta, positions, data, the
// reader page's read position and watermark) to the reader, and lets the
// Go producer write into them too: neither may panic, hang or touch memory
// outside the ring, and the wake-up predicate (ready(), which the kernel
// evaluates on the same untrusted page) may not either.
func FuzzReader(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r, mode := ringFromFuzz(in)
		if r == nil {
			return
		}
		// The kernel's view of the page as the fuzzer wrote it.
		r.ready(r.loadView())
		p := NewProducer(r)
		p.wakeup()
		rd, err := NewReader(r, nil)
		if err != nil {
			return
		}
		drain(t, rd)
		rd.state(rd.wakeup)
		if mode&2 == 0 {
			return
		}
		for i := range 8 {
			if res, ok := p.Reserve(uint32(8+i*13)%r.MaxRecord()+8, RecTest, 0); ok {
				if i%4 == 3 {
					p.Discard(res)
				} else {
					p.Commit(res)
				}
			}
		}
		drain(t, rd)
	})
}

// fuzzInput encodes a ring as a fuzz input.
func fuzzInput(r *Ring, mode byte) []byte {
	in := make([]byte, fuzzHdr, fuzzHdr+len(r.data))
	for k := byte(0); k < 7; k++ {
		if 1<<(6+k) == r.Size() {
			in[0] = k
		}
	}
	in[1] = mode
	binary.LittleEndian.PutUint64(in[2:], r.ConsumerPos())
	binary.LittleEndian.PutUint64(in[10:], r.ProducerPos())
	binary.LittleEndian.PutUint64(in[18:], r.ReadPos())
	binary.LittleEndian.PutUint64(in[26:], r.WakeupBytes())
	return append(in, r.data...)
}

// fuzzSeeds are rings in the states the table tests cover: records of
// several sizes, a wrap with pad, a lost record, a busy and a discarded
// record, and a few corrupt variants.
func fuzzSeeds(tb testing.TB) [][]byte {
	var seeds [][]byte
	add := func(build func(p *Producer, rd *Reader), mode byte) {
		r, p, rd := newTestRing(tb, 256)
		build(p, rd)
		seeds = append(seeds, fuzzInput(r, mode))
	}
	write := func(p *Producer, sizes ...int) {
		for i, n := range sizes {
			p.Write(testRec(n, 0, uint64(i)))
		}
	}
	consume := func(rd *Reader) {
		for {
			if _, ok, _ := rd.Next(); !ok {
				break
			}
		}
		rd.Commit()
	}
	add(func(p *Producer, rd *Reader) {}, 2)
	add(func(p *Producer, rd *Reader) { write(p, 8, 24, 33, 64) }, 0)
	add(func(p *Producer, rd *Reader) { write(p, 64, 64, 64, 56); consume(rd); write(p, 24, 40) }, 2)
	add(func(p *Producer, rd *Reader) { write(p, 64, 64, 64, 64, 64); consume(rd); write(p, 24) }, 0)
	add(func(p *Producer, rd *Reader) {
		res, _ := p.Reserve(40, RecTest, 0)
		write(p, 24)
		_ = res
	}, 2)
	add(func(p *Producer, rd *Reader) {
		res, _ := p.Reserve(40, RecTest, 0)
		p.Discard(res)
		write(p, 24)
	}, 0)
	add(func(p *Producer, rd *Reader) { write(p, 32); p.ring.data[0] = 4 }, 0)
	add(func(p *Producer, rd *Reader) { write(p, 32); p.ring.data[0] = 200 }, 0)
	add(func(p *Producer, rd *Reader) { write(p, 32); p.ring.meta.ProducerPos = 1000 }, 0)
	add(func(p *Producer, rd *Reader) { write(p, 32, 16); p.ring.meta.ProducerPos = 20 }, 2)
	add(func(p *Producer, rd *Reader) { write(p, 32); *p.ring.cons = 4 }, 0)
	add(func(p *Producer, rd *Reader) { write(p, 32) }, 1)
	// Read positions and watermarks: ahead of the commit, past the
	// producer, and a watermark beyond the ring.
	add(func(p *Producer, rd *Reader) { write(p, 32, 24); rd.Next(); rd.publish(16) }, 2)
	add(func(p *Producer, rd *Reader) { write(p, 32); p.ring.page.ReadPos = 1 << 40 }, 2)
	add(func(p *Producer, rd *Reader) {
		write(p, 32)
		p.CountFault()
		write(p, 24)
		p.ring.page.WakeupBytes = ^uint64(0)
	}, 2)
	return seeds
}

// TestFuzzSeedCorpus keeps shm/testdata/fuzz/FuzzReader in step with
// fuzzSeeds; SMITH_WRITE_FUZZ_SEEDS=1 rewrites it.
func TestFuzzSeedCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzReader")
	write := os.Getenv("SMITH_WRITE_FUZZ_SEEDS") == "1"
	if write {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range fuzzSeeds(t) {
		var buf bytes.Buffer
		fmt.Fprintf(&buf, "go test fuzz v1\n[]byte(%q)\n", s)
		path := filepath.Join(dir, fmt.Sprintf("seed-%02d", i))
		if write {
			if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, buf.Bytes()) {
			t.Errorf("%s missing or stale (%v): run SMITH_WRITE_FUZZ_SEEDS=1 go test -run TestFuzzSeedCorpus ./shm", path, err)
		}
	}
}
