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

// Waker is a Waiter that Reader.Wake can interrupt: every Waiter of this
// package is one.
type Waker interface {
	Waiter
	// Wake makes a Wait in progress, or the next one, return ErrWoken.
	Wake()
}

// IntervalWaiter is the polling fallback: Wait sleeps for a fixed interval,
// or less when a Reader, from the producer's rate, expects its records to
// be due sooner.  Meant for tests and producers that cannot signal (a
// ring in a file); the agent waits on the device or an eventfd instead.
type IntervalWaiter struct {
	d    time.Duration
	once sync.Once
	done chan struct{}
	wake chan struct{} // one pending Wake
}

// poller is a Waiter that nothing wakes when records come: it looks
// again after a while.  Reader.Wait asks it to look sooner when the
// producer's rate says the records will be due before its interval ends.
type poller interface {
	Waiter
	polls()
}

func (w *IntervalWaiter) polls() {}

// NewIntervalWaiter returns a Waiter whose Wait returns after d.
func NewIntervalWaiter(d time.Duration) *IntervalWaiter {
	return &IntervalWaiter{d: d, done: make(chan struct{}), wake: make(chan struct{}, 1)}
}

// Wait sleeps for the interval or the timeout, whichever is shorter, or
// until Close.
func (w *IntervalWaiter) Wait(timeout time.Duration) error {
	t := time.NewTimer(min(w.d, timeout))
	defer t.Stop()
	select {
	case <-w.done:
		return ErrClosed
	case <-w.wake:
		return ErrWoken
	case <-t.C:
		return nil
	}
}

// Wake makes a Wait in progress (or the next one) return ErrWoken.
func (w *IntervalWaiter) Wake() {
	select {
	case w.wake <- struct{}{}:
	default: // one is pending already
	}
}

// Close interrupts a Wait in progress and makes later ones fail.
func (w *IntervalWaiter) Close() error {
	w.once.Do(func() { close(w.done) })
	return nil
}
