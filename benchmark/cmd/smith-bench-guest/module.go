//go:build linux

package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"smith/shm"
)

// module loads and unloads smith.ko with the parameters of a configuration.
type module struct {
	path string // smith.ko
	// Parameter names, from docs/MODULE.md.
	transportParam string // send_type
	latencyParam   string // measure_latency
	loaded         bool
}

func (m *module) load(transport int, latency bool) error {
	if m.loaded {
		if err := m.unload(); err != nil {
			return err
		}
	}
	lat := "0"
	if latency {
		lat = "1"
	}
	args := []string{m.path,
		fmt.Sprintf("%s=%d", m.transportParam, transport),
		fmt.Sprintf("%s=%s", m.latencyParam, lat)}
	if out, err := exec.Command("insmod", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("insmod %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	m.loaded = true
	return nil
}

func (m *module) unload() error {
	if !m.loaded {
		return nil
	}
	// rmmod is refused while the device is still held; the reader's close
	// may take a moment to reach the module.
	var err error
	for range 50 {
		var out []byte
		if out, err = exec.Command("rmmod", "smith").CombinedOutput(); err == nil {
			m.loaded = false
			return nil
		}
		err = fmt.Errorf("rmmod smith: %w: %s", err, bytes.TrimSpace(out))
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// setLatency switches the module's latency self-measurement at run time.
func (m *module) setLatency(on bool) error {
	v := "0"
	if on {
		v = "1"
	}
	p := "/sys/module/smith/parameters/" + m.latencyParam
	if err := os.WriteFile(p, []byte(v), 0); err != nil {
		return fmt.Errorf("switch latency measurement: %w", err)
	}
	return nil
}

// device is the ioctl side of an open /dev/smith: the shm reader's own
// descriptor (the device takes one opener at a time), or one opened for
// ioctls alone when the transport is netlink.
type device struct {
	fd    uintptr
	close func() error
}

func openDevice() (*device, error) {
	f, err := os.OpenFile(shm.DevicePath, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open device: %w", err)
	}
	return &device{fd: f.Fd(), close: f.Close}, nil
}

func (d *device) Close() error { return d.close() }

// ioctl is here rather than in shm.Device for what the agent has no use
// for: the written count of EMIT_TEST and RESET_LATENCY.
func (d *device) ioctl(req uint32, arg unsafe.Pointer) (uintptr, error) {
	r, _, e := syscall.Syscall(syscall.SYS_IOCTL, d.fd, uintptr(req), uintptr(arg))
	if e != 0 {
		return 0, e
	}
	return r, nil
}

func (d *device) info() (shm.Info, error) {
	var in shm.Info
	if _, err := d.ioctl(shm.IocGetInfo, unsafe.Pointer(&in)); err != nil {
		return in, fmt.Errorf("SMITH_IOC_GET_INFO: %w", err)
	}
	return in, nil
}

func (d *device) stats() (shm.Stats, error) {
	var st shm.Stats
	if _, err := d.ioctl(shm.IocGetStats, unsafe.Pointer(&st)); err != nil {
		return st, fmt.Errorf("SMITH_IOC_GET_STATS: %w", err)
	}
	return st, nil
}

func (d *device) latency(hook uint32) (shm.Latency, error) {
	l := shm.Latency{Hook: hook}
	if _, err := d.ioctl(shm.IocGetLatency, unsafe.Pointer(&l)); err != nil {
		return l, fmt.Errorf("SMITH_IOC_GET_LATENCY hook %d: %w", hook, err)
	}
	return l, nil
}

func (d *device) resetLatency() error {
	if _, err := d.ioctl(shm.IocResetLatency, nil); err != nil {
		return fmt.Errorf("SMITH_IOC_RESET_LATENCY: %w", err)
	}
	return nil
}

// emit has the module write count test records; it returns how many it
// wrote (the others were dropped and counted).
func (d *device) emit(count, length uint32, firstSeq uint64) (uint64, error) {
	e := shm.EmitTest{Count: count, Len: length, Producer: 1, FirstSeq: firstSeq}
	n, err := d.ioctl(shm.IocEmitTest, unsafe.Pointer(&e))
	if err != nil {
		return 0, fmt.Errorf("SMITH_IOC_EMIT_TEST %d x %d bytes: %w", count, length, err)
	}
	return uint64(n), nil
}

// dropped is every record the module gave up on, whatever the transport.
func dropped(st shm.Stats) uint64 {
	return st.DroppedFull + st.DroppedTooLarge + st.DroppedFault + st.NetlinkFailed
}

// produced is every record the module handed to its transport.
func produced(st shm.Stats) uint64 {
	return st.Written + st.NetlinkSent
}
