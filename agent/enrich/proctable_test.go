// SPDX-License-Identifier: GPL-2.0

package enrich

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smith/agent/decode"
	"smith/agent/encode"
	"smith/internal/testfs"
)

// A fake /proc: boot at bootOffset, so a start of `ticks` is
// bootOffset + ticks * 10 ms in CLOCK_REALTIME.
const bootOffset = int64(1_700_000_000_000_000_000)

func tickTime(ticks uint64) uint64 { return uint64(bootOffset) + ticks*uint64(10*time.Millisecond) }

func fakeProc(t *testing.T, dir string, pid, ppid uint32, ticks uint64, exe, cmdline string) {
	t.Helper()
	d := filepath.Join(dir, fmt.Sprint(pid))
	os.RemoveAll(d)
	// comm with a space and a ')' as the kernel allows.
	stat := fmt.Sprintf("%d (a b) c) S %d %d 0 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 %d 1000 100\n", pid, ppid, pid, ticks)
	testfs.WriteFile(t, filepath.Join(d, "stat"), stat)
	testfs.WriteFile(t, filepath.Join(d, "cmdline"), cmdline)
	if err := os.Symlink(exe, filepath.Join(d, "exe")); err != nil {
		t.Fatal(err)
	}
}

type fakeClock struct{ ns int64 }

func (c *fakeClock) now() int64              { return c.ns }
func (c *fakeClock) advance(d time.Duration) { c.ns += int64(d) }

func testTable(t *testing.T, dir string, max int) (*procTable, *fakeClock) {
	p := newProcTable(dir, max)
	clk := &fakeClock{ns: 1}
	p.now, p.bootOffset = clk.now, bootOffset
	p.scan()
	return p, clk
}

func execOf(pid, ppid uint32, at uint64, exe, argv string) *decode.Event {
	ev := &decode.Event{Type: decode.TypeExecve, TimeNs: at, Pid: pid, Tgid: pid, Ppid: ppid}
	ev.Fields[decode.FieldExe] = decode.Field{Present: true, Value: []byte(exe)}
	ev.Fields[decode.FieldArgv] = decode.Field{Present: true, Value: []byte(argv)}
	return ev
}

func chain(a []encode.Ancestor) string {
	var parts []string
	for _, x := range a {
		parts = append(parts, fmt.Sprintf("%d:%s@%d", x.Pid, x.Exe, x.StartNs))
	}
	return strings.Join(parts, " ")
}

func TestProcessTableAncestry(t *testing.T) {
	dir := t.TempDir()
	fakeProc(t, dir, 1, 0, 10, "/sbin/init", "/sbin/init\x00")
	fakeProc(t, dir, 100, 1, 500, "/usr/sbin/sshd", "sshd: alice\x00")
	fakeProc(t, dir, 200, 100, 600, "/bin/bash", "-bash\x00")
	p, clk := testTable(t, dir, 64)
	if len(p.m) != 3 {
		t.Fatalf("scan found %d processes, want 3", len(p.m))
	}
	t0 := tickTime(1000)
	// bash (200) runs sh (300), which runs curl (400): each exec's
	// ancestry is taken before the exec enters the table.
	sh := execOf(300, 200, t0, "/bin/sh", "sh\x00-c\x00curl x\x00")
	got := chain(p.ancestry(nil, sh, 4))
	want := fmt.Sprintf("200:/bin/bash@%d 100:/usr/sbin/sshd@%d 1:/sbin/init@%d", tickTime(600), tickTime(500), tickTime(10))
	if got != want {
		t.Fatalf("sh's ancestry %q, want %q", got, want)
	}
	p.exec(sh)
	clk.advance(time.Millisecond)
	curl := execOf(400, 300, t0+1e6, "/usr/bin/curl", "curl\x00x\x00")
	a := p.ancestry(nil, curl, 4)
	if got, want := chain(a), fmt.Sprintf("300:/bin/sh@%d ", t0)+strings.Join(strings.Fields(want)[:3], " "); got != want {
		t.Fatalf("curl's ancestry %q, want %q", got, want)
	}
	if string(a[0].Args) != "sh\x00-c\x00curl x\x00" || string(a[1].Args) != "" {
		t.Errorf("parent args %q, grandparent's %q (only the parent's are kept)", a[0].Args, a[1].Args)
	}
	// Depth bounds the chain.
	if n := len(p.ancestry(nil, curl, 2)); n != 2 {
		t.Errorf("depth 2 gave %d ancestors", n)
	}
}

// A pid taken by another process (one that never exec'd, so only /proc
// shows it) is detected by its later start time; an event from before
// the reuse still gets the old process.
func TestProcessTablePidReuse(t *testing.T) {
	dir := t.TempDir()
	fakeProc(t, dir, 1, 0, 10, "/sbin/init", "init\x00")
	fakeProc(t, dir, 200, 1, 600, "/bin/bash", "bash\x00")
	p, clk := testTable(t, dir, 64)
	// bash exits; a python forked by init takes pid 200 at tick 2000.
	fakeProc(t, dir, 200, 1, 2000, "/usr/bin/python3", "python3\x00")
	clk.advance(2 * verifyEvery)
	before := execOf(300, 200, tickTime(1500), "/bin/ls", "ls\x00")
	if a := p.ancestry(nil, before, 1); chain(a) != fmt.Sprintf("200:/bin/bash@%d", tickTime(600)) {
		t.Errorf("event before the reuse: %q, want bash", chain(a))
	}
	after := execOf(301, 200, tickTime(2500), "/bin/ls", "ls\x00")
	if a := p.ancestry(nil, after, 1); chain(a) != fmt.Sprintf("200:/usr/bin/python3@%d", tickTime(2000)) {
		t.Errorf("event after the reuse: %q, want python3", chain(a))
	}
	// Within verifyEvery of the check the table answers without /proc:
	// remove the fake process, the answer stays.
	os.RemoveAll(filepath.Join(dir, "200"))
	if a := p.ancestry(nil, after, 1); len(a) != 1 || a[0].Exe != "/usr/bin/python3" {
		t.Errorf("cached answer: %q", chain(a))
	}
	// A process the table never heard of that started after the event
	// is not its parent: unknown, not wrong.
	fakeProc(t, dir, 500, 1, 9000, "/bin/late", "late\x00")
	if a := p.ancestry(nil, execOf(600, 500, tickTime(8000), "/bin/x", "x\x00"), 1); len(a) != 0 {
		t.Errorf("parent started after the event reported: %q", chain(a))
	}
}

// An event read after its parent exec'd again: the table knows only the
// later image, and says nothing rather than name it.
func TestProcessTableLaterImage(t *testing.T) {
	dir := t.TempDir()
	fakeProc(t, dir, 200, 1, 600, "/usr/bin/python3", "python3\x00")
	p, clk := testTable(t, dir, 64)
	p.exec(execOf(200, 1, tickTime(3000), "/usr/bin/python3", "python3\x00"))
	clk.advance(2 * verifyEvery)
	if a := p.ancestry(nil, execOf(300, 200, tickTime(2000), "/bin/ls", "ls\x00"), 1); len(a) != 0 {
		t.Errorf("event before the parent's exec: %q", chain(a))
	}
	if e := p.m[200]; e == nil || e.start != tickTime(3000) {
		t.Errorf("the exec's entry was replaced: %+v", e)
	}
}

func TestProcessTableAgesOutAndIsBounded(t *testing.T) {
	dir := t.TempDir()
	fakeProc(t, dir, 1, 0, 10, "/sbin/init", "init\x00")
	p, clk := testTable(t, dir, 64)
	t0 := tickTime(1000)
	for pid := uint32(1000); pid < 1010; pid++ {
		p.exec(execOf(pid, 1, t0, "/bin/true", "true\x00"))
	}
	if len(p.m) != 11 {
		t.Fatalf("%d entries, want 11", len(p.m))
	}
	// None of them is in /proc: the sweep marks them gone, and a
	// later sweep past the grace period removes them; init stays.
	for i := 0; i < 4; i++ {
		clk.advance(sweepEvery + goneGrace/2)
		p.tick()
	}
	if len(p.m) != 1 || p.m[1] == nil {
		t.Fatalf("after the sweeps: %d entries (init kept: %v)", len(p.m), p.m[1] != nil)
	}
	// The bound: 64 entries at most, whatever comes.
	for pid := uint32(2000); pid < 3000; pid++ {
		p.exec(execOf(pid, 1, t0, "/bin/true", strings.Repeat("a", 2000)))
		if len(p.m) > 64 {
			t.Fatalf("%d entries, bound 64", len(p.m))
		}
	}
	for _, e := range p.m {
		if len(e.args) > maxArgsBytes || (len(e.args) == maxArgsBytes && !e.argsTrunc) {
			t.Fatalf("args of %d bytes kept (truncated %v)", len(e.args), e.argsTrunc)
		}
	}
}

func TestParseStat(t *testing.T) {
	ppid, start, ok := parseStat([]byte("42 (x) y)) R 7 42 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 123 0 0\n"), 5)
	if !ok || ppid != 7 || start != 5+123*uint64(10*time.Millisecond) {
		t.Errorf("parseStat: ppid %d start %d ok %v", ppid, start, ok)
	}
	for _, bad := range []string{"", "42 (x", "42 (x) R 7", "42 (x) R z 42 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 123"} {
		if _, _, ok := parseStat([]byte(bad), 0); ok {
			t.Errorf("parseStat(%q) ok", bad)
		}
	}
}

// The real /proc: this test's own process has this test binary as
// its executable and the go tool (or a shell) as its parent.
func TestProcessTableRealProc(t *testing.T) {
	p := newProcTable("/proc", 1<<16)
	p.scan()
	self, _ := os.Executable()
	ev := &decode.Event{Type: decode.TypeConnect, TimeNs: uint64(time.Now().UnixNano()), Tgid: uint32(os.Getpid()), Ppid: uint32(os.Getppid())}
	a := p.ancestry(nil, ev, 4)
	if len(a) == 0 || a[0].Pid != uint32(os.Getppid()) || a[0].Exe == "" {
		t.Fatalf("ancestry of this test from /proc: %+v", a)
	}
	e := p.lookup(uint32(os.Getpid()), ev.TimeNs)
	if e == nil || e.exe != self {
		t.Fatalf("this process in the table: %+v, want exe %s", e, self)
	}
}
