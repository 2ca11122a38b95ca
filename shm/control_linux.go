package shm

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Control is an open /dev/smith used for its ioctls alone: the module's
// configuration, counters, latency histograms and test records. A Device
// is a Control with the ring mapped; open a bare Control when the ring is
// not read (the netlink transport, or a benchmark that only counts). The
// module allows one open at a time, so a process holds one or the other.
type Control struct {
	f *os.File
}

// OpenControl opens the device at path (normally DevicePath) for ioctls.
func OpenControl(path string) (*Control, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open smith device: %w", err)
	}
	return &Control{f: f}, nil
}

// FD is the device's descriptor, for the caller's own poll loop.
func (c *Control) FD() int { return int(c.f.Fd()) }

func (c *Control) ioctl(req uint32, arg unsafe.Pointer) (uintptr, error) {
	r, _, e := unix.Syscall(unix.SYS_IOCTL, c.f.Fd(), uintptr(req), uintptr(arg))
	if e != 0 {
		return 0, e
	}
	return r, nil
}

// Info returns the module's configuration (SMITH_IOC_GET_INFO).
func (c *Control) Info() (Info, error) {
	var i Info
	if _, err := c.ioctl(IocGetInfo, unsafe.Pointer(&i)); err != nil {
		return Info{}, fmt.Errorf("ioctl SMITH_IOC_GET_INFO: %w", err)
	}
	return i, nil
}

// Stats returns the module's counters (SMITH_IOC_GET_STATS).
func (c *Control) Stats() (Stats, error) {
	var s Stats
	if _, err := c.ioctl(IocGetStats, unsafe.Pointer(&s)); err != nil {
		return Stats{}, fmt.Errorf("ioctl SMITH_IOC_GET_STATS: %w", err)
	}
	return s, nil
}

// EmitTest asks the module to write test records (SMITH_IOC_EMIT_TEST) and
// returns how many it wrote (or, with netlink, sent); the others were
// dropped and counted.
func (c *Control) EmitTest(e EmitTest) (int, error) {
	n, err := c.ioctl(IocEmitTest, unsafe.Pointer(&e))
	if err != nil {
		return 0, fmt.Errorf("ioctl SMITH_IOC_EMIT_TEST (%d records of %d bytes): %w", e.Count, e.Len, err)
	}
	return int(n), nil
}

// Latency returns the in-kernel latency summary of one hook
// (SMITH_IOC_GET_LATENCY); hook is the bit number of a Hook* constant.
func (c *Control) Latency(hook uint32) (Latency, error) {
	l := Latency{Hook: hook}
	if _, err := c.ioctl(IocGetLatency, unsafe.Pointer(&l)); err != nil {
		return Latency{}, fmt.Errorf("ioctl SMITH_IOC_GET_LATENCY (hook %d): %w", hook, err)
	}
	return l, nil
}

// ResetLatency empties the module's latency histograms
// (SMITH_IOC_RESET_LATENCY).
func (c *Control) ResetLatency() error {
	if _, err := c.ioctl(IocResetLatency, nil); err != nil {
		return fmt.Errorf("ioctl SMITH_IOC_RESET_LATENCY: %w", err)
	}
	return nil
}

// Close closes the device. A Device's Close unmaps its ring first.
func (c *Control) Close() error {
	if c.f == nil {
		return nil
	}
	err := c.f.Close()
	c.f = nil
	if err != nil {
		return fmt.Errorf("close smith device: %w", err)
	}
	return nil
}
