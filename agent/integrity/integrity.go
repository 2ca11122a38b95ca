// SPDX-License-Identifier: GPL-2.0

// Package integrity verifies the installed packages' files against the
// package database (the seed's FileSystemIntegrityCheck): dpkg's md5sums
// on Debian and Ubuntu, `rpm -Va` on RPM systems.  It reads at most a
// given number of bytes per second and stops at its context's deadline,
// so a large host is not slowed.
package integrity

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"smith/agent/ratelimit"
)

// Options configure a check.
type Options struct {
	// Root prefixes every path ("" or "/" for the host; tests use a tree).
	Root string
	// Rate bounds the bytes read per second (0: unlimited).
	Rate int64
	// Packages restricts the dpkg check to these packages (nil: all).
	Packages []string
	// MaxChanges bounds the changes reported (default 10000); the
	// counts cover all of them.
	MaxChanges int
	// RPM is the rpm program ("" looks it up on PATH).
	RPM string

	limiter *ratelimit.Bytes // tests replace its clock
}

// Change is one file that differs from the package database.
type Change struct {
	Package string
	Path    string // absolute, as installed
	// What changed: "missing", or a comma-separated list of "digest",
	// "size", "mode", "owner", "group", "mtime", "link", "device",
	// "capabilities" (rpm tells all of these; dpkg records digests only).
	What     string
	Expected string // the database's digest (dpkg)
	Actual   string // the file's digest now (dpkg)
	Config   bool   // a configuration file (rpm's "c")
}

// Result is what a check found.
type Result struct {
	Manager  string // "dpkg" or "rpm"
	Packages int    // packages verified
	Files    int    // files verified
	Bytes    int64  // bytes read (dpkg)
	Changed  int    // changed files, all of them (Changes may hold fewer)
	Missing  int
	Errors   int // files that could not be read (permission, I/O)
	Changes  []Change
	// Incomplete: the deadline or cancellation stopped the check.
	Incomplete bool
}

// ErrNoDatabase: neither a dpkg nor an rpm database was found.
var ErrNoDatabase = errors.New("no package database (dpkg md5sums or rpm) found")

func (o *Options) path(p string) string { return filepath.Join(o.Root, p) }

// Check verifies the host's packages.  It returns a partial result with
// Incomplete set, and no error, when ctx ends first.
func Check(ctx context.Context, opt Options) (Result, error) {
	if opt.Root == "" {
		opt.Root = "/"
	}
	if opt.MaxChanges <= 0 {
		opt.MaxChanges = 10000
	}
	if opt.limiter == nil {
		opt.limiter = ratelimit.New(opt.Rate, 0)
	}
	sums, _ := filepath.Glob(opt.path("var/lib/dpkg/info/*.md5sums"))
	if len(sums) > 0 {
		return checkDpkg(ctx, &opt, sums)
	}
	if rpmDatabase(&opt) {
		return checkRPM(ctx, &opt)
	}
	return Result{}, ErrNoDatabase
}

func (r *Result) add(opt *Options, c Change) {
	r.Changed++
	if c.What == "missing" {
		r.Missing++
	}
	if len(r.Changes) < opt.MaxChanges {
		r.Changes = append(r.Changes, c)
	}
}

// diversions reads dpkg's diversions: a file diverted away from the
// package that ships it lives at another path.
func diversions(opt *Options) map[string][2]string {
	raw, err := os.ReadFile(opt.path("var/lib/dpkg/diversions"))
	if err != nil {
		return nil
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	m := make(map[string][2]string)
	for i := 0; i+2 < len(lines); i += 3 {
		// from, to, diverting package ("LOCAL" for dpkg-divert --local)
		m[lines[i]] = [2]string{lines[i+1], lines[i+2]}
	}
	return m
}

func checkDpkg(ctx context.Context, opt *Options, sums []string) (Result, error) {
	res := Result{Manager: "dpkg"}
	want := map[string]bool{}
	for _, p := range opt.Packages {
		want[p] = true
	}
	div := diversions(opt)
	sort.Strings(sums)
	buf := make([]byte, 64<<10)
	for _, file := range sums {
		pkg := strings.TrimSuffix(filepath.Base(file), ".md5sums")
		name, _, _ := strings.Cut(pkg, ":") // libc6:amd64
		if len(want) > 0 && !want[pkg] && !want[name] {
			continue
		}
		raw, err := os.ReadFile(file)
		if err != nil {
			res.Errors++
			continue
		}
		res.Packages++
		sc := bufio.NewScanner(bytes.NewReader(raw))
		for sc.Scan() {
			if ctx.Err() != nil {
				res.Incomplete = true
				return res, nil
			}
			// "<32 hex digits>  <path relative to />"
			sum, rel, ok := strings.Cut(sc.Text(), "  ")
			if !ok || len(sum) != 32 {
				continue
			}
			path := "/" + strings.TrimPrefix(rel, "/")
			if d, ok := div[path]; ok && d[1] != name {
				path = d[0]
			}
			res.Files++
			got, n, err := md5File(ctx, opt, path, buf)
			res.Bytes += n
			switch {
			case errors.Is(err, fs.ErrNotExist):
				res.add(opt, Change{Package: name, Path: path, What: "missing", Expected: sum})
			case ctx.Err() != nil:
				res.Incomplete = true
				return res, nil
			case err != nil:
				res.Errors++
			case got != sum:
				res.add(opt, Change{Package: name, Path: path, What: "digest", Expected: sum, Actual: got})
			}
		}
	}
	return res, nil
}

// md5File hashes a regular file at the rate limit.  A path that is not a
// regular file (a directory or device where a file belongs) is reported
// as an error.
func md5File(ctx context.Context, opt *Options, path string, buf []byte) (string, int64, error) {
	f, err := os.Open(opt.path(path))
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return "", 0, err
	} else if !st.Mode().IsRegular() {
		return "", 0, fmt.Errorf("%s: not a regular file", path)
	}
	h := md5.New()
	var n int64
	for {
		k, err := f.Read(buf)
		if k > 0 {
			if werr := opt.limiter.Wait(ctx, k); werr != nil {
				return "", n, werr
			}
			h.Write(buf[:k])
			n += int64(k)
		}
		if err == io.EOF {
			return hex.EncodeToString(h.Sum(nil)), n, nil
		}
		if err != nil {
			return "", n, err
		}
	}
}
