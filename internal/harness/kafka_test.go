// SPDX-License-Identifier: GPL-2.0

package harness

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// brokerHolding is a broker (o) whose topic holds the records r0 to
// r(n-1), and a context for the test's requests; both end with the test.
func brokerHolding(t *testing.T, o BrokerOptions, n int) (*kfake.Cluster, context.Context) {
	t.Helper()
	b, err := NewBroker(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	var values [][]byte
	for i := range n {
		values = append(values, fmt.Appendf(nil, "r%d", i))
	}
	if err := Produce(ctx, "", b.ListenAddrs(), values...); err != nil {
		t.Fatal(err)
	}
	return b, ctx
}

func TestBrokerAndTopicReader(t *testing.T) {
	b, ctx := brokerHolding(t, BrokerOptions{DataDir: t.TempDir()}, 3)
	r, err := NewTopicReader("", b.ListenAddrs()...)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if n, err := r.End(ctx); err != nil || n != 3 {
		t.Fatalf("end %d, %v", n, err)
	}
	got, err := r.ReadAll(ctx, 20*time.Second)
	if err != nil || len(got) != 3 || string(got[0]) != "r0" || string(got[2]) != "r2" {
		t.Fatalf("read %q, %v", got, err)
	}
}

func TestSeqCounterCountsEachNumberOnce(t *testing.T) {
	var c SeqCounter
	for _, ev := range []string{
		`{"data_type":"59","seq":1,"stream":"00aa"}`,
		`{"data_type":"59","seq":70000,"stream":"00aa"}`, // another chunk
		`{"data_type":"1","seq":2,"stream":"00aa","lost":5}`,
		`{"data_type":"59","seq":1,"stream":"00aa"}`, // again
		`{"data_type":"42","seq":3,"stream":"00aa","args":["\"seq\":9"]}`,
	} {
		if err := c.Add([]byte(ev)); err != nil {
			t.Fatalf("%s: %v", ev, err)
		}
	}
	if c.Events != 3 || c.Duplicates != 1 || c.LossReports != 1 {
		t.Fatalf("events %d duplicates %d loss reports %d; want 3, 1, 1", c.Events, c.Duplicates, c.LossReports)
	}
	for _, bad := range []string{`{"seq":4,"stream":"00bb"}`, `{"stream":"00aa"}`, `{"seq":5}`, `{"seq":x,"stream":"00aa"}`} {
		if err := c.Add([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestTopicReaderAtDrainsFromAnOffset(t *testing.T) {
	b, ctx := brokerHolding(t, BrokerOptions{}, 5)
	r, err := NewTopicReaderAt("", 2, b.ListenAddrs()...)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got []string
	n, err := r.Drain(ctx, time.Second, func(rec *kgo.Record) error { got = append(got, string(rec.Value)); return nil })
	if err != nil || n != 3 || fmt.Sprint(got) != "[r2 r3 r4]" {
		t.Fatalf("drained %d %v, %v; want r2 to r4", n, got, err)
	}
}
