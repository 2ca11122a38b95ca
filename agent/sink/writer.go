package sink

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/sirupsen/logrus"

	"smith/agent/metrics"
)

// writerSink writes batches as JSON lines to an io.Writer from its own
// goroutine, one write per batch.
type writerSink struct {
	name    string
	ch      chan *Batch
	write   func([]byte) error
	close   func() error
	reopen  func() error // nil: nothing to reopen
	c       *metrics.Counters
	log     logrus.FieldLogger
	wg      sync.WaitGroup
	closeMu sync.Once
}

func newWriterSink(name string, queue int, write func([]byte) error, closeFn func() error, c *metrics.Counters, log logrus.FieldLogger) *writerSink {
	s := &writerSink{name: name, ch: make(chan *Batch, queue), write: write, close: closeFn, c: c, log: log}
	s.wg.Add(1)
	go s.run()
	return s
}

func (s *writerSink) run() {
	defer s.wg.Done()
	for b := range s.ch {
		if err := s.write(b.Lines()); err != nil {
			// Nothing to retry into: count the loss and say so.
			s.c.AddDrop(metrics.DropSink, uint64(b.Len()))
			b.AddLost(b.Len())
			s.log.WithError(err).Errorf("%s sink: %d events lost", s.name, b.Len())
		}
		b.Done()
	}
}

func (s *writerSink) Name() string { return s.name }

// Send queues b.  The queue holds as many batches as the pipeline has in
// flight, so it does not block.
func (s *writerSink) Send(b *Batch) { s.ch <- b }

func (s *writerSink) Close(ctx context.Context) error {
	s.closeMu.Do(func() { close(s.ch) })
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("%s sink: %w", s.name, ctx.Err())
	}
	if s.close != nil {
		return s.close()
	}
	return nil
}

// NewWriter returns a sink writing JSON lines to w (stdout: os.Stdout).
func NewWriter(name string, w io.Writer, queue int, c *metrics.Counters, log logrus.FieldLogger) Sink {
	return newWriterSink(name, queue, func(p []byte) error {
		_, err := w.Write(p)
		return err
	}, nil, c, log)
}

// RotatingFile is the file sink: JSON lines to path, renamed to path.1
// (path.1 to path.2, ...) when it would exceed maxBytes; maxFiles rotated
// files are kept.  A write that fails half-way is cut back, so the file
// never holds a partial line; a rotation that fails goes on appending to
// path (and tries again at the next write); Reopen (SIGHUP) opens path
// anew after an outside rotation (logrotate).  Only a regular file is
// rotated: a path that names a device or a pipe (/dev/null, a FIFO read
// by another program) is written to as it is, never renamed.
type RotatingFile struct {
	mu       sync.Mutex
	path     string
	maxBytes int64
	maxFiles int
	f        *os.File
	size     int64
	regular  bool // f is a regular file: rotated by size
	// rename and truncate are the file operations (fields so that tests
	// can fail them).
	rename   func(from, to string) error
	truncate func(f *os.File, size int64) error
	write    func(f *os.File, p []byte) (int, error)
}

// OpenRotatingFile opens (appends to) path.
func OpenRotatingFile(path string, maxBytes int64, maxFiles int) (*RotatingFile, error) {
	r := &RotatingFile{path: path, maxBytes: maxBytes, maxFiles: maxFiles, rename: os.Rename,
		truncate: func(f *os.File, size int64) error { return f.Truncate(size) },
		write:    func(f *os.File, p []byte) (int, error) { return f.Write(p) }}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("event file directory: %w", err)
	}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *RotatingFile) open() error {
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("open event file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("stat event file: %w", err)
	}
	r.f, r.size, r.regular = f, st.Size(), st.Mode().IsRegular()
	return nil
}

// Write appends p (whole JSON lines), rotating first when p would not
// fit.  On error nothing of p stays in the file.
func (r *RotatingFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var rotErr error
	if r.regular && r.size > 0 && r.size+int64(len(p)) > r.maxBytes {
		rotErr = r.rotate()
	}
	n, err := r.write(r.f, p)
	if err != nil {
		if n > 0 {
			// A short write (disk full): cut the partial line.  If even
			// that fails, end the fragment so the next line is whole.
			if terr := r.truncate(r.f, r.size); terr != nil {
				if _, nerr := r.f.Write([]byte{'\n'}); nerr == nil {
					r.size += int64(n) + 1
				}
			}
		}
		return 0, fmt.Errorf("write %s: %w", r.path, err)
	}
	r.size += int64(n)
	if rotErr != nil {
		return n, fmt.Errorf("written to %s without rotating: %w", r.path, rotErr)
	}
	return n, nil
}

// rotate renames the files; if that fails the current file stays open
// and in use.
func (r *RotatingFile) rotate() error {
	os.Remove(r.path + "." + strconv.Itoa(r.maxFiles))
	for i := r.maxFiles - 1; i >= 1; i-- {
		r.rename(r.path+"."+strconv.Itoa(i), r.path+"."+strconv.Itoa(i+1))
	}
	if err := r.rename(r.path, r.path+".1"); err != nil {
		return fmt.Errorf("rotate %s: %w", r.path, err)
	}
	// If path, gone (renamed), cannot be created, writing goes on to the
	// renamed file rather than lose events.
	return r.reopen()
}

// Reopen closes the file and opens path again (after logrotate moved it).
func (r *RotatingFile) Reopen() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reopen()
}

// reopen opens path and closes the file in use; if path cannot be
// opened, the file in use stays in use.
func (r *RotatingFile) reopen() error {
	old := r.f
	if err := r.open(); err != nil {
		return err
	}
	old.Close()
	return nil
}

// Close closes the current file.
func (r *RotatingFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.f.Close()
}

// NewFile returns the rotating file sink.
func NewFile(path string, maxBytes int64, maxFiles, queue int, c *metrics.Counters, log logrus.FieldLogger) (Sink, error) {
	rf, err := OpenRotatingFile(path, maxBytes, maxFiles)
	if err != nil {
		return nil, err
	}
	ws := newWriterSink("file", queue, func(p []byte) error {
		n, err := rf.Write(p)
		if err != nil && n == len(p) {
			// Written, not rotated: no event lost, the file grows.
			log.WithError(err).Warn("file sink: rotation failed; appending to the current file")
			return nil
		}
		return err
	}, rf.Close, c, log)
	ws.reopen = rf.Reopen
	return ws, nil
}

// Reopener is a sink whose files can be opened again (SIGHUP).
type Reopener interface {
	Reopen() error
}

// Reopen implements Reopener for the file sink.
func (s *writerSink) Reopen() error {
	if s.reopen == nil {
		return nil
	}
	return s.reopen()
}
