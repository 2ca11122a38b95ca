package sink

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"smith/agent/metrics"
)

func TestRotatingFileKeepsMaxFiles(t *testing.T) {
	rf, path := openRotating(t, 4096, 2)
	line := []byte(strings.Repeat("x", 999) + "\n") // 1000 bytes
	for i := 0; i < 20; i++ {
		if _, err := rf.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	rf.Close()
	for _, p := range []string{path, path + ".1", path + ".2"} {
		st, err := os.Stat(p)
		if err != nil || st.Size() == 0 || st.Size() > 4096 || st.Size()%1000 != 0 {
			t.Errorf("%s: %v, %v", p, st, err)
		}
	}
	if _, err := os.Stat(path + ".3"); !os.IsNotExist(err) {
		t.Errorf("more than max_files rotated files kept")
	}
}

// openRotating opens a rotating file in a new directory, closed when the
// test ends, and returns it and its path.
func openRotating(t *testing.T, maxBytes int64, maxFiles int) (*RotatingFile, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "events.json")
	rf, err := OpenRotatingFile(path, maxBytes, maxFiles)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rf.Close() })
	return rf, path
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestWriterSinkCountsFailedWrites(t *testing.T) {
	c := &metrics.Counters{}
	log := quietLog()
	var out bytes.Buffer
	ok := NewWriter("stdout", &out, 4, c, log)
	bad := NewWriter("stdout", failWriter{}, 4, c, log)
	delivered := 0
	for _, s := range []Sink{ok, bad} {
		done := make(chan struct{})
		b := NewBatch(func(b *Batch) { delivered += b.Delivered(); close(done) })
		b.End(append(b.Buf(), `{"a":1}`...))
		b.End(append(b.Buf(), `{"a":2}`...))
		b.Hold(1)
		s.Send(b)
		<-done
		s.Close(context.Background())
	}
	if out.String() != "{\"a\":1}\n{\"a\":2}\n" {
		t.Errorf("stdout got %q", out.String())
	}
	if delivered != 2 || c.Dropped(metrics.DropSink) != 2 {
		t.Errorf("delivered %d dropped %d", delivered, c.Dropped(metrics.DropSink))
	}
}

// A write that fails half-way (disk full) leaves no partial line.
func TestRotatingFileCutsAShortWrite(t *testing.T) {
	rf, path := openRotating(t, 1<<20, 2)
	rf.Write([]byte("{\"a\":1}\n"))
	rf.write = func(f *os.File, p []byte) (int, error) {
		n, _ := f.Write(p[:len(p)/2])
		return n, syscall.ENOSPC
	}
	if _, err := rf.Write([]byte("{\"a\":2}\n{\"a\":3}\n")); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("short write: %v", err)
	}
	rf.write = func(f *os.File, p []byte) (int, error) { return f.Write(p) }
	if _, err := rf.Write([]byte("{\"a\":4}\n")); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "{\"a\":1}\n{\"a\":4}\n" {
		t.Fatalf("file holds %q", got)
	}
}

// A rotation that fails keeps the events (appended to the current file)
// and is tried again at the next write.
func TestRotatingFileSurvivesAFailedRotation(t *testing.T) {
	rf, path := openRotating(t, 20, 2)
	line := []byte("{\"n\":\"0123456789\"}\n") // 19 bytes: one per file
	rf.Write(line)
	rf.rename = func(string, string) error { return syscall.EACCES }
	if n, err := rf.Write(line); n != len(line) || !errors.Is(err, syscall.EACCES) {
		t.Fatalf("failed rotation: %d, %v; want the line written and the error", n, err)
	}
	rf.rename = os.Rename
	if n, err := rf.Write(line); n != len(line) || err != nil {
		t.Fatalf("after the failure: %d, %v", n, err)
	}
	cur, _ := os.ReadFile(path)
	old, _ := os.ReadFile(path + ".1")
	if string(cur) != string(line) || string(old) != string(line)+string(line) {
		t.Fatalf("current %q, rotated %q", cur, old)
	}
}

// Reopen (SIGHUP) after logrotate moved the file writes to a new one.
func TestRotatingFileReopen(t *testing.T) {
	rf, path := openRotating(t, 1<<20, 2)
	rf.Write([]byte("{\"a\":1}\n"))
	os.Rename(path, path+".old")
	if err := rf.Reopen(); err != nil {
		t.Fatal(err)
	}
	rf.Write([]byte("{\"a\":2}\n"))
	if got, _ := os.ReadFile(path); string(got) != "{\"a\":2}\n" {
		t.Fatalf("new file holds %q", got)
	}
	if got, _ := os.ReadFile(path + ".old"); string(got) != "{\"a\":1}\n" {
		t.Fatalf("moved file holds %q", got)
	}
}

// A path that is not a regular file (a FIFO here; /dev/null alike) is
// written to past max_bytes and never renamed.
func TestRotatingFileDoesNotRotateAPipe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	// The reader first, non-blocking: the writer's open then does not wait.
	rd, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	rf, err := OpenRotatingFile(path, 1000, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	line := []byte(strings.Repeat("x", 599) + "\n")
	for i := 0; i < 10; i++ {
		if n, err := rf.Write(line); err != nil || n != len(line) {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
	}
	if st, err := os.Stat(path); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("%s is no longer the FIFO: %v, %v", path, st, err)
	}
	if _, err := os.Lstat(path + ".1"); !os.IsNotExist(err) {
		t.Errorf("the FIFO was rotated: %s.1: %v", path, err)
	}
	want := bytes.Repeat(line, 10)
	got := make([]byte, len(want))
	if n, err := io.ReadFull(rd, got); err != nil || !bytes.Equal(got, want) {
		t.Errorf("read %d bytes from the FIFO (%v), want the %d written", n, err, len(want))
	}
}
