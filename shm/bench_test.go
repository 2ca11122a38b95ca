//go:build !vmtest

package shm

import (
	"encoding/binary"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// threadCPU is the CPU time the calling OS thread has used. The shared
// machines the benchmarks run on are often oversubscribed, so next to the
// wall-clock ns/op the benchmarks report CPU ns per record (the loop runs
// on a locked thread): that is the per-core cost.
func threadCPU(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// perRecord times loop, a loop of b.N records, on a locked OS thread and
// reports records/s and CPU ns per record next to ns/op.
func perRecord(b *testing.B, loop func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := threadCPU(b)
	loop()
	b.StopTimer()
	cpu := threadCPU(b) - cpu0
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/record")
}

// BenchmarkReadRecords64 measures Next plus decoding the header of 64-byte
// records (type, flags, producer, seq), committing every 64 records: the
// reader's per-record cost on one core, with no producer running. The ring
// is filled once; 64-byte records tile it exactly, so each lap re-reads the
// same bytes by moving the producer position on by the ring size.
func BenchmarkReadRecords64(b *testing.B) {
	const recLen = 64
	r, err := NewMemRing(RingDefaultSize)
	if err != nil {
		b.Fatal(err)
	}
	p := NewProducer(r)
	rec := testRec(recLen, 1, 0)
	for i := uint64(0); i < r.Size()/recLen; i++ {
		binary.LittleEndian.PutUint64(rec[16:], i)
		if ok, _ := p.Write(rec); !ok {
			b.Fatalf("fill: record %d dropped", i)
		}
	}
	rd, err := NewReader(r, nil)
	if err != nil {
		b.Fatal(err)
	}
	var sum uint64
	perRecord(b, func() {
		for i := 0; i < b.N; i++ {
			rec, ok, err := rd.Next()
			if !ok || err != nil {
				if err != nil {
					b.Fatal(err)
				}
				rd.Commit()
				r.meta.ProducerPos += r.Size() // next lap: the same records again
				if rec, ok, err = rd.Next(); !ok || err != nil {
					b.Fatalf("next lap: ok %v err %v", ok, err)
				}
			}
			sum += uint64(rec.Type) + uint64(rec.Flags) +
				uint64(binary.LittleEndian.Uint32(rec.Raw[8:])) + binary.LittleEndian.Uint64(rec.Raw[16:])
			if i%64 == 63 {
				rd.Commit()
			}
		}
	})
	if sum == 0 {
		b.Fatal("nothing decoded")
	}
}

// BenchmarkProduceAndRead64 is the Go producer and the reader in one
// goroutine: Write (reserve, copy, commit) then Next, per 64-byte record.
func BenchmarkProduceAndRead64(b *testing.B) {
	r, err := NewMemRing(RingDefaultSize)
	if err != nil {
		b.Fatal(err)
	}
	p := NewProducer(r)
	rd, err := NewReader(r, nil)
	if err != nil {
		b.Fatal(err)
	}
	rec := testRec(64, 1, 0)
	perRecord(b, func() {
		for i := 0; i < b.N; i++ {
			if ok, _ := p.Write(rec); !ok {
				b.Fatal("dropped")
			}
			if _, ok, err := rd.Next(); !ok || err != nil {
				b.Fatalf("ok %v err %v", ok, err)
			}
			if i%64 == 63 {
				rd.Commit()
			}
		}
	})
}
