// SPDX-License-Identifier: GPL-2.0

package integrity

import (
	"bufio"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smith/agent/ratelimit"
	"smith/internal/testfs"
)

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// A root with two packages: one intact, one with a tampered file, a
// missing one and a file diverted by another package.
func tamperedRoot(t *testing.T) string {
	root := t.TempDir()
	files := map[string]string{
		"usr/bin/tool":        strings.Repeat("tool binary ", 20000),
		"usr/share/tool/data": "data v1\n",
		"usr/bin/other":       "other\n",
		"usr/bin/diverted":    "original content\n",
	}
	var sums strings.Builder
	for _, p := range []string{"usr/bin/tool", "usr/share/tool/data", "usr/share/tool/gone"} {
		c, ok := files[p]
		if !ok {
			c = "was here\n"
		}
		fmt.Fprintf(&sums, "%s  %s\n", md5hex(c), p)
	}
	testfs.WriteFile(t, filepath.Join(root, "var/lib/dpkg/info/tool:amd64.md5sums"), sums.String())
	testfs.WriteFile(t, filepath.Join(root, "var/lib/dpkg/info/other.md5sums"),
		fmt.Sprintf("%s  usr/bin/other\n%s  usr/bin/diverted\n", md5hex("other\n"), md5hex("original content\n")))
	// "local-pkg" diverted /usr/bin/diverted to /usr/bin/diverted.distrib
	// and installed its own file in its place.
	testfs.WriteFile(t, filepath.Join(root, "var/lib/dpkg/diversions"), "/usr/bin/diverted\n/usr/bin/diverted.distrib\nlocal-pkg\n")
	for p, c := range files {
		if p == "usr/bin/diverted" {
			testfs.WriteFile(t, filepath.Join(root, "usr/bin/diverted.distrib"), c)
			testfs.WriteFile(t, filepath.Join(root, p), "the diverting package's own file\n")
			continue
		}
		testfs.WriteFile(t, filepath.Join(root, p), c)
	}
	// The attack: one byte changed.
	testfs.WriteFile(t, filepath.Join(root, "usr/share/tool/data"), "data v2\n")
	return root
}

func TestDpkgTamperedRoot(t *testing.T) {
	root := tamperedRoot(t)
	res, err := Check(context.Background(), Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if res.Manager != "dpkg" || res.Packages != 2 || res.Files != 5 || res.Changed != 2 || res.Missing != 1 || res.Errors != 0 || res.Incomplete {
		t.Fatalf("result %+v", res)
	}
	want := map[string]Change{
		"/usr/share/tool/data": {Package: "tool", Path: "/usr/share/tool/data", What: "digest", Expected: md5hex("data v1\n"), Actual: md5hex("data v2\n")},
		"/usr/share/tool/gone": {Package: "tool", Path: "/usr/share/tool/gone", What: "missing", Expected: md5hex("was here\n")},
	}
	for _, c := range res.Changes {
		if w, ok := want[c.Path]; !ok || w != c {
			t.Errorf("change %+v, want %+v", c, w)
		}
		delete(want, c.Path)
	}
	if len(want) > 0 {
		t.Errorf("not reported: %v", want)
	}
	// Only some packages; and MaxChanges bounds the list, not the counts.
	res, _ = Check(context.Background(), Options{Root: root, Packages: []string{"other"}})
	if res.Packages != 1 || res.Files != 2 || res.Changed != 0 {
		t.Errorf("package other: %+v", res)
	}
	res, _ = Check(context.Background(), Options{Root: root, MaxChanges: 1})
	if res.Changed != 2 || len(res.Changes) != 1 {
		t.Errorf("max 1 change: changed %d, %d listed", res.Changed, len(res.Changes))
	}
}

// The rate limit: the fake clock records how long the check was made
// to sleep for the bytes it read.
func TestDpkgRateLimitAndDeadline(t *testing.T) {
	root := tamperedRoot(t)
	lim := ratelimit.New(100<<10, 64<<10) // 100 KiB/s
	var slept time.Duration
	now := time.Unix(1000, 0)
	lim.Now = func() time.Time { return now }
	lim.Sleep = func(_ context.Context, d time.Duration) error { slept += d; now = now.Add(d); return nil }
	res, err := Check(context.Background(), Options{Root: root, limiter: lim})
	if err != nil {
		t.Fatal(err)
	}
	want := time.Duration(float64(res.Bytes-64<<10) / float64(100<<10) * float64(time.Second))
	if res.Bytes < 240000 || slept < want-time.Millisecond || slept > want+time.Millisecond {
		t.Fatalf("read %d bytes, slept %v, want %v", res.Bytes, slept, want)
	}
	// A deadline stops it: partial, marked, no error.
	ctx, cancel := context.WithCancel(context.Background())
	lim = ratelimit.New(1, 0)
	lim.Sleep = func(ctx context.Context, d time.Duration) error { cancel(); return ctx.Err() }
	res, err = Check(ctx, Options{Root: root, limiter: lim})
	if err != nil || !res.Incomplete {
		t.Fatalf("cancelled: %+v %v", res, err)
	}
}

// This machine's real dpkg database, bounded to a few packages: every
// file they list is read and matches.
func TestDpkgRealDatabase(t *testing.T) {
	pkgs := []string{"base-files", "coreutils", "dpkg"}
	lines := 0
	for _, p := range pkgs {
		f, err := os.Open("/var/lib/dpkg/info/" + p + ".md5sums")
		if err != nil {
			t.Fatalf("this test needs the Debian host's dpkg database: %v", err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			lines++
		}
		f.Close()
	}
	res, err := Check(context.Background(), Options{Root: "/", Packages: pkgs})
	if err != nil {
		t.Fatal(err)
	}
	if res.Manager != "dpkg" || res.Packages != len(pkgs) || res.Files != lines || res.Bytes == 0 {
		t.Fatalf("checked %+v, want %d packages and %d files", res, len(pkgs), lines)
	}
	if res.Changed != 0 || res.Errors != 0 {
		t.Errorf("%d changed files, %d errors on this host: %+v", res.Changed, res.Errors, res.Changes)
	}
}

func TestParseRPMVerify(t *testing.T) {
	for line, want := range map[string]Change{
		"S.5....T.  c /etc/app.conf":   {Path: "/etc/app.conf", What: "size,digest,mtime", Config: true},
		".M....G..    /usr/bin/tool":   {Path: "/usr/bin/tool", What: "mode,group"},
		"..?......    /root/secret":    {Path: "/root/secret", What: "digest"},
		"missing     /usr/lib/libx.so": {Path: "/usr/lib/libx.so", What: "missing"},
		"missing   c /etc/gone.conf":   {Path: "/etc/gone.conf", What: "missing", Config: true},
		".....UG.P    /usr/bin/ping":   {Path: "/usr/bin/ping", What: "owner,group,capabilities"},
	} {
		got, ok := parseRPMVerify(line)
		if !ok || got != want {
			t.Errorf("%q: %+v %v, want %+v", line, got, ok, want)
		}
	}
	for _, bad := range []string{"", "error: cannot open Packages index", "S.5....T.", "XYZ......  /x", "missing"} {
		if c, ok := parseRPMVerify(bad); ok {
			t.Errorf("%q parsed as %+v", bad, c)
		}
	}
}

// rpm run directly: a stand-in rpm program records its arguments.
func TestRPMRun(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	testfs.WriteFile(t, filepath.Join(root, "var/lib/rpm/rpmdb.sqlite"), "db")
	args := filepath.Join(dir, "args")
	rpm := filepath.Join(dir, "rpm")
	testfs.WriteFile(t, rpm, `#!/bin/sh
echo "$*" >> `+args+`
case "$*" in
*-Va*) printf 'S.5....T.  c /etc/app.conf\nmissing     /usr/bin/gone\nerror: noise\n'; exit 1 ;;
*-qa*) printf 'x\nx\nx\n' ;;
*-qf*) printf 'app\ntool\n' ;;
esac
`)
	os.Chmod(rpm, 0o755)
	res, err := Check(context.Background(), Options{Root: root, RPM: rpm})
	if err != nil {
		t.Fatal(err)
	}
	want := []Change{
		{Package: "app", Path: "/etc/app.conf", What: "size,digest,mtime", Config: true},
		{Package: "tool", Path: "/usr/bin/gone", What: "missing"},
	}
	if res.Manager != "rpm" || res.Packages != 3 || res.Changed != 2 || res.Missing != 1 || len(res.Changes) != 2 ||
		res.Changes[0] != want[0] || res.Changes[1] != want[1] {
		t.Fatalf("rpm result %+v", res)
	}
	raw, _ := os.ReadFile(args)
	if !strings.HasPrefix(string(raw), "--root "+root+" -Va\n") || !strings.Contains(string(raw), "-qf --qf %{NAME}\n -- /etc/app.conf /usr/bin/gone") {
		t.Errorf("rpm called with:\n%s", raw)
	}
	// rpm failing for real (exit 2) is an error.
	testfs.WriteFile(t, rpm, "#!/bin/sh\necho broken >&2\nexit 2\n")
	if _, err := Check(context.Background(), Options{Root: root, RPM: rpm}); err == nil || !strings.Contains(err.Error(), "broken") {
		t.Errorf("failing rpm: %v", err)
	}
	// No database at all.
	if _, err := Check(context.Background(), Options{Root: t.TempDir(), RPM: rpm}); err != ErrNoDatabase {
		t.Errorf("empty root: %v", err)
	}
}
