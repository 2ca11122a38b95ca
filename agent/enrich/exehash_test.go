// SPDX-License-Identifier: GPL-2.0

package enrich

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"smith/agent/decode"
	"smith/agent/encode"
	"smith/internal/testfs"
)

// hashFixture: a fake /proc where process 42's exe is a file of the test.
func hashFixture(t *testing.T, content []byte) (procDir, exe string) {
	t.Helper()
	root := t.TempDir()
	procDir = filepath.Join(root, "proc")
	exe = filepath.Join(root, "bin", "tool")
	testfs.WriteFile(t, exe, string(content))
	os.MkdirAll(filepath.Join(procDir, "42"), 0o755)
	if err := os.Symlink(exe, filepath.Join(procDir, "42", "exe")); err != nil {
		t.Fatal(err)
	}
	return procDir, exe
}

func execEv(pid uint32, exe string) *decode.Event {
	ev := &decode.Event{Type: decode.TypeExecve, Tgid: pid, Pid: pid}
	ev.Fields[decode.FieldExe] = decode.Field{Present: true, Value: []byte(exe)}
	return ev
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// settle waits until the file's hash is no longer being computed.
func settle(h *exeHasher, path string) {
	var st unix.Stat_t
	if unix.Stat(path, &st) != nil {
		return
	}
	h.mu.Lock()
	done := h.inflight[keyOf(&st)]
	h.mu.Unlock()
	if done != nil {
		<-done
	}
}

func TestExeHash(t *testing.T) {
	content := bytes.Repeat([]byte("\x7fELF smith "), 50000) // 550 kB
	procDir, exe := hashFixture(t, content)
	h := newExeHasher(HashOptions{Enabled: true, MaxSize: 1 << 20, Wait: time.Minute, CacheSize: 16})
	defer h.close()
	var m encode.Meta
	h.lookup(procDir, execEv(42, exe), &m)
	if m.ExeHash != sha(content) || m.ExeHashStatus != "" {
		t.Fatalf("hash %q status %q, want %s", m.ExeHash, m.ExeHashStatus, sha(content))
	}
	// The same version again: from the cache.
	m = encode.Meta{}
	h.lookup(procDir, execEv(42, exe), &m)
	if m.ExeHash != sha(content) || h.Hashed.Load() != 1 {
		t.Fatalf("second lookup: hash %q, %d files hashed (want 1)", m.ExeHash, h.Hashed.Load())
	}
	// The process is gone: the path in the event is hashed.
	m = encode.Meta{}
	h.lookup(procDir, execEv(43, exe), &m)
	if m.ExeHash != sha(content) {
		t.Fatalf("by path: %q", m.ExeHash)
	}
	// A new version of the file (size, mtime, ctime change): hashed again.
	content2 := append(content, "v2"...)
	if err := os.WriteFile(exe, content2, 0o755); err != nil {
		t.Fatal(err)
	}
	m = encode.Meta{}
	h.lookup(procDir, execEv(42, exe), &m)
	if m.ExeHash != sha(content2) || h.Hashed.Load() != 2 {
		t.Fatalf("new version: hash %q (want %s), %d hashed", m.ExeHash, sha(content2), h.Hashed.Load())
	}
	if h.Bytes.Load() != uint64(len(content)+len(content2)) {
		t.Errorf("bytes hashed %d, want %d", h.Bytes.Load(), len(content)+len(content2))
	}
}

func TestExeHashTooLargeAndPending(t *testing.T) {
	procDir, exe := hashFixture(t, bytes.Repeat([]byte("x"), 4096))
	h := newExeHasher(HashOptions{Enabled: true, MaxSize: 1000, Wait: time.Minute, CacheSize: 16})
	var m encode.Meta
	h.lookup(procDir, execEv(42, exe), &m)
	if m.ExeHash != "" || m.ExeHashStatus != encode.HashTooLarge {
		t.Errorf("too large: hash %q status %q", m.ExeHash, m.ExeHashStatus)
	}
	h.close()

	// No wait allowed: the first event is pending, a later one of the
	// same file has the hash.
	h = newExeHasher(HashOptions{Enabled: true, MaxSize: 1 << 20, Wait: 0, CacheSize: 16})
	defer h.close()
	m = encode.Meta{}
	h.lookup(procDir, execEv(42, exe), &m)
	if m.ExeHashStatus != encode.HashPending && m.ExeHash == "" {
		t.Fatalf("no wait: status %q", m.ExeHashStatus)
	}
	settle(h, exe)
	m = encode.Meta{}
	h.lookup(procDir, execEv(42, exe), &m)
	if m.ExeHash != sha(bytes.Repeat([]byte("x"), 4096)) {
		t.Fatalf("later event: hash %q status %q", m.ExeHash, m.ExeHashStatus)
	}
}

// A file that changes while it is read is marked, not hashed; the rate
// limit's sleep is where the test changes it.
func TestExeHashChangedWhileRead(t *testing.T) {
	procDir, exe := hashFixture(t, bytes.Repeat([]byte("y"), 512<<10))
	h := newExeHasher(HashOptions{Enabled: true, MaxSize: 1 << 30, Rate: 1, Wait: time.Minute, CacheSize: 16})
	defer h.close()
	h.limiter.Sleep = func(ctx context.Context, d time.Duration) error {
		f, err := os.OpenFile(exe, os.O_WRONLY|os.O_APPEND, 0)
		if err == nil {
			f.WriteString("tampered")
			f.Close()
		}
		return nil
	}
	var m encode.Meta
	h.lookup(procDir, execEv(42, exe), &m)
	if m.ExeHash != "" || m.ExeHashStatus != encode.HashChanged {
		t.Fatalf("changed while read: hash %q status %q", m.ExeHash, m.ExeHashStatus)
	}
}

// A full queue refuses (skipped, counted); Close ends a worker blocked
// in the rate limit.
func TestExeHashQueueFullAndClose(t *testing.T) {
	root := t.TempDir()
	procDir := filepath.Join(root, "proc")
	for i, name := range []string{"a", "b", "c"} {
		exe := filepath.Join(root, name)
		testfs.WriteFile(t, exe, string(bytes.Repeat([]byte(name), 256<<10)))
		os.MkdirAll(filepath.Join(procDir, string(rune('1'+i))), 0o755)
		os.Symlink(exe, filepath.Join(procDir, string(rune('1'+i)), "exe"))
	}
	h := newExeHasher(HashOptions{Enabled: true, MaxSize: 1 << 30, Rate: 1, Wait: 0, CacheSize: 16, Queue: 1})
	blocked := make(chan struct{})
	h.limiter.Sleep = func(ctx context.Context, d time.Duration) error {
		close(blocked)
		<-ctx.Done()
		return ctx.Err()
	}
	var m encode.Meta
	h.lookup(procDir, execEv(1, ""), &m)
	<-blocked // the worker holds file a
	h.lookup(procDir, execEv(2, ""), &m)
	if m.ExeHashStatus != encode.HashPending {
		t.Fatalf("queued file: %q", m.ExeHashStatus)
	}
	h.lookup(procDir, execEv(3, ""), &m)
	if m.ExeHashStatus != encode.HashSkipped || h.Skipped.Load() != 1 {
		t.Fatalf("queue full: %q, skipped %d", m.ExeHashStatus, h.Skipped.Load())
	}
	h.close()
}

// execEvID is execEv from a module of ABI 1.2: the record carries the
// identity of the file the kernel loaded, here taken from path's stat.
func execEvID(t *testing.T, pid uint32, exe, path string) *decode.Event {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	ev := execEv(pid, exe)
	ev.HasExeID, ev.ExeID = true, idOf(&st)
	return ev
}

// idOf is the identity the module would record for a file of this stat.
func idOf(st *unix.Stat_t) decode.ExeID {
	return decode.ExeID{Dev: uint32(st.Dev), Ino: st.Ino, Size: st.Size,
		MtimeSec: st.Mtim.Sec, MtimeNsec: uint32(st.Mtim.Nsec), CtimeSec: st.Ctim.Sec, CtimeNsec: uint32(st.Ctim.Nsec)}
}

// hashedByID: the fixture, a hasher, and an identity record of the file
// whose first lookup hashed it.
func hashedByID(t *testing.T, content []byte) (procDir, exe string, h *exeHasher, ev *decode.Event) {
	t.Helper()
	procDir, exe = hashFixture(t, content)
	h = testHasher(t)
	ev = execEvID(t, 42, exe, exe)
	var m encode.Meta
	h.lookup(procDir, ev, &m)
	if m.ExeHash != sha(content) || m.ExeHashStatus != "" || h.Hashed.Load() != 1 {
		t.Fatalf("miss: hash %q status %q, %d hashed", m.ExeHash, m.ExeHashStatus, h.Hashed.Load())
	}
	return procDir, exe, h, ev
}

// testHasher waits up to a minute for a hash, closed with the test.
func testHasher(t *testing.T) *exeHasher {
	t.Helper()
	h := newExeHasher(HashOptions{Enabled: true, MaxSize: 1 << 20, Wait: time.Minute, CacheSize: 16})
	t.Cleanup(h.close)
	return h
}

// A cache hit of the record's identity makes no system call: with the
// fake /proc and the file gone altogether, the same identity is still
// served its hash.
func TestExeHashIdentityHitNoSyscall(t *testing.T) {
	content := bytes.Repeat([]byte("\x7fELF id "), 4096)
	procDir, exe, h, ev := hashedByID(t, content)
	if err := os.RemoveAll(filepath.Dir(procDir)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(procDir); !os.IsNotExist(err) {
		t.Fatalf("fake /proc still there: %v", err)
	}
	for _, pid := range []uint32{42, 43} {
		var m encode.Meta
		h.lookup(procDir, execEv(pid, exe), &m) // without the identity: stat fails
		if m.ExeHashStatus != encode.HashError {
			t.Fatalf("1.1 record, file gone: status %q", m.ExeHashStatus)
		}
		m = encode.Meta{}
		ev.Tgid = pid
		h.lookup(procDir, ev, &m)
		if m.ExeHash != sha(content) || m.ExeHashStatus != "" {
			t.Fatalf("hit, pid %d: hash %q status %q", pid, m.ExeHash, m.ExeHashStatus)
		}
	}
	if h.Hashed.Load() != 1 {
		t.Fatalf("%d files hashed, want 1", h.Hashed.Load())
	}
	// Too large by the record's size: decided without opening anything.
	big := *ev
	big.ExeID.Ino++
	big.ExeID.Size = 2 << 20
	var m encode.Meta
	h.lookup(procDir, &big, &m)
	if m.ExeHashStatus != encode.HashTooLarge {
		t.Fatalf("too large: status %q", m.ExeHashStatus)
	}
}

// A replaced binary: a new identity at the same path is hashed anew, an
// identity that matches no file there is never served another version's
// hash, and the old identity keeps its own.
func TestExeHashIdentityReplaced(t *testing.T) {
	v1 := bytes.Repeat([]byte("v1"), 3000)
	procDir, exe, h, old := hashedByID(t, v1)
	// Replaced the way package managers do: a new file renamed over it.
	v2 := bytes.Repeat([]byte("v2"), 3000) // same size
	tmp := exe + ".new"
	testfs.WriteFile(t, tmp, string(v2))
	if err := os.Rename(tmp, exe); err != nil {
		t.Fatal(err)
	}
	cur := execEvID(t, 42, exe, exe)
	if cur.ExeID == old.ExeID {
		t.Fatal("the replacement has the old identity")
	}
	var m encode.Meta
	h.lookup(procDir, cur, &m)
	if m.ExeHash != sha(v2) || h.Hashed.Load() != 2 {
		t.Fatalf("v2: hash %q status %q, %d hashed", m.ExeHash, m.ExeHashStatus, h.Hashed.Load())
	}
	// The kernel loaded a version that is no longer there (ctime differs
	// from the file at the path, by /proc and by path alike).
	for _, pid := range []uint32{42, 43} {
		gone := *cur
		gone.Tgid = pid
		gone.ExeID.CtimeNsec = (gone.ExeID.CtimeNsec + 1) % 1e9
		m = encode.Meta{}
		h.lookup(procDir, &gone, &m)
		if m.ExeHash != "" || m.ExeHashStatus != encode.HashChanged {
			t.Fatalf("pid %d, identity not on disk: hash %q status %q", pid, m.ExeHash, m.ExeHashStatus)
		}
	}
	// The old version's own hash stays its own.
	m = encode.Meta{}
	h.lookup(procDir, old, &m)
	if m.ExeHash != sha(v1) || h.Hashed.Load() != 2 {
		t.Fatalf("v1 again: hash %q, %d hashed", m.ExeHash, h.Hashed.Load())
	}
}

// The process exec'd again before its first exec was looked at:
// /proc/PID/exe names the later program, so the file the record names is
// found by its path and gets its own hash, not the later program's.
func TestExeHashIdentityExecAgain(t *testing.T) {
	first := []byte("\x7fELF first")
	procDir, exe := hashFixture(t, first)
	later := filepath.Join(filepath.Dir(exe), "later")
	testfs.WriteFile(t, later, "\x7fELF later")
	link := filepath.Join(procDir, "42", "exe")
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(later, link); err != nil {
		t.Fatal(err)
	}
	h := testHasher(t)
	var m encode.Meta
	h.lookup(procDir, execEvID(t, 42, exe, exe), &m)
	if m.ExeHash != sha(first) || m.ExeHashStatus != "" {
		t.Fatalf("first exec: hash %q status %q, want %s", m.ExeHash, m.ExeHashStatus, sha(first))
	}
}

// The record's device may differ from stat's (btrfs subvolumes,
// overlayfs): the file is still that version and is hashed.
func TestExeHashIdentityOtherDevice(t *testing.T) {
	content := []byte("\x7fELF dev")
	procDir, exe := hashFixture(t, content)
	h := testHasher(t)
	ev := execEvID(t, 42, exe, exe)
	ev.ExeID.Dev ^= 0x55
	var m encode.Meta
	h.lookup(procDir, ev, &m)
	if m.ExeHash != sha(content) {
		t.Fatalf("other device: hash %q status %q", m.ExeHash, m.ExeHashStatus)
	}
}

// A record without the identity (a module before ABI 1.2), or with the
// zeros of a failed exec, falls back to stat(2), /proc first, then the
// path.
func TestExeHashOldABIFallback(t *testing.T) {
	content := []byte("\x7fELF old abi")
	procDir, exe := hashFixture(t, content)
	h := testHasher(t)
	zero := execEv(42, exe)
	zero.HasExeID = true
	for name, ev := range map[string]*decode.Event{"1.1 record": execEv(42, exe), "zero identity": zero, "by path": execEv(43, exe)} {
		var m encode.Meta
		h.lookup(procDir, ev, &m)
		if m.ExeHash != sha(content) || m.ExeHashStatus != "" {
			t.Fatalf("%s: hash %q status %q", name, m.ExeHash, m.ExeHashStatus)
		}
	}
	if err := os.Remove(exe); err != nil {
		t.Fatal(err)
	}
	var m encode.Meta
	h.lookup(procDir, execEv(42, exe), &m)
	if m.ExeHash != "" || m.ExeHashStatus != encode.HashError {
		t.Fatalf("1.1 record, file gone: hash %q status %q", m.ExeHash, m.ExeHashStatus)
	}
}

// BenchmarkExeHashLookup is a cache hit of the reader: by the record's
// identity (ABI 1.2, no system call) and by stat(2) of /proc/PID/exe
// (an older module's record).
func BenchmarkExeHashLookup(b *testing.B) {
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(self, &st); err != nil {
		b.Fatal(err)
	}
	pid := uint32(os.Getpid())
	old := execEv(pid, self)
	id := execEv(pid, self)
	id.HasExeID, id.ExeID = true, idOf(&st)
	for name, ev := range map[string]*decode.Event{"identity": id, "stat": old} {
		b.Run(name, func(b *testing.B) {
			h := newExeHasher(HashOptions{Enabled: true, MaxSize: 1 << 30, Wait: time.Minute, CacheSize: 16})
			defer h.close()
			var m encode.Meta
			h.lookup("/proc", ev, &m)
			if m.ExeHash == "" {
				b.Fatalf("first lookup: status %q", m.ExeHashStatus)
			}
			b.ReportAllocs()
			for b.Loop() {
				h.lookup("/proc", ev, &m)
			}
		})
	}
}
