package shm

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DevicePath is where the module's misc device appears.
const DevicePath = "/dev/" + DeviceName

var errNotRing = errors.New("not a smith ring")

// Device is an open /dev/smith with its ring mapped: the consumer page
// read-write, the meta page and the data area read-only, and the ioctls of
// its Control. The module allows one open at a time (a second gets EBUSY).
type Device struct {
	Control
	cons []byte // consumer page, RW
	mem  []byte // meta page + data area, RO
	Ring *Ring
}

// OpenDevice opens the device at path (normally DevicePath) and maps its
// ring, validating magic, ABI major and sizes from the meta page.
func OpenDevice(path string) (*Device, error) {
	c, err := OpenControl(path)
	if err != nil {
		return nil, err
	}
	d := &Device{Control: *c}
	if err := d.mmap(); err != nil {
		d.Close()
		return nil, fmt.Errorf("map ring of %s: %w", path, err)
	}
	return d, nil
}

func (d *Device) mmap() error {
	fd := int(d.f.Fd())
	ps := os.Getpagesize()
	var err error
	d.cons, err = unix.Mmap(fd, MmapConsumerPgoff*int64(ps), ps, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("mmap consumer page: %w", err)
	}
	// The meta page says how large the data area is: map it alone first.
	meta, err := unix.Mmap(fd, MmapMetaPgoff*int64(ps), ps, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("mmap meta page: %w", err)
	}
	m := (*RingMeta)(unsafe.Pointer(&meta[0]))
	size, off, magic := m.DataSize, m.DataOffset, m.Magic
	if err := unix.Munmap(meta); err != nil {
		return fmt.Errorf("unmap meta page: %w", err)
	}
	if magic != RingMagic {
		return fmt.Errorf("magic %#x, want %#x: %w", magic, RingMagic, errNotRing)
	}
	if size < RingMinSize || size > RingMaxSize || off != MmapDataPgoff*uint64(ps) {
		return fmt.Errorf("data area of %d bytes at offset %d: %w", size, off, ErrCorrupt)
	}
	d.mem, err = unix.Mmap(fd, MmapMetaPgoff*int64(ps), ps+int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("mmap meta and data: %w", err)
	}
	d.Ring, err = NewRing(d.cons, d.mem[:ps], d.mem[ps:])
	return err
}

// NewReader returns a Reader of the device's ring that waits with epoll on
// the device (readable while the producer is ahead of the consumer).
func (d *Device) NewReader() (*Reader, error) {
	w, err := newFDWaiter(int(d.f.Fd()), false)
	if err != nil {
		return nil, fmt.Errorf("ring reader for %s: %w", d.f.Name(), err)
	}
	r, err := NewReader(d.Ring, w)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("ring reader for %s: %w", d.f.Name(), err)
	}
	return r, nil
}

// Close unmaps the ring and closes the device. Call it after the reading
// goroutine has returned (Reader.Close interrupts it).
func (d *Device) Close() error {
	var errs []error
	if d.mem != nil {
		errs = append(errs, unix.Munmap(d.mem))
		d.mem = nil
	}
	if d.cons != nil {
		errs = append(errs, unix.Munmap(d.cons))
		d.cons = nil
	}
	errs = append(errs, d.Control.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close ring device: %w", err)
	}
	return nil
}
