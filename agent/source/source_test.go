package source

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"smith/agent/decode"
	"smith/internal/testfs"
	"smith/shm"
)

func TestFileSource(t *testing.T) {
	path, fr := testfs.Ring(t, shm.RingMinSize)
	prod := shm.NewProducer(fr.Ring)
	ev := &decode.Event{Type: decode.TypeExecve, Pid: 1, Tgid: 1}
	rec := decode.AppendEvent(nil, ev)
	n, _, _ := decode.RecordLen(rec)
	prod.Write(rec[:n])
	prod.Write(decode.AppendLost(nil, 9))

	src, err := OpenFile(path, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if m := src.Module(); m.Transport != "file" || m.ABI != fmt.Sprintf("%d.%d", shm.ABIMajor, shm.ABIMinor) || src.Size() != shm.RingMinSize {
		t.Fatalf("module %+v size %d", m, src.Size())
	}
	var ends []uint64
	for r := range testfs.Records(t, src.Next) {
		ends = append(ends, r.End())
	}
	if len(ends) != 2 {
		t.Fatalf("%d records, want 2", len(ends))
	}
	if r := src.Ring(); r.Lost != 9 || r.Written != 2 || r.Fill <= 0 {
		t.Fatalf("ring stats before commit: %+v", r)
	}
	if src.CommitsOnWait() {
		t.Fatal("a 1.1 ring file commits on Wait")
	}
	// Up to the first record only: the second stays the producer's debt.
	if err := src.CommitTo(ends[0]); err != nil || src.ConsumerPos() != ends[0] {
		t.Fatalf("CommitTo(%d): %v, consumer %d", ends[0], err, src.ConsumerPos())
	}
	src.Wake() // so that Wait returns at once
	if err := src.Wait(); err != nil || src.ConsumerPos() != ends[0] {
		t.Fatalf("Wait: %v, consumer %d: Wait must not commit", err, src.ConsumerPos())
	}
	if err := src.CommitTo(ends[1]); err != nil {
		t.Fatal(err)
	}
	if r := src.Ring(); r.Fill != 0 || src.ConsumerPos() != fr.Ring.ProducerPos() {
		t.Fatalf("after commit: fill %v, consumer %d producer %d", r.Fill, src.ConsumerPos(), fr.Ring.ProducerPos())
	}
	src.Release()

	// Wake and Close interrupt a Wait that would otherwise last an hour.
	src, err = OpenFile(path, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		name string
		do   func()
		want error
	}{{"Wake", src.Wake, nil}, {"Close", func() { src.Close() }, ErrClosed}} {
		done := make(chan error, 1)
		go func() { done <- src.Wait() }()
		time.Sleep(5 * time.Millisecond)
		step.do()
		select {
		case err := <-done:
			if !errors.Is(err, step.want) {
				t.Fatalf("Wait after %s: %v, want %v", step.name, err, step.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s did not interrupt Wait", step.name)
		}
	}
	if err := src.Wait(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Wait after Close: %v", err)
	}
	if err := src.Release(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := OpenDevice("/nonexistent/smith"); err == nil {
		t.Error("missing device opened")
	}
	if _, err := OpenFile("/nonexistent/ring", time.Millisecond); err == nil {
		t.Error("missing ring file opened")
	}
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, make([]byte, 100), 0o600)
	if _, err := OpenFile(bad, time.Millisecond); err == nil {
		t.Error("a file that is not a ring opened")
	}
}
