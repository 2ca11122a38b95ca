package sink

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"smith/agent/metrics"
)

func TestRotatingFileKeepsMaxFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.json")
	rf, err := OpenRotatingFile(path, 4096, 2)
	if err != nil {
		t.Fatal(err)
	}
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

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestWriterSinkCountsFailedWrites(t *testing.T) {
	c := &metrics.Counters{}
	log := logrus.New()
	log.Out = io.Discard
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
