//go:build vmtest

package hooktest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"smith/agent/decode"
	"smith/internal/kmodtest"
	"smith/shm"
)

// The program the exec tests run: busybox's true applet. Its real file is
// the exe a record must name.
const (
	truePath = "/bin/true"
	utsName  = "hooktest-uts"
)

func busyboxPath(t *testing.T) string {
	t.Helper()
	p, err := filepath.EvalSymlinks(truePath)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// runHelper is a step run in a child of the test binary, for calls the Go
// runtime cannot make between fork and exec.
func runHelper(step string) int {
	if step == "storm" {
		n, err := strconv.Atoi(os.Getenv("SMITH_STORM_SECONDS"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "SMITH_STORM_SECONDS:", err)
			return 2
		}
		return stormLoop(n)
	}
	if addr, ok := strings.CutPrefix(step, "connect:"); ok {
		return helperConnect(addr)
	}
	runtime.LockOSThread()
	argv := []string{"true", "helper", step}
	switch step {
	case "uts":
		// A new UTS namespace with its own host name, then exec.
		if err := unix.Unshare(unix.CLONE_NEWUTS); err != nil {
			fmt.Fprintln(os.Stderr, "unshare:", err)
			return 2
		}
		if err := unix.Sethostname([]byte(utsName)); err != nil {
			fmt.Fprintln(os.Stderr, "sethostname:", err)
			return 2
		}
		err := unix.Exec(truePath, argv, os.Environ())
		fmt.Fprintln(os.Stderr, "exec:", err)
	case "execveat":
		// execveat(fd, "", argv, envp, AT_EMPTY_PATH) of an open binary.
		fd, err := unix.Open(truePath, unix.O_RDONLY, 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, "open:", err)
			return 2
		}
		err = execveat(fd, "", argv, os.Environ(), unix.AT_EMPTY_PATH)
		// The exit status tells the test which errno the kernel gave.
		if errno, ok := err.(syscall.Errno); ok && errno > 0 && errno < 100 {
			return 100 + int(errno)
		}
		fmt.Fprintln(os.Stderr, "execveat:", err)
	case "execveat-path":
		err := execveat(unix.AT_FDCWD, truePath, argv, os.Environ(), 0)
		fmt.Fprintln(os.Stderr, "execveat:", err)
	case "execveat-fail":
		// execveat of a missing name relative to a directory.
		fd, err := unix.Open("/tmp", unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, "open:", err)
			return 2
		}
		err = execveat(fd, "hooktest-missing", argv, os.Environ(), 0)
		if err == unix.ENOENT {
			return 0
		}
		fmt.Fprintln(os.Stderr, "execveat:", err)
	}
	return 2
}

func execveat(dirfd int, path string, argv, envv []string, flags int) error {
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return err
	}
	av, err := cstrings(argv)
	if err != nil {
		return err
	}
	ev, err := cstrings(envv)
	if err != nil {
		return err
	}
	_, _, e := unix.Syscall6(unix.SYS_EXECVEAT, uintptr(dirfd), uintptr(unsafe.Pointer(p)),
		uintptr(unsafe.Pointer(&av[0])), uintptr(unsafe.Pointer(&ev[0])), uintptr(flags), 0)
	return e
}

// cstrings is a NULL-terminated array of C strings.
func cstrings(ss []string) ([]*byte, error) {
	out := make([]*byte, 0, len(ss)+1)
	for _, s := range ss {
		p, err := unix.BytePtrFromString(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return append(out, nil), nil
}

func helper(t *testing.T, step string) *exec.Cmd {
	t.Helper()
	cmd, err := kmodtest.StepCommand(step)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	return cmd
}

// runStep runs a helper step to its end, failing the test if it fails,
// and returns the process id it ran as.
func runStep(t *testing.T, step string) int {
	t.Helper()
	cmd := helper(t, step)
	if err := cmd.Run(); err != nil {
		t.Fatalf("step %s: %v", step, err)
	}
	return cmd.Process.Pid
}

func syscallForkExec(path string, args []string) (int, error) {
	return syscall.ForkExec(path, args, &syscall.ProcAttr{Dir: "/"})
}

// cmdline is args as the exec record's argv field holds them, each ended
// by a NUL (as /proc/PID/cmdline).
func cmdline(args []string) string { return strings.Join(args, "\x00") + "\x00" }

func pipeIno(t *testing.T, f *os.File) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("pipe:[%d]", st.Ino)
}

// expectExeID checks the identity of the loaded file an exec record
// carries against the file's stat (path "": a failed exec, all zeros).
func expectExeID(t *testing.T, e *event, path string) {
	t.Helper()
	if !e.HasExeID {
		t.Errorf("no exe id field: %v", e)
		return
	}
	var want decode.ExeID
	if path != "" {
		var st unix.Stat_t
		if err := unix.Stat(path, &st); err != nil {
			t.Fatal(err)
		}
		want = decode.ExeID{Dev: uint32(st.Dev), Ino: st.Ino, Size: st.Size,
			MtimeSec: st.Mtim.Sec, MtimeNsec: uint32(st.Mtim.Nsec), CtimeSec: st.Ctim.Sec, CtimeNsec: uint32(st.Ctim.Nsec)}
	}
	if e.ExeID != want {
		t.Errorf("exe id of %q: got %+v, want %+v", path, e.ExeID, want)
	}
}

func TestExec(t *testing.T) {
	s := open(t)
	in := s.info()
	if in.HooksAttached&(shm.HookExecve|shm.HookExecveat) != shm.HookExecve|shm.HookExecveat {
		t.Fatalf("exec hooks not attached: attached %#x failed %#x", in.HooksAttached, in.HooksFailed)
	}
	argvCap := int(in.ArgvCap)
	bb := busyboxPath(t)
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	me := os.Getpid()
	sid, err := unix.Getsid(0)
	if err != nil {
		t.Fatal(err)
	}

	// run execs truePath with args from dir with stdout on a pipe, in a
	// process group of its own, and returns its record.
	run := func(t *testing.T, args []string) (*event, *exec.Cmd, string, time.Time) {
		t.Helper()
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		defer w.Close()
		cmd := &exec.Cmd{Path: truePath, Args: args, Dir: "/tmp", Stdout: w,
			SysProcAttr: &syscall.SysProcAttr{Setpgid: true}}
		before := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		pid := cmd.Process.Pid
		e := s.find(fmt.Sprintf("exec of pid %d", pid), func(e *event) bool {
			return e.Hdr.Type == shm.EvExecve && int(e.Tgid) == pid
		})
		return e, cmd, pipeIno(t, w), before
	}

	t.Run("argv with special bytes", func(t *testing.T) {
		args := []string{"true", "two words", `"double" 'single'`, `back\slash`,
			"new\nline", "tab\there", "\xff\xfe non-UTF-8 \xc3\x28", ""}
		e, cmd, pipe, before := run(t, args)
		checkCommon(t, e, before, time.Now())
		expectEq(t, "result", e.Result, 0)
		expectEq(t, "pid", int(e.Pid), cmd.Process.Pid)
		expectEq(t, "ppid", int(e.Ppid), me)
		expectEq(t, "pgid", int(e.Pgid), cmd.Process.Pid)
		expectEq(t, "sid", int(e.Sid), sid)
		expectEq(t, "pid_ns", e.PidNS, nsInode(t, me, "pid"))
		expectEq(t, "comm", e.comm(), "true")
		expectEq(t, "flags", e.Hdr.Flags, 0)
		expectStr(t, e, shm.FFilename, "filename", truePath)
		expectStr(t, e, shm.FArgv, "argv", cmdline(args))
		expectStr(t, e, shm.FExe, "exe", bb)
		expectStr(t, e, shm.FNodename, "nodename", host)
		expectStr(t, e, shm.FCwd, "cwd", "/tmp")
		expectStr(t, e, shm.FStdin, "stdin", os.DevNull)
		expectStr(t, e, shm.FStdout, "stdout", pipe)
		expectExeID(t, e, bb)
	})

	t.Run("argv longer than the cap", func(t *testing.T) {
		args := []string{"true"}
		for i := 0; len(cmdline(args)) <= 3*argvCap; i++ {
			args = append(args, strings.Repeat(strconv.Itoa(i%10), 100))
		}
		e, _, _, _ := run(t, args)
		expectEq(t, "result", e.Result, 0)
		if e.Hdr.Flags&shm.RFTruncated == 0 {
			t.Errorf("record not flagged truncated: flags %#x", e.Hdr.Flags)
		}
		f := e.fields[shm.FArgv]
		if f.flags&shm.FFTruncated == 0 {
			t.Errorf("argv field not flagged truncated: flags %#x", f.flags)
		}
		if want := cmdline(args)[:argvCap]; string(f.val) != want {
			t.Errorf("argv: got %d bytes, want the first %d of the command line", len(f.val), argvCap)
		}
	})

	t.Run("empty argv", func(t *testing.T) {
		before := time.Now()
		pid, err := syscall.ForkExec(truePath, []string{}, &syscall.ProcAttr{Dir: "/tmp"})
		if err != nil {
			t.Fatal(err)
		}
		var ws syscall.WaitStatus
		_, _ = syscall.Wait4(pid, &ws, 0, nil)
		e := s.find("exec with empty argv", func(e *event) bool {
			return e.Hdr.Type == shm.EvExecve && int(e.Tgid) == pid
		})
		checkCommon(t, e, before, time.Now())
		expectEq(t, "result", e.Result, 0)
		// Since 5.18 the kernel gives such a program one empty argument.
		if a := e.str(shm.FArgv); a != "" && a != "\x00" {
			t.Errorf("argv %q, want empty or one empty string", a)
		}
	})

	failed := func(t *testing.T, path string, errno syscall.Errno) {
		t.Helper()
		args := []string{"hooktest", "failing exec", path}
		before := time.Now()
		_, err := syscall.ForkExec(path, args, &syscall.ProcAttr{Dir: "/tmp"})
		if err != errno {
			t.Fatalf("exec %s: %v, want %v", path, err, errno)
		}
		e := s.find("failed exec of "+path, func(e *event) bool {
			return e.Hdr.Type == shm.EvExecve && e.str(shm.FFilename) == path
		})
		checkCommon(t, e, before, time.Now())
		expectEq(t, "result", e.Result, -int64(errno))
		expectEq(t, "ppid", int(e.Ppid), me)
		expectEq(t, "flags", e.Hdr.Flags, 0)
		expectStr(t, e, shm.FArgv, "argv", cmdline(args))
		expectStr(t, e, shm.FCwd, "cwd", "/tmp")
		// The forked child still runs the test binary.
		self, _ := os.Executable()
		expectStr(t, e, shm.FExe, "exe", self)
		expectExeID(t, e, "")
	}
	t.Run("failed exec ENOENT", func(t *testing.T) {
		failed(t, "/tmp/hooktest-does-not-exist", syscall.ENOENT)
	})
	t.Run("failed exec EACCES", func(t *testing.T) {
		p := "/tmp/hooktest-not-executable"
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(p)
		failed(t, p, syscall.EACCES)
	})

	// execveat with AT_EMPTY_PATH: the filename is /dev/fd/N. Some kernels
	// refuse it (Debian's 5.10 gives ENOENT); the record must then carry
	// that result, flagged as execveat, with an empty filename.
	t.Run("execveat AT_EMPTY_PATH", func(t *testing.T) {
		cmd := helper(t, "execveat")
		before := time.Now()
		err := cmd.Run()
		pid := cmd.Process.Pid
		var errno syscall.Errno
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() > 100 {
			errno = syscall.Errno(ee.ExitCode() - 100)
			t.Logf("this kernel refuses execveat(fd, \"\", AT_EMPTY_PATH): %v", errno)
		} else if err != nil {
			t.Fatal(err)
		}
		// The helper's own start is an exec of the test binary: skip it.
		want := cmdline([]string{"true", "helper", "execveat"})
		e := s.find("execveat", func(e *event) bool {
			return e.Hdr.Type == shm.EvExecve && int(e.Tgid) == pid && e.str(shm.FArgv) == want
		})
		checkCommon(t, e, before, time.Now())
		expectEq(t, "result", e.Result, -int64(errno))
		if e.Hdr.Flags&shm.RFExecveat == 0 {
			t.Errorf("not flagged execveat: flags %#x", e.Hdr.Flags)
		}
		if errno != 0 {
			expectStr(t, e, shm.FFilename, "filename", "")
			return
		}
		// The kernel names a program run from a descriptor /dev/fd/N.
		if f := e.str(shm.FFilename); !strings.HasPrefix(f, "/dev/fd/") {
			t.Errorf("filename %q, want /dev/fd/N", f)
		}
		expectStr(t, e, shm.FExe, "exe", bb)
	})

	t.Run("execveat with a path", func(t *testing.T) {
		before := time.Now()
		pid := runStep(t, "execveat-path")
		want := cmdline([]string{"true", "helper", "execveat-path"})
		e := s.find("execveat with a path", func(e *event) bool {
			return e.Hdr.Type == shm.EvExecve && int(e.Tgid) == pid && e.str(shm.FArgv) == want
		})
		checkCommon(t, e, before, time.Now())
		expectEq(t, "result", e.Result, 0)
		if e.Hdr.Flags&shm.RFExecveat == 0 {
			t.Errorf("not flagged execveat: flags %#x", e.Hdr.Flags)
		}
		expectStr(t, e, shm.FFilename, "filename", truePath)
		expectStr(t, e, shm.FExe, "exe", bb)
	})

	t.Run("failed execveat", func(t *testing.T) {
		pid := runStep(t, "execveat-fail")
		e := s.find("failed execveat", func(e *event) bool {
			return e.Hdr.Type == shm.EvExecve && int(e.Tgid) == pid && e.Result < 0
		})
		expectEq(t, "result", e.Result, -int64(syscall.ENOENT))
		if e.Hdr.Flags&shm.RFExecveat == 0 {
			t.Errorf("not flagged execveat: flags %#x", e.Hdr.Flags)
		}
		expectStr(t, e, shm.FFilename, "filename", "hooktest-missing")
		expectStr(t, e, shm.FArgv, "argv", cmdline([]string{"true", "helper", "execveat-fail"}))
	})

	t.Run("script with a shebang", func(t *testing.T) {
		p := "/tmp/hooktest-script.sh"
		if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(p)
		cmd := exec.Command(p, "arg one", "arg2")
		before := time.Now()
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		pid := cmd.Process.Pid
		e := s.find("script exec", func(e *event) bool {
			return e.Hdr.Type == shm.EvExecve && int(e.Tgid) == pid
		})
		checkCommon(t, e, before, time.Now())
		expectEq(t, "result", e.Result, 0)
		expectStr(t, e, shm.FFilename, "filename", p)
		// The interpreter's argv: interpreter, script, then the arguments.
		expectStr(t, e, shm.FArgv, "argv", cmdline([]string{"/bin/sh", p, "arg one", "arg2"}))
		expectStr(t, e, shm.FExe, "exe", bb)
	})

	t.Run("new UTS namespace", func(t *testing.T) {
		pid := runStep(t, "uts")
		want := cmdline([]string{"true", "helper", "uts"})
		e := s.find("exec in a new UTS namespace", func(e *event) bool {
			return e.Hdr.Type == shm.EvExecve && int(e.Tgid) == pid && e.str(shm.FArgv) == want
		})
		expectEq(t, "result", e.Result, 0)
		expectStr(t, e, shm.FNodename, "nodename", utsName)
	})

	t.Run("new pid namespace", func(t *testing.T) {
		cmd := exec.Command("/bin/sleep", "2")
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pid := cmd.Process.Pid
		ns := nsInode(t, pid, "pid")
		_ = cmd.Wait()
		if ns == nsInode(t, me, "pid") {
			t.Fatal("the child shares our pid namespace")
		}
		e := s.find("exec in a new pid namespace", func(e *event) bool {
			return e.Hdr.Type == shm.EvExecve && int(e.Tgid) == pid
		})
		// Ids are the host's view: the global pid, not 1.
		expectEq(t, "pid", int(e.Pid), pid)
		expectEq(t, "pid_ns", e.PidNS, ns)
		expectEq(t, "ppid", int(e.Ppid), me)
		expectStr(t, e, shm.FArgv, "argv", cmdline([]string{"/bin/sleep", "2"}))
	})

	t.Run("controlling tty", func(t *testing.T) {
		ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer ptmx.Close()
		n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
			t.Fatal(err)
		}
		pts, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer pts.Close()
		cmd := exec.Command(truePath, "with a tty")
		cmd.Stdin, cmd.Stdout = pts, pts
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		pid := cmd.Process.Pid
		e := s.find("exec with a tty", func(e *event) bool {
			return e.Hdr.Type == shm.EvExecve && int(e.Tgid) == pid
		})
		expectEq(t, "sid", int(e.Sid), pid)
		expectStr(t, e, shm.FTTY, "tty", fmt.Sprintf("pts%d", n))
		expectStr(t, e, shm.FStdin, "stdin", fmt.Sprintf("/dev/pts/%d", n))
		expectStr(t, e, shm.FStdout, "stdout", fmt.Sprintf("/dev/pts/%d", n))
	})

	st := s.stats()
	if st.Hooks[0].Events == 0 || st.Hooks[1].Events == 0 {
		t.Errorf("per-hook events: execve %d execveat %d, want both counted", st.Hooks[0].Events, st.Hooks[1].Events)
	}
	if st.Hooks[0].Truncated == 0 {
		t.Errorf("execve truncations not counted")
	}
}
