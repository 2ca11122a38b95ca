package pipeline

import (
	"testing"
	"time"

	"smith/agent/sink"
)

// The batch freed last is refilled first (its memory is the one still in
// the cache), and a put wakes a reader waiting on ready.
func TestPoolTakesTheBatchFreedLast(t *testing.T) {
	q := newPool(4)
	a, b, c := sink.NewBatch(nil), sink.NewBatch(nil), sink.NewBatch(nil)
	q.put(a)
	q.put(b)
	q.put(c)
	for i, want := range []*sink.Batch{c, b, a, nil} {
		if got := q.take(); got != want {
			t.Fatalf("take %d: %p, want %p", i, got, want)
		}
	}
	<-q.ready // the puts above left one signal
	go func() {
		time.Sleep(10 * time.Millisecond)
		q.put(a)
	}()
	select {
	case <-q.ready:
	case <-time.After(10 * time.Second):
		t.Fatal("a put did not signal ready")
	}
	if got := q.take(); got != a {
		t.Fatalf("after ready: %p, want %p", got, a)
	}
}
