// SPDX-License-Identifier: GPL-2.0

package testfs

import (
	"iter"
	"os"
	"path/filepath"
	"testing"

	"smith/shm"
)

// Ring creates a file in a temporary directory holding an empty ring of
// dataSize bytes, as the agent's kernel-free source reads (source.kind =
// "file"), and maps it; it is unmapped when the test ends. Any error
// fails the test.
func Ring(tb testing.TB, dataSize uint64) (path string, fr *shm.FileRing) {
	tb.Helper()
	path = filepath.Join(tb.TempDir(), "ring")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	fr, err = shm.CreateFileRing(f, dataSize)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { fr.Close() })
	return path, fr
}

// Records yields the records next returns (a Reader's or a source's Next)
// until it has none; an error fails the test. Each record is yielded
// before the next is read, so it is valid as long as the ones Next returns.
func Records(tb testing.TB, next func() (shm.Record, bool, error)) iter.Seq[shm.Record] {
	return func(yield func(shm.Record) bool) {
		tb.Helper()
		for {
			rec, ok, err := next()
			if err != nil {
				tb.Fatal(err)
			}
			if !ok || !yield(rec) {
				return
			}
		}
	}
}
