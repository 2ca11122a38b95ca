// SPDX-License-Identifier: GPL-2.0

package enrich

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"smith/agent/decode"
	"smith/agent/encode"
)

// The process table: what the agent knows of each live process (its
// executable, argv, parent and start), so that every event can carry its
// ancestry although the kernel record holds only the parent's pid.
//
// It is fed by exec events (the record's time is the start of the new
// image) and by one /proc scan at start; a pid the table does not know
// is read from /proc when an event needs it.  The kernel record has no
// process start time, so two sources are compared to detect pid reuse:
// the exec event's time, and /proc/PID/stat's starttime (clock ticks
// since boot, 10 ms, turned into CLOCK_REALTIME).  A process's /proc
// start is its fork, at or before any exec of it: a /proc start later
// than what the table holds is another process that got the same pid.
//
// Bounds: at most maxEntries processes, each holding at most
// maxExeBytes of executable path and maxArgsBytes of argv (cut, and
// marked), so at most maxEntries * (maxExeBytes + maxArgsBytes + 128)
// bytes.
const (
	maxExeBytes  = 1024
	maxArgsBytes = 512
	// verifyEvery: an entry used by an event is checked against /proc at
	// most this often (one read of /proc/PID/stat).
	verifyEvery = time.Second
	// sweepEvery: how often every entry is checked, so that exited
	// processes leave the table; sweepChunk bounds the work per event.
	sweepEvery = 30 * time.Second
	sweepChunk = 256
	// goneGrace: an exited process stays this long, for the events of its
	// children still in the ring.
	goneGrace = time.Minute
	// startSlack absorbs /proc's 10 ms start-time resolution.
	startSlack = uint64(20 * time.Millisecond)
)

type procEntry struct {
	ppid      uint32
	start     uint64 // CLOCK_REALTIME ns: the exec seen, or /proc's start
	exe       string
	args      []byte // never modified once stored
	argsTrunc bool
	missing   bool   // /proc had no such process (a negative entry)
	gone      bool   // exited, or its pid now belongs to a later process
	until     uint64 // when gone: the start of the process that took the pid (0: unknown)
	checked   int64  // clock ns of the last /proc check
}

type procTable struct {
	procDir    string
	max        int
	m          map[uint32]*procEntry
	t0         time.Time    // the table's clock starts here
	now        func() int64 // monotonic ns since t0 (tests replace it)
	bootOffset int64        // CLOCK_REALTIME - CLOCK_BOOTTIME, ns
	nextSweep  int64
	sweep      []uint32 // pids still to check in the current sweep
}

func newProcTable(procDir string, max int) *procTable {
	p := &procTable{procDir: procDir, max: max, m: make(map[uint32]*procEntry), t0: time.Now()}
	p.now = func() int64 { return p.since(time.Now()) }
	var rt, bt unix.Timespec
	if unix.ClockGettime(unix.CLOCK_REALTIME, &rt) == nil && unix.ClockGettime(unix.CLOCK_BOOTTIME, &bt) == nil {
		p.bootOffset = rt.Nano() - bt.Nano()
	}
	return p
}

// scan fills the table from /proc (once, at start).
func (p *procTable) scan() {
	ents, err := os.ReadDir(p.procDir)
	if err != nil {
		return
	}
	for _, d := range ents {
		pid, err := strconv.ParseUint(d.Name(), 10, 32)
		if err != nil || len(p.m) >= p.max {
			continue
		}
		if e := p.load(uint32(pid)); e != nil {
			p.m[uint32(pid)] = e
		}
	}
	p.nextSweep = p.now() + int64(sweepEvery)
}

// stat reads ppid and start of pid from /proc/PID/stat.
func (p *procTable) stat(pid uint32) (ppid uint32, start uint64, ok bool) {
	var buf [512]byte
	f, err := os.Open(filepath.Join(p.procDir, strconv.FormatUint(uint64(pid), 10), "stat"))
	if err != nil {
		return 0, 0, false
	}
	n, _ := f.Read(buf[:])
	f.Close()
	return parseStat(buf[:n], p.bootOffset)
}

// parseStat reads fields 4 (ppid) and 22 (starttime) of a /proc/PID/stat
// line; the command name in parentheses may hold spaces and ')'.
func parseStat(b []byte, bootOffset int64) (ppid uint32, start uint64, ok bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	var fields [20][]byte
	n := 0
	for _, f := range bytes.Fields(b[i+1:]) {
		if n == len(fields) {
			break
		}
		fields[n] = f
		n++
	}
	if n < 20 {
		return 0, 0, false
	}
	pp, err1 := strconv.ParseUint(string(fields[1]), 10, 32)
	ticks, err2 := strconv.ParseUint(string(fields[19]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	// USER_HZ is 100 on every Linux architecture.
	return uint32(pp), uint64(bootOffset) + ticks*uint64(10*time.Millisecond), true
}

// load reads a process from /proc; nil when it is not there.
func (p *procTable) load(pid uint32) *procEntry {
	ppid, start, ok := p.stat(pid)
	if !ok {
		return nil
	}
	dir := filepath.Join(p.procDir, strconv.FormatUint(uint64(pid), 10))
	e := &procEntry{ppid: ppid, start: start, checked: p.now()}
	if exe, err := os.Readlink(filepath.Join(dir, "exe")); err == nil {
		e.exe = capString(exe, maxExeBytes)
	}
	if raw, err := readLimited(filepath.Join(dir, "cmdline"), maxArgsBytes+1); err == nil {
		e.args, e.argsTrunc = capArgs(raw)
	}
	return e
}

func capString(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func capArgs(b []byte) ([]byte, bool) {
	if len(b) > maxArgsBytes {
		return bytes.Clone(b[:maxArgsBytes]), true
	}
	return bytes.Clone(b), false
}

// since is the table's clock (p.now) at the reading t of time.Now: the
// Enricher reads the clock once per event and gives it here.
func (p *procTable) since(t time.Time) int64 { return int64(t.Sub(p.t0)) }

// exec records the new image of ev's process (a successful execve).
func (p *procTable) exec(ev *decode.Event) { p.execAt(ev, p.now()) }

// execAt is exec with the clock read by the caller.
func (p *procTable) execAt(ev *decode.Event, now int64) {
	e := &procEntry{ppid: ev.Ppid, start: ev.TimeNs, checked: now}
	if f := ev.Fields[decode.FieldExe]; f.Present {
		e.exe = string(f.Value[:min(len(f.Value), maxExeBytes)])
	}
	if f := ev.Fields[decode.FieldArgv]; f.Present {
		e.args, e.argsTrunc = capArgs(f.Value)
		e.argsTrunc = e.argsTrunc || f.Flags&decode.FieldTruncated != 0
	}
	p.put(ev.Tgid, e)
}

func (p *procTable) put(pid uint32, e *procEntry) {
	if _, ok := p.m[pid]; !ok && len(p.m) >= p.max {
		p.evict()
	}
	p.m[pid] = e
}

// evict makes room: exited and missing entries first, then arbitrary
// ones (a live process dropped is read from /proc again when needed).
func (p *procTable) evict() {
	for pid, e := range p.m {
		if e.gone || e.missing {
			delete(p.m, pid)
		}
	}
	for pid := range p.m {
		if len(p.m) < p.max-p.max/4 {
			break
		}
		delete(p.m, pid)
	}
	p.sweep = p.sweep[:0]
}

// lookup returns the process that had pid at time at (CLOCK_REALTIME
// ns), or nil when the table cannot tell.  It never answers with a
// process known to have started after at, nor with one whose pid was
// taken by another process before at.
func (p *procTable) lookup(pid uint32, at uint64) *procEntry { return p.lookupAt(pid, at, p.now()) }

// lookupAt is lookup with the clock (p.now) read by the caller.
func (p *procTable) lookupAt(pid uint32, at uint64, now int64) *procEntry {
	e := p.m[pid]
	if e != nil && now-e.checked < int64(verifyEvery) && (e.until == 0 || at < e.until) {
		if e.missing || e.start > at+startSlack {
			return nil
		}
		return e
	}
	_, start, ok := p.stat(pid)
	if e != nil && !e.missing {
		p.verified(e, start, ok, now)
		if e.start <= at+startSlack && (e.until == 0 || at < e.until) {
			return e
		}
		if !e.gone {
			// The same process, but the table knows only an image
			// it exec'd after at: /proc shows that one too.
			return nil
		}
	}
	if ok && start <= at+startSlack {
		// A process the table does not know (or a later holder of
		// the pid): read it.
		if ne := p.load(pid); ne != nil && ne.start <= at+startSlack {
			p.put(pid, ne)
			return ne
		}
		return nil
	}
	if e == nil || e.missing {
		p.put(pid, &procEntry{missing: true, checked: now})
	}
	return nil
}

// verified records what /proc said of e's pid: gone (!ok), the same
// process, or a later one (started at start) that took the pid.
func (p *procTable) verified(e *procEntry, start uint64, ok bool, now int64) {
	e.checked = now
	switch {
	case !ok:
		e.gone = true
	case start > e.start+startSlack:
		e.gone = true
		if e.until == 0 || start < e.until {
			e.until = start
		}
	}
}

// ancestry appends up to depth ancestors of ev's process to dst.
func (p *procTable) ancestry(dst []encode.Ancestor, ev *decode.Event, depth int) []encode.Ancestor {
	return p.ancestryAt(dst, ev, depth, p.now())
}

// ancestryAt is ancestry with the clock read by the caller (once per
// event, not once per ancestor).
func (p *procTable) ancestryAt(dst []encode.Ancestor, ev *decode.Event, depth int, now int64) []encode.Ancestor {
	pid, at := ev.Ppid, ev.TimeNs
	for d := 0; d < depth && pid != 0; d++ {
		e := p.lookupAt(pid, at, now)
		if e == nil {
			break
		}
		a := encode.Ancestor{Pid: pid, StartNs: e.start, Exe: e.exe}
		if d == 0 {
			a.Args, a.ArgsTruncated = e.args, e.argsTrunc
		}
		dst = append(dst, a)
		if e.ppid == pid {
			break
		}
		pid, at = e.ppid, e.start
	}
	return dst
}

// tick ages the table: every sweepEvery, each entry is checked against
// /proc (sweepChunk per call), and exited ones leave after goneGrace.
func (p *procTable) tick() { p.tickAt(p.now()) }

// tickAt is tick with the clock read by the caller.
func (p *procTable) tickAt(now int64) {
	if len(p.sweep) == 0 {
		if now < p.nextSweep {
			return
		}
		p.nextSweep = now + int64(sweepEvery)
		for pid := range p.m {
			p.sweep = append(p.sweep, pid)
		}
	}
	n := min(sweepChunk, len(p.sweep))
	for _, pid := range p.sweep[len(p.sweep)-n:] {
		e := p.m[pid]
		if e == nil {
			continue
		}
		if e.gone || e.missing {
			if now-e.checked > int64(goneGrace) {
				delete(p.m, pid)
			}
			continue
		}
		if now-e.checked < int64(sweepEvery) {
			continue
		}
		_, start, ok := p.stat(pid)
		p.verified(e, start, ok, now)
	}
	p.sweep = p.sweep[:len(p.sweep)-n]
}
