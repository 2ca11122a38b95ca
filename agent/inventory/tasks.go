// SPDX-License-Identifier: GPL-2.0

// Package inventory runs the asset collections the console asks an agent
// for (heartbeat/api task kinds): listening sockets, users, crontabs,
// packages, the packages' file integrity (agent/integrity) and the
// module's and agent's status.  It reads /proc and files under a root;
// the package list is its one external command (dpkg-query or rpm).
// agent/heartbeat runs it when a heartbeat's answer carries tasks.
package inventory

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"smith/agent/encode"
	"smith/heartbeat/api"
)

// Tasks runs the console's asset collections by reading /proc and files;
// the package list is the one external command (dpkg-query or rpm).
type Tasks struct {
	Root   string // prefix for every path read ("" or "/"; tests use a tree)
	Status func() (module, agent [][2]string)
	// IntegrityRate bounds the bytes per second file_integrity reads.
	IntegrityRate int64
}

func (t *Tasks) path(p string) string { return filepath.Join(t.Root, p) }

// maxItems bounds one task's events.
const maxItems = 10000

// Run collects one kind and returns its items, a one-line summary and a
// few facts.
func (t *Tasks) Run(ctx context.Context, kind api.TaskKind) ([]encode.TaskItem, string, map[string]string, error) {
	switch kind {
	case api.TaskListeningSockets:
		return t.sockets()
	case api.TaskUsers:
		return t.users()
	case api.TaskCrontabs:
		return t.crontabs()
	case api.TaskPackages:
		return t.packages(ctx)
	case api.TaskFileIntegrity:
		return t.integrity(ctx)
	case api.TaskModuleStatus, api.TaskAgentStatus:
		mod, agent := t.Status()
		f := mod
		if kind == api.TaskAgentStatus {
			f = agent
		}
		facts := map[string]string{}
		var parts []string
		for _, kv := range f {
			facts[kv[0]] = kv[1]
			parts = append(parts, kv[0]+"="+kv[1])
		}
		return []encode.TaskItem{{Fields: f}}, strings.Join(parts, " "), facts, nil
	}
	return nil, "", nil, fmt.Errorf("unknown task kind %q", kind)
}

func itemOf(kv ...string) encode.TaskItem {
	it := encode.TaskItem{}
	for i := 0; i+1 < len(kv); i += 2 {
		it.Fields = append(it.Fields, [2]string{kv[i], kv[i+1]})
	}
	return it
}

func summarize(items []string) string {
	s := strings.Join(items, ", ")
	if len(s) > api.MaxSummaryLen {
		s = api.Clip(s, api.MaxSummaryLen-3) + "..."
	}
	return s
}

// sockets lists TCP sockets in LISTEN and bound UDP sockets with their
// owning process (found through the socket inodes in /proc/*/fd).
func (t *Tasks) sockets() ([]encode.TaskItem, string, map[string]string, error) {
	owners := t.socketOwners()
	var items []encode.TaskItem
	var sum []string
	for _, src := range []struct{ file, proto, state string }{
		{"proc/net/tcp", "tcp", "0A"}, {"proc/net/tcp6", "tcp6", "0A"},
		{"proc/net/udp", "udp", "07"}, {"proc/net/udp6", "udp6", "07"},
	} {
		raw, err := os.ReadFile(t.path(src.file))
		if err != nil {
			continue
		}
		lines := strings.Split(string(raw), "\n")
		for _, line := range lines[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != src.state {
				continue
			}
			addr, port, ok := parseProcAddr(f[1])
			if !ok {
				continue
			}
			inode := f[9]
			o := owners[inode]
			items = append(items, itemOf("proto", src.proto, "local_ip", addr, "local_port", strconv.Itoa(port),
				"inode", inode, "pid", o[0], "comm", o[1], "uid", f[7]))
			sum = append(sum, fmt.Sprintf("%s %s %s", src.proto, netip.AddrPortFrom(netip.MustParseAddr(addr), uint16(port)), o[1]))
			if len(items) >= maxItems {
				break
			}
		}
	}
	return items, summarize(sum), map[string]string{"count": strconv.Itoa(len(items))}, nil
}

// parseProcAddr parses "0100007F:0016" (IPv4) or the 32-digit IPv6 form,
// each 32-bit word in host (little-endian) order.
func parseProcAddr(s string) (string, int, bool) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return "", 0, false
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return "", 0, false
	}
	raw, err := hex.DecodeString(h)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return "", 0, false
	}
	for i := 0; i < len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	a, _ := netip.AddrFromSlice(raw)
	return a.String(), int(port), true
}

// socketOwners maps socket inode -> (pid, comm), bounded by the number of
// processes scanned.
func (t *Tasks) socketOwners() map[string][2]string {
	owners := map[string][2]string{}
	procs, _ := os.ReadDir(t.path("proc"))
	for i, p := range procs {
		if i > 100000 {
			break
		}
		pid := p.Name()
		if _, err := strconv.Atoi(pid); err != nil {
			continue
		}
		fds, err := os.ReadDir(t.path(filepath.Join("proc", pid, "fd")))
		if err != nil {
			continue
		}
		var comm string
		for _, fd := range fds {
			link, err := os.Readlink(t.path(filepath.Join("proc", pid, "fd", fd.Name())))
			if err != nil {
				continue
			}
			if ino, ok := strings.CutPrefix(link, "socket:["); ok {
				if comm == "" {
					c, _ := os.ReadFile(t.path(filepath.Join("proc", pid, "comm")))
					comm = strings.TrimSpace(string(c))
				}
				owners[strings.TrimSuffix(ino, "]")] = [2]string{pid, comm}
			}
		}
	}
	return owners
}

func (t *Tasks) users() ([]encode.TaskItem, string, map[string]string, error) {
	raw, err := os.ReadFile(t.path("etc/passwd"))
	if err != nil {
		return nil, "", nil, fmt.Errorf("read passwd: %w", err)
	}
	locked := t.shadowLocked()
	var items []encode.TaskItem
	var sum []string
	login := 0
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 7 || strings.HasPrefix(line, "#") {
			continue
		}
		it := itemOf("name", f[0], "uid", f[2], "gid", f[3], "gecos", f[4], "home", f[5], "shell", f[6])
		if l, ok := locked[f[0]]; ok {
			it.Fields = append(it.Fields, [2]string{"password_locked", strconv.FormatBool(l)})
		}
		items = append(items, it)
		if !strings.HasSuffix(f[6], "nologin") && !strings.HasSuffix(f[6], "false") {
			login++
			sum = append(sum, f[0])
		}
		if len(items) >= maxItems {
			break
		}
	}
	return items, "login shells: " + summarize(sum), map[string]string{"users": strconv.Itoa(len(items)), "login_shells": strconv.Itoa(login)}, nil
}

// shadowLocked reads which accounts have no usable password; empty when
// /etc/shadow is not readable.
func (t *Tasks) shadowLocked() map[string]bool {
	m := map[string]bool{}
	raw, err := os.ReadFile(t.path("etc/shadow"))
	if err != nil {
		return m
	}
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 2 {
			m[f[0]] = f[1] == "" || strings.HasPrefix(f[1], "!") || strings.HasPrefix(f[1], "*")
		}
	}
	return m
}

func (t *Tasks) crontabs() ([]encode.TaskItem, string, map[string]string, error) {
	var files []string
	files = append(files, t.path("etc/crontab"))
	for _, g := range []string{"etc/cron.d/*", "var/spool/cron/crontabs/*", "var/spool/cron/*"} {
		m, _ := filepath.Glob(t.path(g))
		files = append(files, m...)
	}
	sort.Strings(files)
	var items []encode.TaskItem
	nfiles := 0
	for _, file := range files {
		st, err := os.Stat(file)
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		f, err := os.Open(file)
		if err != nil {
			continue
		}
		nfiles++
		sc := bufio.NewScanner(f)
		for n := 1; sc.Scan(); n++ {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			rel := strings.TrimPrefix(file, filepath.Clean(t.Root))
			items = append(items, itemOf("file", rel, "line", strconv.Itoa(n), "entry", line))
			if len(items) >= maxItems {
				break
			}
		}
		f.Close()
	}
	return items, fmt.Sprintf("%d entries in %d files", len(items), nfiles), map[string]string{"entries": strconv.Itoa(len(items))}, nil
}

// packages asks the package manager: dpkg-query on Debian-like hosts, rpm
// on RPM-based ones.
func (t *Tasks) packages(ctx context.Context) ([]encode.TaskItem, string, map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var cmd *exec.Cmd
	var manager string
	if p, err := exec.LookPath("dpkg-query"); err == nil {
		manager = "dpkg"
		cmd = exec.CommandContext(ctx, p, "-W", "-f", "${Package}\t${Version}\t${Architecture}\n")
	} else if p, err := exec.LookPath("rpm"); err == nil {
		manager = "rpm"
		cmd = exec.CommandContext(ctx, p, "-qa", "--qf", "%{NAME}\t%{VERSION}-%{RELEASE}\t%{ARCH}\n")
	} else {
		return nil, "", nil, fmt.Errorf("no package manager (dpkg-query or rpm) found")
	}
	out, err := cmd.Output()
	if err != nil {
		return nil, "", nil, fmt.Errorf("%s: %w", cmd.Path, err)
	}
	var items []encode.TaskItem
	for _, line := range bytes.Split(out, []byte("\n")) {
		f := strings.Split(string(line), "\t")
		if len(f) < 3 || f[0] == "" {
			continue
		}
		items = append(items, itemOf("package", f[0], "version", f[1], "arch", f[2], "manager", manager))
		if len(items) >= maxItems {
			break
		}
	}
	return items, fmt.Sprintf("%d packages (%s)", len(items), manager), map[string]string{"packages": strconv.Itoa(len(items)), "manager": manager}, nil
}
