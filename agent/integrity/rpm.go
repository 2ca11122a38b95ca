// SPDX-License-Identifier: GPL-2.0

package integrity

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// rpmDatabase reports whether the root has an rpm database with files
// in it and an rpm program to read it.
func rpmDatabase(opt *Options) bool {
	if opt.RPM == "" {
		p, err := exec.LookPath("rpm")
		if err != nil {
			return false
		}
		opt.RPM = p
	}
	for _, d := range []string{"var/lib/rpm", "usr/lib/sysimage/rpm"} {
		if ents, err := os.ReadDir(opt.path(d)); err == nil && len(ents) > 0 {
			return true
		}
	}
	return false
}

// rpmFlags names the columns of `rpm -V` output ("S.5....T.").
var rpmFlags = []struct {
	c    byte
	what string
}{
	{'S', "size"}, {'M', "mode"}, {'5', "digest"}, {'D', "device"}, {'L', "link"},
	{'U', "owner"}, {'G', "group"}, {'T', "mtime"}, {'P', "capabilities"},
}

// parseRPMVerify reads `rpm -Va` lines: "S.5....T.  c /etc/foo",
// "missing   c /etc/bar".  ok is false for lines that are not results.
func parseRPMVerify(line string) (c Change, ok bool) {
	if rest, found := strings.CutPrefix(line, "missing"); found {
		f := strings.Fields(rest)
		if len(f) == 0 {
			return c, false
		}
		c.What, c.Path = "missing", f[len(f)-1]
		c.Config = len(f) == 2 && f[0] == "c"
		return c, strings.HasPrefix(c.Path, "/")
	}
	if len(line) < 10 || line[9] != ' ' {
		return c, false
	}
	var what []string
	for i, fl := range rpmFlags {
		switch line[i] {
		case fl.c, '?': // '?': the test could not be done (unreadable)
			what = append(what, fl.what)
		case '.':
		default:
			return c, false
		}
	}
	f := strings.Fields(line[9:])
	if len(f) == 0 || len(what) == 0 {
		return c, false
	}
	c.What, c.Path = strings.Join(what, ","), f[len(f)-1]
	c.Config = len(f) == 2 && f[0] == "c"
	return c, strings.HasPrefix(c.Path, "/")
}

// runRPM runs rpm directly (no shell) at the lowest CPU and I/O
// priority: its own reading is not under the agent's rate limit.
func runRPM(ctx context.Context, opt *Options, args ...string) ([]byte, error) {
	if opt.Root != "" && opt.Root != "/" {
		args = append([]string{"--root", opt.Root}, args...)
	}
	cmd := exec.CommandContext(ctx, opt.RPM, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", opt.RPM, err)
	}
	pid := cmd.Process.Pid
	_ = unix.Setpriority(unix.PRIO_PROCESS, pid, 19)
	// ioprio_set(IOPRIO_WHO_PROCESS, pid, IOPRIO_CLASS_IDLE << 13)
	_, _, _ = syscall.Syscall(unix.SYS_IOPRIO_SET, 1, uintptr(pid), 3<<13)
	err := cmd.Wait()
	// rpm -V exits 1 when a file differs: that is a result, not a failure.
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 && ctx.Err() == nil {
		err = nil
	}
	if err != nil {
		return out.Bytes(), fmt.Errorf("%s %s: %w: %s", opt.RPM, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}

func checkRPM(ctx context.Context, opt *Options) (Result, error) {
	res := Result{Manager: "rpm"}
	out, err := runRPM(ctx, opt, "-Va")
	if ctx.Err() != nil {
		res.Incomplete = true
		return res, nil
	}
	if err != nil {
		return res, err
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if c, ok := parseRPMVerify(sc.Text()); ok {
			res.add(opt, c)
		}
	}
	// Which package owns each reported file (one rpm -qf for all).
	if len(res.Changes) > 0 {
		args := []string{"-qf", "--qf", "%{NAME}\n", "--"}
		for _, c := range res.Changes {
			args = append(args, c.Path)
		}
		if owners, err := runRPM(ctx, opt, args...); err == nil {
			lines := strings.Split(strings.TrimRight(string(owners), "\n"), "\n")
			if len(lines) == len(res.Changes) {
				for i := range res.Changes {
					res.Changes[i].Package = lines[i]
				}
			}
		}
	}
	if pk, err := runRPM(ctx, opt, "-qa", "--qf", "x\n"); err == nil {
		res.Packages = bytes.Count(pk, []byte("\n"))
	}
	return res, nil
}
