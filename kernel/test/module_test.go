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
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"smith/shm"
)

// koPath is the module under test; the initramfs puts it at /smith.ko.
func koPath() string {
	if p := os.Getenv("SMITH_KO"); p != "" {
		return p
	}
	return "/smith.ko"
}

const devPath = "/dev/" + shm.DeviceName

// helperEnv makes the test binary run one privileged-or-not step instead
// of the tests (see TestMain): the step name is its value.
const helperEnv = "SMITH_KTEST_HELPER"

func TestMain(m *testing.M) {
	if step := os.Getenv(helperEnv); step != "" {
		os.Exit(runHelper(step))
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "kerneltest: must run as root inside the test VM")
		os.Exit(1)
	}
	// Each test loads the module with its own parameters. A module found
	// loaded (a scenario that loads it for every test binary) is unloaded
	// first and loaded again, with default parameters, at the end.
	wasLoaded := loaded()
	if wasLoaded {
		if err := rmmod(); err != nil {
			fmt.Fprintln(os.Stderr, "kerneltest: smith is loaded and cannot be unloaded:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	if wasLoaded && !loaded() {
		if err := insmod(); err != nil {
			fmt.Fprintln(os.Stderr, "kerneltest: reload:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func loaded() bool {
	_, err := os.Stat("/sys/module/smith")
	return err == nil
}

// insmod loads the module with the given parameters.
func insmod(params ...string) error {
	args := append([]string{koPath()}, params...)
	out, err := exec.Command("insmod", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("insmod %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// rmmod unloads without waiting: the kernel refuses a module in use.
func rmmod() error {
	if err := unix.DeleteModule("smith", unix.O_NONBLOCK); err != nil {
		return fmt.Errorf("delete_module smith: %w", err)
	}
	return nil
}

// rmmodWait unloads, retrying while the module is busy for a moment: a
// child forked by another goroutine holds a copy of every open file until
// it execs, and with it a reference to /dev/smith just closed here.
func rmmodWait() error {
	var err error
	for range 100 {
		if err = rmmod(); err == nil || !isBusy(err) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
	return err
}

// isBusy: delete_module with O_NONBLOCK refuses a module in use with
// EWOULDBLOCK (EAGAIN); EBUSY is its answer when another module uses it.
func isBusy(err error) bool {
	return errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EBUSY)
}

// load loads the module for one test and unloads it when the test ends;
// a failed unload fails the test.
func load(t *testing.T, params ...string) {
	t.Helper()
	if loaded() {
		t.Fatal("smith is already loaded: a previous test leaked it")
	}
	if err := insmod(params...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := rmmodWait(); err != nil {
			t.Errorf("unload at end of test: %v", err)
		}
	})
}

// device is an open /dev/smith.
type device struct {
	f *os.File
}

func open(t *testing.T) *device {
	t.Helper()
	f, err := os.OpenFile(devPath, os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("open %s: %v", devPath, err)
	}
	d := &device{f: f}
	t.Cleanup(func() { d.f.Close() })
	return d
}

func (d *device) close() error { return d.f.Close() }

func (d *device) ioctl(req uint32, arg unsafe.Pointer) (uintptr, error) {
	r, _, e := syscall.Syscall(syscall.SYS_IOCTL, d.f.Fd(), uintptr(req), uintptr(arg))
	if e != 0 {
		return r, e
	}
	return r, nil
}

func (d *device) info(t *testing.T) shm.Info {
	t.Helper()
	var in shm.Info
	if _, err := d.ioctl(shm.IocGetInfo, unsafe.Pointer(&in)); err != nil {
		t.Fatalf("SMITH_IOC_GET_INFO: %v", err)
	}
	return in
}

func (d *device) stats(t *testing.T) shm.Stats {
	t.Helper()
	var st shm.Stats
	if _, err := d.ioctl(shm.IocGetStats, unsafe.Pointer(&st)); err != nil {
		t.Fatalf("SMITH_IOC_GET_STATS: %v", err)
	}
	return st
}

// emit asks for count test records of length bytes and returns how many
// the module wrote.
func (d *device) emit(t *testing.T, producer, count, length uint32, firstSeq uint64) int {
	t.Helper()
	e := shm.EmitTest{Count: count, Len: length, Producer: producer, FirstSeq: firstSeq}
	n, err := d.ioctl(shm.IocEmitTest, unsafe.Pointer(&e))
	if err != nil {
		t.Fatalf("SMITH_IOC_EMIT_TEST %d x %d bytes: %v", count, length, err)
	}
	return int(n)
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
		s, err := netlinkHello()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		// Keep the socket a moment: a registration would be live now.
		time.Sleep(200 * time.Millisecond)
		syscall.Close(s)
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown helper step", step)
	return 1
}

// asNobody runs a helper step as uid/gid 65534.
func asNobody(t *testing.T, step string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), helperEnv+"="+step)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("step %s as nobody: %v: %s", step, err, bytes.TrimSpace(out))
	}
}
