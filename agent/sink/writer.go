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
// files are kept.
type RotatingFile struct {
	path     string
	maxBytes int64
	maxFiles int
	f        *os.File
	size     int64
}

// OpenRotatingFile opens (appends to) path.
func OpenRotatingFile(path string, maxBytes int64, maxFiles int) (*RotatingFile, error) {
	r := &RotatingFile{path: path, maxBytes: maxBytes, maxFiles: maxFiles}
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
	r.f, r.size = f, st.Size()
	return nil
}

// Write appends p, rotating first when p would not fit.
func (r *RotatingFile) Write(p []byte) (int, error) {
	if r.size > 0 && r.size+int64(len(p)) > r.maxBytes {
		if err := r.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	if err != nil {
		return n, fmt.Errorf("write %s: %w", r.path, err)
	}
	return n, nil
}

func (r *RotatingFile) rotate() error {
	if err := r.f.Close(); err != nil {
		return fmt.Errorf("close %s for rotation: %w", r.path, err)
	}
	os.Remove(r.path + "." + strconv.Itoa(r.maxFiles))
	for i := r.maxFiles - 1; i >= 1; i-- {
		os.Rename(r.path+"."+strconv.Itoa(i), r.path+"."+strconv.Itoa(i+1))
	}
	if err := os.Rename(r.path, r.path+".1"); err != nil {
		return fmt.Errorf("rotate %s: %w", r.path, err)
	}
	return r.open()
}

// Close closes the current file.
func (r *RotatingFile) Close() error { return r.f.Close() }

// NewFile returns the rotating file sink.
func NewFile(path string, maxBytes int64, maxFiles, queue int, c *metrics.Counters, log logrus.FieldLogger) (Sink, error) {
	rf, err := OpenRotatingFile(path, maxBytes, maxFiles)
	if err != nil {
		return nil, err
	}
	return newWriterSink("file", queue, func(p []byte) error {
		_, err := rf.Write(p)
		return err
	}, rf.Close, c, log), nil
}
