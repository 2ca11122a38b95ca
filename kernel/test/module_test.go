//go:build vmtest

// Package kerneltest checks the module core of smith.ko inside a test VM:
// the device (/dev/smith), its mmap rules and ioctls, load parameters,
// load/unload safety and the netlink transport. It loads and unloads the
// module itself, so it must run as root on a kernel with the module not
// loaded; scripts/vm/scenarios/module.sh runs it.
package kerneltest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"smith/internal/kmodtest"
	"smith/shm"
)

const devPath = shm.DevicePath

func TestMain(m *testing.M) {
	// A privileged-or-not step run in a child (asNobody).
	if step := kmodtest.Step(); step != "" {
		os.Exit(runHelper(step))
	}
	// Each test loads the module with its own parameters. A module found
	// loaded (a scenario that loads it for every test binary) is unloaded
	// first and loaded again, with default parameters, at the end.
	os.Exit(kmodtest.RunUnloaded(m))
}

// device is an open /dev/smith whose ioctls fail the test.
type device struct {
	*shm.Control
}

func open(t *testing.T) *device {
	t.Helper()
	c, err := shm.OpenControl(devPath)
	if err != nil {
		t.Fatal(err)
	}
	d := &device{c}
	t.Cleanup(func() { d.Close() })
	return d
}

func (d *device) info(t *testing.T) shm.Info   { t.Helper(); return kmodtest.Must(t, d.Info) }
func (d *device) stats(t *testing.T) shm.Stats { t.Helper(); return kmodtest.Must(t, d.Stats) }

func (d *device) latency(t *testing.T, hook uint32) shm.Latency {
	t.Helper()
	return kmodtest.Must(t, func() (shm.Latency, error) { return d.Latency(hook) })
}

// emit asks for count test records of length bytes and returns how many
// the module wrote.
func (d *device) emit(t *testing.T, producer, count, length uint32, firstSeq uint64) int {
	t.Helper()
	return kmodtest.Must(t, func() (int, error) {
		return d.EmitTest(shm.EmitTest{Count: count, Len: length, Producer: producer, FirstSeq: firstSeq})
	})
}

// rawIoctl sends a request shm.Control would never send.
func (d *device) rawIoctl(req uint32, arg unsafe.Pointer) error {
	_, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(d.FD()), uintptr(req), uintptr(arg))
	if e != 0 {
		return e
	}
	return nil
}

// debugfsStat reads one "name value" line of /sys/kernel/debug/smith/stats.
func debugfsStat(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("/sys/kernel/debug/smith/stats")
	if err != nil {
		t.Fatalf("read debugfs stats: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == name {
			return f[1]
		}
	}
	t.Fatalf("debugfs stats has no %q line:\n%s", name, b)
	return ""
}

// checkTestRecord checks one SMITH_REC_TEST record as EMIT_TEST writes it.
func checkTestRecord(rec []byte, length, producer uint32, seq uint64) error {
	if len(rec) < int(length) {
		return fmt.Errorf("record of %d bytes, want %d", len(rec), length)
	}
	h := (*shm.TestRec)(unsafe.Pointer(&rec[0]))
	if h.Hdr.Len != length || h.Hdr.Type != shm.RecTest || h.Producer != producer || h.Seq != seq {
		return fmt.Errorf("record len %#x type %d producer %d seq %d, want len %#x type %d producer %d seq %d",
			h.Hdr.Len, h.Hdr.Type, h.Producer, h.Seq, length, shm.RecTest, producer, seq)
	}
	payload := rec[unsafe.Sizeof(shm.TestRec{}):length]
	for i, b := range payload {
		if want := byte(seq + uint64(i)); b != want {
			return fmt.Errorf("seq %d payload byte %d = %#x, want %#x", seq, i, b, want)
		}
	}
	return nil
}

// runHelper runs a step in a child process, for what needs another uid.
// Exit status 0: the step did what the test expects; 1: it did not, with
// the reason on stderr.
func runHelper(step string) int {
	switch step {
	case "open-as-nobody":
		f, err := os.OpenFile(devPath, os.O_RDWR, 0)
		if err == nil {
			f.Close()
			fmt.Fprintln(os.Stderr, "uid", os.Getuid(), "opened", devPath)
			return 1
		}
		if !errors.Is(err, syscall.EACCES) && !errors.Is(err, syscall.EPERM) {
			fmt.Fprintln(os.Stderr, "open failed, but not with EACCES/EPERM:", err)
			return 1
		}
		return 0
	case "netlink-hello-as-nobody":
		s, err := shm.DialNetlink()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		// Keep the socket a moment: a registration would be live now.
		time.Sleep(200 * time.Millisecond)
		s.Close()
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown helper step", step)
	return 1
}

// asNobody runs a helper step as uid/gid 65534.
func asNobody(t *testing.T, step string) {
	t.Helper()
	cmd, err := kmodtest.StepCommand(step)
	if err != nil {
		t.Fatal(err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("step %s as nobody: %v: %s", step, err, bytes.TrimSpace(out))
	}
}
