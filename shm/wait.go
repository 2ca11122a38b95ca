package shm

import (
	"sync"
	"time"
)

// Waiter blocks a Reader until producers may have published records, or
// timeout passed. Wait may return early (a spurious wake-up costs one look
// at the ring) and returns nil on the timeout; after Close it returns
// ErrClosed, and Close interrupts a Wait in progress. A Waiter woken for
// work other than records may return ErrWoken.
//
// Which Waiter fits:
//   - the device: OpenDevice's reader epolls /dev/smith, which is readable
//     when the module's ready() predicate holds (smith_abi.h);
//   - a shared file mapping: an Eventfd the producer signals when its
//     commit returns true;
//   - tests without either: NewIntervalWaiter polls at a fixed interval.
type Waiter interface {
	Wait(timeout time.Duration) error
	Close() error
}

// IntervalWaiter is the polling fallback: Wait sleeps for a fixed interval.
// Meant for tests and producers that cannot signal; the agent waits on the
// device or an eventfd instead.
type IntervalWaiter struct {
	d    time.Duration
	once sync.Once
	done chan struct{}
}

// NewIntervalWaiter returns a Waiter whose Wait returns after d.
func NewIntervalWaiter(d time.Duration) *IntervalWaiter {
	return &IntervalWaiter{d: d, done: make(chan struct{})}
}

// Wait sleeps for the interval or the timeout, whichever is shorter, or
// until Close.
func (w *IntervalWaiter) Wait(timeout time.Duration) error {
	t := time.NewTimer(min(w.d, timeout))
	defer t.Stop()
	select {
	case <-w.done:
		return ErrClosed
	case <-t.C:
		return nil
	}
}

// Close interrupts a Wait in progress and makes later ones fail.
func (w *IntervalWaiter) Close() error {
	w.once.Do(func() { close(w.done) })
	return nil
}
