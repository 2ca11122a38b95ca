package pipeline

import (
	"sync"

	"smith/agent/sink"
)

// pool holds the free batches, the one freed last taken first: the reader
// refills the batch whose memory a sink has just given back, still in the
// cache, instead of going round every batch of the queue (12 MiB at the
// default, more than the cache holds) as a FIFO would.  Any goroutine
// puts; only the reader takes and waits.
type pool struct {
	mu    sync.Mutex
	free  []*sink.Batch
	ready chan struct{} // a put since the reader last waited
}

func newPool(capacity int) *pool {
	return &pool{free: make([]*sink.Batch, 0, capacity), ready: make(chan struct{}, 1)}
}

func (q *pool) put(b *sink.Batch) {
	q.mu.Lock()
	q.free = append(q.free, b)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default: // the reader is told already
	}
}

// take returns the batch freed last, or nil when none is free; after nil,
// a receive from ready says when to look again.
func (q *pool) take() *sink.Batch {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.free)
	if n == 0 {
		return nil
	}
	b := q.free[n-1]
	q.free[n-1] = nil
	q.free = q.free[:n-1]
	return b
}
