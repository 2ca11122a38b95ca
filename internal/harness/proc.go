// SPDX-License-Identifier: GPL-2.0

package harness

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

// ProcCPU is a process's user + system CPU time in seconds
// (/proc/PID/stat).
func ProcCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("CPU time: %w", err)
	}
	// Fields after the command name, which is in parentheses and may
	// hold spaces: state is field 3, utime 14, stime 15.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("CPU time: short /proc/%d/stat", pid)
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("CPU time: %w", err)
	}
	return float64(ut+st) / clockTicks, nil
}

// Memory is a process's resident set now and at its peak, in MiB.
type Memory struct {
	RSSMiB, PeakMiB float64
}

// ProcMemory reads VmRSS and VmHWM of /proc/PID/status.
func ProcMemory(pid int) (Memory, error) {
	var m Memory
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m, fmt.Errorf("RSS: %w", err)
	}
	seen := 0
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		var p *float64
		switch k {
		case "VmRSS":
			p = &m.RSSMiB
		case "VmHWM":
			p = &m.PeakMiB
		default:
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		if err != nil {
			return m, fmt.Errorf("RSS: %q: %w", line, err)
		}
		*p = kb / 1024
		seen++
	}
	if seen != 2 {
		return m, fmt.Errorf("RSS: no VmRSS and VmHWM in /proc/%d/status", pid)
	}
	return m, nil
}

// ProcWakeups sums the voluntary context switches of every thread of a
// process: each is one sleep that ended in a wake-up.
func ProcWakeups(pid int) (uint64, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil {
		return 0, fmt.Errorf("wake-ups: %w", err)
	}
	if len(tasks) == 0 {
		return 0, fmt.Errorf("wake-ups: no process %d", pid)
	}
	var sum uint64
	for _, t := range tasks {
		raw, err := os.ReadFile(t)
		if err != nil {
			continue // a thread that just exited
		}
		for _, line := range strings.Split(string(raw), "\n") {
			if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
				n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
				if err != nil {
					return 0, fmt.Errorf("wake-ups: %s: %q: %w", t, line, err)
				}
				sum += n
			}
		}
	}
	return sum, nil
}

// FreePort is a TCP port on 127.0.0.1 that nothing listened on a moment
// ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
