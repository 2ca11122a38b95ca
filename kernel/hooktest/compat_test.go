//go:build vmtest

package hooktest

import (
	"encoding/binary"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"smith/kernel/hooktest/int80"
	"smith/shm"
)

// TestCompatEntries: failed execs and module loads through the 32-bit
// entry points (int $0x80 from this 64-bit process) are recorded like the
// 64-bit ones, marked SMITH_RF_COMPAT.
func TestCompatEntries(t *testing.T) {
	if !int80.Supported {
		t.Skipf("no 32-bit x86 entry (int $0x80) on %s", runtime.GOARCH)
	}
	s := open(t)
	self, _ := os.Executable()
	low, err := int80.NewLow()
	if err != nil {
		t.Fatal(err)
	}
	defer low.Close()
	// Strings at 0..1023, pointer arrays at 2048.
	cstr := func(off int, v string) uint32 { return low.Put(off, append([]byte(v), 0)) }

	// lockedCall runs call on a locked thread and returns its errno and tid.
	lockedCall := func(call func() syscall.Errno) (syscall.Errno, int, time.Time) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		before := time.Now()
		// A call that Go preempted (SIGURG) comes back restarted by the
		// kernel: int $0x80 calls restart like any other.
		errno := call()
		return errno, unix.Gettid(), before
	}
	check := func(t *testing.T, e *event, before time.Time, errno syscall.Errno) {
		t.Helper()
		checkCommon(t, e, before, time.Now())
		expectEq(t, "result", e.Result, -int64(errno))
		expectStr(t, e, shm.FExe, "exe", self)
		if shm.RecFlags(e.Hdr.Flags)&shm.RFCompat == 0 {
			t.Errorf("flags %#x: SMITH_RF_COMPAT missing", e.Hdr.Flags)
		}
	}

	t.Run("execve", func(t *testing.T) {
		const path = "/nonexistent/hooktest-32"
		args := []string{path, "a b", "", "c"}
		argv := make([]byte, 4*(len(args)+1))
		off := 0
		for i, a := range args {
			binary.LittleEndian.PutUint32(argv[4*i:], cstr(off, a))
			off += len(a) + 1
		}
		argvAddr := low.Put(2048, argv)
		envAddr := low.Put(2048+len(argv), make([]byte, 4))
		errno, tid, before := lockedCall(func() syscall.Errno {
			_, errno := int80.Syscall(int80.SysExecve, low.Addr(0), argvAddr, envAddr)
			return errno
		})
		if errno != unix.ENOENT {
			t.Fatalf("32-bit execve %s: %v, want ENOENT", path, errno)
		}
		e := s.find("32-bit execve", func(e *event) bool {
			return e.Hdr.Type == shm.EvExecve && int(e.Pid) == tid && e.str(shm.FFilename) == path
		})
		check(t, e, before, errno)
		expectStr(t, e, shm.FArgv, "argv", cmdline(args))
	})

	// refusedLoad makes a 32-bit module load of junk with params (its
	// mark: compat=N), which the kernel must refuse, and returns its
	// record, checked as every compat one.
	refusedLoad := func(t *testing.T, name string, typ shm.RecType, params string, call func(params uint32) syscall.Errno) *event {
		t.Helper()
		p := cstr(0, params)
		errno, _, before := lockedCall(func() syscall.Errno { return call(p) })
		if errno == 0 {
			t.Fatalf("32-bit %s of junk succeeded", name)
		}
		e := s.find("32-bit "+name, func(e *event) bool {
			return e.Hdr.Type == typ && int(e.Tgid) == os.Getpid() && e.str(shm.FModParams) == params
		})
		check(t, e, before, errno)
		return e
	}

	t.Run("init_module", func(t *testing.T) {
		junk := append([]byte("\x7fELF not a module"), make([]byte, 256)...)
		img := low.Put(1024, junk)
		refusedLoad(t, "init_module", shm.EvInitModule, "compat=1", func(params uint32) syscall.Errno {
			_, errno := int80.Syscall(int80.SysInitModule, img, uint32(len(junk)), params)
			return errno
		})
	})

	t.Run("finit_module", func(t *testing.T) {
		p := "/tmp/hooktest-compat-not-a-module.ko"
		f := notAModule(t, p)
		e := refusedLoad(t, "finit_module", shm.EvFinitModule, "compat=2", func(params uint32) syscall.Errno {
			_, errno := int80.Syscall(int80.SysFinitModule, uint32(f.Fd()), params, 0)
			return errno
		})
		expectStr(t, e, shm.FModPath, "path", p)
	})
}
