// SPDX-License-Identifier: GPL-2.0

package pipeline

import (
	"sync"
	"time"

	"smith/agent/sink"
)

// batchPool holds the batches no sink has: last in, first out, so the
// reader refills the batch it just got back, whose buffer has grown to
// a batch's size already and is in the cache, instead of cycling through
// every batch of the queue (each grown, paged in and cached in turn).
// The reader takes; the sinks' release puts back.
type batchPool struct {
	mu    sync.Mutex
	free  []*sink.Batch
	avail chan struct{} // a token after each put: a waiter looks again
}

func newBatchPool(n int, release func(*sink.Batch)) *batchPool {
	bp := &batchPool{free: make([]*sink.Batch, 0, n), avail: make(chan struct{}, 1)}
	for range n {
		bp.free = append(bp.free, sink.NewBatch(release))
	}
	return bp
}

func (bp *batchPool) put(b *sink.Batch) {
	bp.mu.Lock()
	bp.free = append(bp.free, b)
	bp.mu.Unlock()
	select {
	case bp.avail <- struct{}{}:
	default:
	}
}

// tryGet returns the batch put last, or nil when none is free.
func (bp *batchPool) tryGet() *sink.Batch {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	n := len(bp.free)
	if n == 0 {
		return nil
	}
	b := bp.free[n-1]
	bp.free = bp.free[:n-1]
	return b
}

// get waits for a batch; nil when stop (or timeout) ends the wait first.
func (bp *batchPool) get(stop <-chan struct{}, timeout <-chan time.Time) *sink.Batch {
	for {
		if b := bp.tryGet(); b != nil {
			return b
		}
		select {
		case <-bp.avail:
		case <-stop:
			return nil
		case <-timeout:
			return nil
		}
	}
}

// waitFree waits until n batches are free; false when stop or timeout
// ends the wait first.  Only the reader takes batches, so none is taken
// meanwhile.
func (bp *batchPool) waitFree(n int, stop <-chan struct{}, timeout <-chan time.Time) bool {
	for {
		bp.mu.Lock()
		k := len(bp.free)
		bp.mu.Unlock()
		if k >= n {
			return true
		}
		select {
		case <-bp.avail:
		case <-stop:
			return false
		case <-timeout:
			return false
		}
	}
}
