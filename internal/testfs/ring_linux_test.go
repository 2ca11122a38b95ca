// SPDX-License-Identifier: GPL-2.0

package testfs

import (
	"encoding/binary"
	"os"
	"slices"
	"testing"

	"smith/shm"
)

// The file holds the ring the kernel-free source opens: shm reads it back
// with the size it was made with, empty.
func TestRingIsAnEmptyRingFile(t *testing.T) {
	path, fr := Ring(t, shm.RingMinSize)
	if fr.Ring.ProducerPos() != 0 || fr.Ring.ConsumerPos() != 0 {
		t.Fatalf("new ring at producer %d consumer %d", fr.Ring.ProducerPos(), fr.Ring.ConsumerPos())
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	back, err := shm.OpenFileRing(f)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	if back.Ring.Size() != shm.RingMinSize {
		t.Errorf("ring read back with %d data bytes, want %d", back.Ring.Size(), shm.RingMinSize)
	}
}

// Records reads every committed record, in order, and stops at the first
// one not there yet; a loop that breaks early reads no further.
func TestRecordsReadsUntilNoneIsLeft(t *testing.T) {
	_, fr := Ring(t, shm.RingMinSize)
	p := shm.NewProducer(fr.Ring)
	rec := make([]byte, 64)
	for i := range 3 {
		binary.LittleEndian.PutUint32(rec, 64)
		binary.LittleEndian.PutUint16(rec[4:], uint16(shm.RecTest))
		binary.LittleEndian.PutUint64(rec[16:], uint64(i))
		if ok, _ := p.Write(rec); !ok {
			t.Fatalf("record %d dropped", i)
		}
	}
	rd, err := shm.NewReader(fr.Ring, nil)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for r := range Records(t, rd.Next) {
		seqs = append(seqs, binary.LittleEndian.Uint64(r.Raw[16:]))
	}
	if !slices.Equal(seqs, []uint64{0, 1, 2}) {
		t.Fatalf("read records %v, want 0 1 2", seqs)
	}
	rd.Commit()
	p.Write(rec)
	p.Write(rec)
	n := 0
	for range Records(t, rd.Next) {
		n++
		break
	}
	if _, ok, err := rd.Next(); n != 1 || !ok || err != nil {
		t.Fatalf("after a break at the first record: read %d, next ok %v err %v; want 1 and the second still there", n, ok, err)
	}
}
