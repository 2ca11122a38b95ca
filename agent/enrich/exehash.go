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
// of these changed.
type fileKey struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64
}

func keyOf(st *unix.Stat_t) fileKey {
	return fileKey{dev: st.Dev, ino: st.Ino, size: st.Size,
		mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano()}
}

type hashResult struct {
	sum    string // hex sha256
	status string // "" when sum is set
}

type hashJob struct {
	f    *os.File
	key  fileKey
	done chan struct{}
}

// exeHasher hashes executables on its own goroutine.  The reader only
// stats the file and looks its version up; a file it has not seen is
// opened (so the worker reads exactly that inode) and queued.
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
func (h *exeHasher) lookup(procDir string, ev *decode.Event, m *encode.Meta) {
	var pathBuf [64]byte
	path := string(strconv.AppendUint(append(append(pathBuf[:0], procDir...), '/'), uint64(ev.Tgid), 10)) + "/exe"
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
	if r, ok := h.cache.get(key); ok {
		m.ExeHash, m.ExeHashStatus = r.sum, r.status
		return
	}
	if st.Size > h.opt.MaxSize {
		h.cache.put(key, hashResult{status: encode.HashTooLarge})
		m.ExeHashStatus = encode.HashTooLarge
		return
	}
	done := h.start(path, key)
	if done == nil {
		h.Skipped.Add(1)
		m.ExeHashStatus = encode.HashSkipped
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

// start queues the file unless it is being hashed already; nil when the
// queue is full or the file cannot be opened as the same version.
func (h *exeHasher) start(path string, key fileKey) chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if done, ok := h.inflight[key]; ok {
		return done
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil || keyOf(&st) != key {
		f.Close()
		return nil
	}
	j := hashJob{f: f, key: key, done: make(chan struct{})}
	select {
	case h.jobs <- j:
		h.inflight[key] = j.done
		return j.done
	default:
		f.Close()
		return nil
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
// or length read differ from its key changed while it was read.
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
			if n > j.key.size {
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
	if unix.Fstat(int(j.f.Fd()), &st) != nil || keyOf(&st) != j.key || n != j.key.size {
		return hashResult{status: encode.HashChanged}
	}
	return hashResult{sum: hex.EncodeToString(sum.Sum(nil))}
}
