//go:build vmtest && arm64

package hooktest

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"smith/shm"
)

// hooktest32 is the AArch32 program (kernel/hooktest/aarch32/hooktest32.s)
// that scripts/vm/guest.sh puts into every arm64 guest.
func hooktest32(t *testing.T) string {
	t.Helper()
	p := "/guest/hooktest32"
	if v := os.Getenv("SMITH_HOOKTEST32"); v != "" {
		p = v
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("the AArch32 test program: %v (scripts/vm/guest.sh builds it)", err)
	}
	return p
}

// run32 is one run of hooktest32: its pid, the errno it exited with (the
// call's) and when it ran.
type run32 struct {
	args          []string // hooktest32's argv, argv[0] included
	pid           int
	errno         syscall.Errno
	before, after time.Time
}

// TestCompatAArch32: on arm64, the calls of an AArch32 program (failed
// execs, module loads, connects, through the AArch32 syscall entries) are
// recorded like the 64-bit ones; exec and module records carry
// SMITH_RF_COMPAT and argv is read as 4-byte pointers.
func TestCompatAArch32(t *testing.T) {
	prog := hooktest32(t)
	s := open(t)
	me := os.Getpid()

	// run starts hooktest32 with args from /tmp, fd 3 being extra if
	// not nil, and returns what it did.
	run := func(t *testing.T, extra *os.File, args ...string) run32 {
		t.Helper()
		r := run32{args: append([]string{prog}, args...)}
		cmd := &exec.Cmd{Path: prog, Args: r.args, Dir: "/tmp", Env: []string{}}
		if extra != nil {
			cmd.ExtraFiles = []*os.File{extra}
		}
		r.before = time.Now()
		err := cmd.Run()
		r.after = time.Now()
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee):
			r.errno = syscall.Errno(ee.ExitCode())
		default:
			// ENOEXEC here: the CPU or the kernel runs no AArch32 code.
			t.Fatalf("run %s: %v", prog, err)
		}
		if r.errno == 255 {
			t.Fatalf("%s %q: usage error", prog, args)
		}
		r.pid = cmd.Process.Pid
		return r
	}
	// check: the fields every record of hooktest32 has.
	check := func(t *testing.T, e *event, r run32, compat bool) {
		t.Helper()
		checkCommon(t, e, r.before, r.after)
		expectEq(t, "result", e.Result, -int64(r.errno))
		expectEq(t, "pid", int(e.Pid), r.pid)
		expectEq(t, "tgid", int(e.Tgid), r.pid)
		expectEq(t, "ppid", int(e.Ppid), me)
		expectEq(t, "pgid", int(e.Pgid), syscall.Getpgrp())
		expectEq(t, "comm", e.comm(), filepath.Base(prog))
		expectStr(t, e, shm.FExe, "exe", prog)
		if got := shm.RecFlags(e.Hdr.Flags)&shm.RFCompat != 0; got != compat {
			t.Errorf("flags %#x: SMITH_RF_COMPAT %v, want %v", e.Hdr.Flags, got, compat)
		}
	}
	findExec := func(t *testing.T, r run32, path string) *event {
		t.Helper()
		return s.find(fmt.Sprintf("exec of %s by pid %d", path, r.pid), func(e *event) bool {
			return e.Hdr.Type == shm.EvExecve && int(e.Tgid) == r.pid && e.str(shm.FFilename) == path
		})
	}
	// execFailed: a failed exec of path by r, with argv args.
	execFailed := func(t *testing.T, r run32, path string, args []string, flags shm.RecFlags, want syscall.Errno) {
		t.Helper()
		if r.errno != want {
			t.Fatalf("AArch32 exec of %s: %v, want %v", path, r.errno, want)
		}
		e := findExec(t, r, path)
		check(t, e, r, true)
		expectEq(t, "flags", shm.RecFlags(e.Hdr.Flags)&(shm.RFCompat|shm.RFExecveat), flags)
		expectStr(t, e, shm.FFilename, "filename", path)
		expectStr(t, e, shm.FArgv, "argv", cmdline(args))
		expectStr(t, e, shm.FCwd, "cwd", "/tmp")
		expectStr(t, e, shm.FStdin, "stdin", os.DevNull)
	}

	missing := []string{"/nonexistent/hooktest-32", "a b", "", "c"}

	t.Run("execve ENOENT", func(t *testing.T) {
		r := run(t, nil, append([]string{"e"}, missing...)...)
		execFailed(t, r, missing[0], missing, shm.RFCompat, unix.ENOENT)

		// The exec that started hooktest32 succeeded: a 32-bit program.
		e := findExec(t, r, prog)
		ok := r
		ok.errno = 0
		check(t, e, ok, true)
		expectStr(t, e, shm.FArgv, "argv", cmdline(r.args))
		expectStr(t, e, shm.FCwd, "cwd", "/tmp")
		expectStr(t, e, shm.FStdin, "stdin", os.DevNull)
		expectStr(t, e, shm.FStdout, "stdout", os.DevNull)
	})

	t.Run("execve EACCES", func(t *testing.T) {
		p := "/tmp/hooktest-32-not-executable"
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(p) })
		r := run(t, nil, "e", p)
		execFailed(t, r, p, []string{p}, shm.RFCompat, unix.EACCES)
	})

	t.Run("execveat ENOENT", func(t *testing.T) {
		r := run(t, nil, append([]string{"a"}, missing...)...)
		execFailed(t, r, missing[0], missing, shm.RFCompat|shm.RFExecveat, unix.ENOENT)
	})

	// Module loads of junk: refused, recorded with their parameters; no
	// name (the image is no module, a file is not read).
	for _, tc := range []struct {
		name string
		typ  shm.RecType
		path string // finit_module: the file, as descriptor 3
		args []string
	}{
		{"init_module", shm.EvInitModule, "", []string{"i", "\x7fELF not a module", "compat=1"}},
		{"finit_module", shm.EvFinitModule, "/tmp/hooktest-32-not-a-module.ko", []string{"f", "compat=2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f *os.File
			if tc.path != "" {
				f = notAModule(t, tc.path)
			}
			r := run(t, f, tc.args...)
			if r.errno == 0 {
				t.Fatalf("AArch32 %s of junk succeeded", tc.name)
			}
			e := s.find("AArch32 "+tc.name, func(e *event) bool {
				return e.Hdr.Type == tc.typ && int(e.Tgid) == r.pid
			})
			check(t, e, r, true)
			expectStr(t, e, shm.FModParams, "params", tc.args[len(tc.args)-1])
			expectEq(t, "has a path", e.has(shm.FModPath), tc.path != "")
			if tc.path != "" {
				expectStr(t, e, shm.FModPath, "path", tc.path)
			}
			if e.has(shm.FModName) {
				t.Errorf("a name for junk: %v", e)
			}
		})
	}

	// connect sits below the syscall layer: an AArch32 connect is the
	// same record as a 64-bit one, with no compat mark (as on x86's
	// 32-bit entries).
	for _, tc := range []struct {
		name   string
		remote netip.AddrPort
		want   syscall.Errno
	}{
		{"connect", listen(t, "tcp4", "127.0.0.1:0"), 0},
		{"connect refused", closedPort(t, "tcp4", "127.0.0.1:0"), unix.ECONNREFUSED},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, nil, "c", strconv.Itoa(int(tc.remote.Port())))
			if r.errno != tc.want {
				t.Fatalf("AArch32 connect to %v: %v, want %v", tc.remote, r.errno, tc.want)
			}
			e := s.find("AArch32 connect", func(e *event) bool {
				return e.Hdr.Type == shm.EvConnect && int(e.Tgid) == r.pid &&
					shm.RecFlags(e.Hdr.Flags)&shm.RFRestart == 0
			})
			check(t, e, r, false)
			expectEq(t, "flags", shm.RecFlags(e.Hdr.Flags)&(shm.RFFastOpen|shm.RFNoResult), 0)
			ci := connectInfo(t, e)
			expectEq(t, "fd", ci.FD, 3)
			expectEq(t, "family", int(ci.Family), unix.AF_INET)
			expectEq(t, "protocol", ci.Protocol, unix.IPPROTO_TCP)
			expectEq(t, "remote", netip.AddrPortFrom(addrOf(ci.Family, ci.RemoteAddr), ci.RemotePort), tc.remote)
			if tc.want == 0 {
				expectEq(t, "local address", addrOf(ci.Family, ci.LocalAddr), tc.remote.Addr())
				if ci.LocalPort == 0 {
					t.Errorf("local port 0 after a connect: %v", e)
				}
			}
		})
	}
}
