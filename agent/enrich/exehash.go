// SPDX-License-Identifier: GPL-2.0

package enrich

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"smith/agent/decode"
	"smith/agent/encode"
	"smith/agent/ratelimit"
)

// HashOptions configure the executable hash of exec events.
type HashOptions struct {
	Enabled bool
	// MaxSize: larger files are not hashed (marked too_large).
	MaxSize int64
	// Rate bounds the bytes hashed per second (0: unlimited).
	Rate int64
	// Wait is the longest the reader waits for the hash of a file it
	// has not seen; the reader waits at most 10 times that per second in
	// all.  Past it the event is marked pending.
	Wait time.Duration
	// CacheSize bounds the files remembered.
	CacheSize int
	// Queue bounds the files waiting to be hashed (default 64).
	Queue int
}

// fileKey names one version of a file: a hash is reused only while none
// of these changed.  It is the kernel's identity of the file an exec
// loaded (decode.ExeID, ABI 1.2) or, from an older module, what stat(2)
// says of the file.
type fileKey struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64
}

func keyOf(st *unix.Stat_t) fileKey {
	return fileKey{dev: st.Dev, ino: st.Ino, size: st.Size,
		mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano()}
}

func keyOfID(x *decode.ExeID) fileKey {
	return fileKey{dev: uint64(x.Dev), ino: x.Ino, size: x.Size,
		mtime: x.MtimeSec*1e9 + int64(x.MtimeNsec), ctime: x.CtimeSec*1e9 + int64(x.CtimeNsec)}
}

// sameVersion: the file fstat(2) describes as k is the one the kernel
// recorded as id.  The device is left out: stat(2) reports its own for
// some filesystems (a btrfs subvolume's, an overlayfs' lower layer's)
// where the record has the superblock's; inode, size and both times to
// the nanosecond still tell a replaced or modified file.
func (k fileKey) sameVersion(id fileKey) bool {
	return k.ino == id.ino && k.size == id.size && k.mtime == id.mtime && k.ctime == id.ctime
}

type hashResult struct {
	sum    string // hex sha256
	status string // "" when sum is set
}

type hashJob struct {
	f   *os.File
	key fileKey // the cache's key
	// ver is the opened file's version (fstat): reading it must not
	// change it.
	ver  fileKey
	done chan struct{}
}

// opener opens the file of a cache miss: the file, its version (fstat)
// and, when there is no file, the status to report.
type opener func() (f *os.File, ver fileKey, status string)

// exeHasher hashes executables on its own goroutine.  The reader looks
// the file's version up: the identity the exec record carries (no system
// call), or from an older module the file's stat(2).  A file it has not
// seen is opened (so the worker reads exactly that inode) and queued.
type exeHasher struct {
	opt   HashOptions
	cache *bounded[fileKey, hashResult]
	jobs  chan hashJob
	stop  chan struct{}
	wg    sync.WaitGroup

	mu       sync.Mutex
	inflight map[fileKey]chan struct{}

	// The reader's wait budget per second.
	window, waited time.Duration
	windowStart    time.Time

	// Counters: files hashed, bytes read, events left pending, jobs
	// refused because the queue was full.
	Hashed, Bytes, Pending, Skipped atomic.Uint64

	limiter *ratelimit.Bytes
}

func newExeHasher(opt HashOptions) *exeHasher {
	if opt.Queue <= 0 {
		opt.Queue = 64
	}
	h := &exeHasher{opt: opt, cache: newBounded[fileKey, hashResult](opt.CacheSize),
		jobs: make(chan hashJob, opt.Queue), stop: make(chan struct{}),
		inflight: make(map[fileKey]chan struct{}), window: 10 * opt.Wait,
		limiter: ratelimit.New(opt.Rate, opt.Rate/4)}
	h.wg.Add(1)
	go h.work()
	return h
}

// close stops the worker; queued files are closed unhashed.
func (h *exeHasher) close() {
	close(h.stop)
	h.wg.Wait()
	for {
		select {
		case j := <-h.jobs:
			j.f.Close()
			close(j.done)
		default:
			return
		}
	}
}

// lookup fills m.ExeHash (or m.ExeHashStatus) for an exec event.  The
// executable is /proc/PID/exe while the process lives (the very file the
// kernel mapped, even if the path was replaced since), else the path.
// With the kernel's identity of the loaded file in the record, a cached
// version costs no system call; a miss opens the file and hashes it only
// if it still is that version (else HashChanged).
func (h *exeHasher) lookup(procDir string, ev *decode.Event, m *encode.Meta) {
	if !ev.HasExeID || ev.ExeID.Ino == 0 {
		h.lookupStat(procDir, ev, m)
		return
	}
	key := keyOfID(&ev.ExeID)
	h.serve(key, m, func() (*os.File, fileKey, string) { return openLoaded(procDir, ev, key) })
}

// lookupStat is lookup for a record without the identity (a module
// older than ABI 1.2): the file's version is what stat(2) says.
func (h *exeHasher) lookupStat(procDir string, ev *decode.Event, m *encode.Meta) {
	path := procExe(procDir, ev.Tgid)
	var st unix.Stat_t
	if unix.Stat(path, &st) != nil {
		f := ev.Fields[decode.FieldExe]
		if !f.Present || len(f.Value) == 0 {
			return
		}
		path = filepath.Clean(string(f.Value))
		if unix.Stat(path, &st) != nil {
			m.ExeHashStatus = encode.HashError
			return
		}
	}
	key := keyOf(&st)
	h.serve(key, m, func() (*os.File, fileKey, string) { return openVersion(path, key) })
}

func procExe(procDir string, tgid uint32) string {
	var pathBuf [64]byte
	return string(strconv.AppendUint(append(append(pathBuf[:0], procDir...), '/'), uint64(tgid), 10)) + "/exe"
}

// openVersion opens path if it is still version key (stat, then open:
// it may have changed between them); HashSkipped if not.
func openVersion(path string, key fileKey) (*os.File, fileKey, string) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fileKey{}, encode.HashSkipped
	}
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil || keyOf(&st) != key {
		f.Close()
		return nil, fileKey{}, encode.HashSkipped
	}
	return f, key, ""
}

// openLoaded opens the file the kernel recorded as id: /proc/PID/exe,
// else the event's exe path (the process exited, or exec'd again since),
// checking with fstat that it is that version.  HashChanged when what
// opens is another version (replaced or modified since the exec).
func openLoaded(procDir string, ev *decode.Event, id fileKey) (*os.File, fileKey, string) {
	paths := [2]string{procExe(procDir, ev.Tgid)}
	if exe := ev.Fields[decode.FieldExe]; exe.Present && len(exe.Value) > 0 {
		paths[1] = filepath.Clean(string(exe.Value))
	}
	status := "" // no file to look at: no status, as without the identity
	for i, path := range paths {
		if path == "" {
			break
		}
		f, err := os.Open(path)
		if err != nil {
			if i == 1 && status == "" {
				status = encode.HashError
			}
			continue
		}
		var st unix.Stat_t
		if unix.Fstat(int(f.Fd()), &st) != nil {
			f.Close()
			status = encode.HashError
			continue
		}
		if ver := keyOf(&st); ver.sameVersion(id) {
			return f, ver, ""
		}
		f.Close()
		status = encode.HashChanged
	}
	return nil, fileKey{}, status
}

// serve fills m from the cache, or queues the file open gives and waits
// for its hash within the budgets.
func (h *exeHasher) serve(key fileKey, m *encode.Meta, open opener) {
	if r, ok := h.cache.get(key); ok {
		m.ExeHash, m.ExeHashStatus = r.sum, r.status
		return
	}
	if key.size > h.opt.MaxSize {
		h.cache.put(key, hashResult{status: encode.HashTooLarge})
		m.ExeHashStatus = encode.HashTooLarge
		return
	}
	done, status := h.start(key, open)
	if done == nil {
		if status == encode.HashSkipped {
			h.Skipped.Add(1)
		}
		m.ExeHashStatus = status
		return
	}
	if h.wait(done) {
		if r, ok := h.cache.get(key); ok {
			m.ExeHash, m.ExeHashStatus = r.sum, r.status
			return
		}
	}
	h.Pending.Add(1)
	m.ExeHashStatus = encode.HashPending
}

// start queues the file unless it is being hashed already; nil and the
// status to report when the queue is full (HashSkipped) or open gives no
// file.
func (h *exeHasher) start(key fileKey, open opener) (chan struct{}, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if done, ok := h.inflight[key]; ok {
		return done, ""
	}
	f, ver, status := open()
	if f == nil {
		return nil, status
	}
	j := hashJob{f: f, key: key, ver: ver, done: make(chan struct{})}
	select {
	case h.jobs <- j:
		h.inflight[key] = j.done
		return j.done, ""
	default:
		f.Close()
		return nil, encode.HashSkipped
	}
}

// wait waits for done within the per-event and per-second budgets.
func (h *exeHasher) wait(done chan struct{}) bool {
	now := time.Now()
	if now.Sub(h.windowStart) > time.Second {
		h.windowStart, h.waited = now, 0
	}
	d := min(h.opt.Wait, h.window-h.waited)
	if d <= 0 {
		select {
		case <-done:
			return true
		default:
			return false
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		h.waited += time.Since(now)
		return true
	case <-t.C:
		h.waited += d
		return false
	}
}

func (h *exeHasher) work() {
	defer h.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-h.stop
		cancel()
	}()
	buf := make([]byte, 64<<10)
	for {
		select {
		case <-h.stop:
			return
		case j := <-h.jobs:
			select {
			case <-h.stop:
				// Stopping: close the file unhashed.
				cancel()
			default:
			}
			if ctx.Err() == nil {
				if r := h.hash(ctx, j, buf); ctx.Err() == nil {
					h.cache.put(j.key, r)
				}
			}
			j.f.Close()
			h.mu.Lock()
			delete(h.inflight, j.key)
			h.mu.Unlock()
			close(j.done)
		}
	}
}

// hash reads the whole file at the rate limit; a file whose size, times
// or length read differ from the version opened changed while it was
// read.
func (h *exeHasher) hash(ctx context.Context, j hashJob, buf []byte) hashResult {
	sum := sha256.New()
	var n int64
	for {
		k, err := j.f.Read(buf)
		if k > 0 {
			if werr := h.limiter.Wait(ctx, k); werr != nil {
				return hashResult{status: encode.HashPending}
			}
			sum.Write(buf[:k])
			n += int64(k)
			if n > j.ver.size {
				return hashResult{status: encode.HashChanged}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return hashResult{status: encode.HashError}
		}
	}
	h.Hashed.Add(1)
	h.Bytes.Add(uint64(n))
	var st unix.Stat_t
	if unix.Fstat(int(j.f.Fd()), &st) != nil || keyOf(&st) != j.ver || n != j.ver.size {
		return hashResult{status: encode.HashChanged}
	}
	return hashResult{sum: hex.EncodeToString(sum.Sum(nil))}
}
