//go:build vmtest

package hooktest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"smith/shm"
)

// TestCwdUnderRenames: execs whose working directory another goroutine
// renames back and forth, so that the path walk meets renames: d_path()'s
// retry, and on PREEMPT_RT the module's own lockless walk with bounded
// retries (record.c, smith_d_path()). Every exec's cwd must be one of the
// directory's two names, or an empty field flagged truncated (the retries
// ran out; counted in the meta page's truncated), never a mix; the kernel
// log must stay clean of "sleeping function called from invalid context"
// and the like (scripts/vm/run.sh fails the scenario on those).
func TestCwdUnderRenames(t *testing.T) {
	s := open(t)
	base := t.TempDir()
	a, b := filepath.Join(base, "a"), filepath.Join(base, "b")
	if err := os.Mkdir(a, 0o755); err != nil {
		t.Fatal(err)
	}
	// The children chdir through the directory's descriptor, whatever
	// its name is at that moment (the fd is the parent's, inherited).
	dir, err := os.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	viaFD := fmt.Sprintf("/proc/self/fd/%d", dir.Fd())
	var stop atomic.Bool
	var renames atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		from, to := a, b
		for !stop.Load() {
			if os.Rename(from, to) == nil {
				renames.Add(1)
				from, to = to, from
			}
		}
	}()
	defer func() {
		stop.Store(true)
		wg.Wait()
	}()

	truncBefore := s.stats().Truncated
	const execs = 60
	full, truncated := 0, 0
	for i := 0; i < execs; i++ {
		cmd := &exec.Cmd{Path: truePath, Args: []string{"true"}, Dir: viaFD}
		if err := cmd.Start(); err != nil {
			t.Fatalf("exec %d: %v", i, err)
		}
		_ = cmd.Wait()
		pid := cmd.Process.Pid
		e := s.find("exec under renames", func(e *event) bool {
			return e.Hdr.Type == shm.EvExecve && int(e.Tgid) == pid
		})
		f, ok := e.fields[shm.FCwd]
		switch cwd := string(f.val); {
		case !ok:
			t.Fatalf("exec %d: no cwd field", i)
		case cwd == a || cwd == b:
			full++
		case cwd == "" && f.flags&shm.FFTruncated != 0:
			truncated++
		default:
			t.Fatalf("exec %d: cwd %q (flags %#x), want %q or %q, or empty and truncated", i, cwd, f.flags, a, b)
		}
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d execs during %d renames: %d full cwd paths, %d given up (truncated)", execs, renames.Load(), full, truncated)
	if renames.Load() == 0 {
		t.Fatal("no rename ran during the execs")
	}
	if full == 0 {
		t.Fatal("no exec under renames got its cwd")
	}
	if d := s.stats().Truncated - truncBefore; d < uint64(truncated) {
		t.Fatalf("meta page truncated grew by %d, fewer than the %d truncated cwd fields seen", d, truncated)
	}
}

// TestExecPathsFollowRename: the module keeps the paths it built last on
// each CPU (record.c, the path cache) and gives them to the next exec of
// the same program in the same directory with the same files, built in
// place in the ring.  After the working directory is renamed (which moves
// the file on stdout with it: the file's own dentry does not change), the
// next exec's cwd and stdout must be the new names, and after renaming
// back the old ones again.
func TestExecPathsFollowRename(t *testing.T) {
	s := open(t)
	base := t.TempDir()
	a, b := filepath.Join(base, "a"), filepath.Join(base, "b")
	if err := os.Mkdir(a, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(filepath.Join(a, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	run := func(what, dir string) {
		t.Helper()
		cmd := &exec.Cmd{Path: truePath, Args: []string{"true"}, Dir: dir, Stdout: out}
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		pid := cmd.Process.Pid
		e := s.find(what, func(e *event) bool {
			return e.Hdr.Type == shm.EvExecve && int(e.Tgid) == pid
		})
		if cwd, stdout := e.str(shm.FCwd), e.str(shm.FStdout); cwd != dir || stdout != filepath.Join(dir, "out") {
			t.Fatalf("%s: cwd %q, stdout %q; want %q, %q", what, cwd, stdout, dir, filepath.Join(dir, "out"))
		}
	}
	for i := range 3 {
		run(fmt.Sprintf("exec %d in %s", i, a), a)
	}
	if err := os.Rename(a, b); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		run(fmt.Sprintf("exec %d after renaming to %s", i, b), b)
	}
	if err := os.Rename(b, a); err != nil {
		t.Fatal(err)
	}
	run("exec after renaming back", a)
}
