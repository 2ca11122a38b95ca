package shm

import (
	"fmt"
	"math/bits"
	"os"

	"golang.org/x/sys/unix"
)

// FileRing is a ring in a shared file mapping laid out like the device:
// consumer page, meta page, then the data area, each page-aligned. A
// producer process (the C test producer, or the agent's kernel-free mode)
// and a reader map the same file, or memfd.
type FileRing struct {
	Ring *Ring
	mem  []byte
}

// CreateFileRing sizes f for a ring of dataSize bytes, maps it shared and
// lays out an empty ring in it.
func CreateFileRing(f *os.File, dataSize uint64) (*FileRing, error) {
	if dataSize < RingMinSize || dataSize > RingMaxSize || bits.OnesCount64(dataSize) != 1 {
		return nil, fmt.Errorf("create ring in %s: data size %d is not a power of two in [%d, %d]", f.Name(), dataSize, RingMinSize, RingMaxSize)
	}
	ps := uint64(os.Getpagesize())
	if err := f.Truncate(int64(2*ps + dataSize)); err != nil {
		return nil, fmt.Errorf("create ring in %s: %w", f.Name(), err)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(2*ps+dataSize), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("create ring in %s: mmap: %w", f.Name(), err)
	}
	r, err := InitRing(mem[:ps], mem[ps:2*ps], mem[2*ps:], uint32(ps))
	if err != nil {
		unix.Munmap(mem)
		return nil, fmt.Errorf("create ring in %s: %w", f.Name(), err)
	}
	return &FileRing{Ring: r, mem: mem}, nil
}

// OpenFileRing maps a file that holds a ring and validates it. The file's
// size must be exactly two pages plus the data size in its meta page.
func OpenFileRing(f *os.File) (*FileRing, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("open ring %s: %w", f.Name(), err)
	}
	ps := int64(os.Getpagesize())
	if st.Size() < 2*ps+RingMinSize || st.Size() > 2*ps+RingMaxSize {
		return nil, fmt.Errorf("open ring %s: file size %d cannot hold a ring: %w", f.Name(), st.Size(), ErrCorrupt)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("open ring %s: mmap: %w", f.Name(), err)
	}
	r, err := NewRing(mem[:ps], mem[ps:2*ps], mem[2*ps:])
	if err == nil && r.meta.DataOffset != uint64(2*ps) {
		err = fmt.Errorf("data offset %d, want %d: %w", r.meta.DataOffset, 2*ps, ErrCorrupt)
	}
	if err != nil {
		unix.Munmap(mem)
		return nil, fmt.Errorf("open ring %s: %w", f.Name(), err)
	}
	return &FileRing{Ring: r, mem: mem}, nil
}

// Close unmaps the ring. Call it after every Reader and Producer on the
// ring has stopped; the file itself is the caller's.
func (fr *FileRing) Close() error {
	if fr.mem == nil {
		return nil
	}
	err := unix.Munmap(fr.mem)
	fr.mem = nil
	if err != nil {
		return fmt.Errorf("unmap ring: %w", err)
	}
	return nil
}
