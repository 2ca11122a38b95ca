// SPDX-License-Identifier: GPL-2.0

package testfs

import (
	"os"
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
