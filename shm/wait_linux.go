package shm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// fdWaiter epolls one descriptor plus two eventfds of its own: one that
// Close signals, so a blocked Wait always returns on Close, and one that
// Wake signals (Wait returns ErrWoken).
type fdWaiter struct {
	epfd    int
	closefd int
	wakefd  int
	fd      int
	drain   bool // fd is an eventfd: read it to rearm

	// mu keeps the descriptors open while a Wait uses them: Wait holds it
	// shared, Close signals first (waking Wait) and then takes it
	// exclusively to close them, so no Wait can reach a reused number.
	mu     sync.RWMutex
	closed atomic.Bool
}

func newFDWaiter(fd int, drain bool) (*fdWaiter, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	closefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		unix.Close(closefd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	w := &fdWaiter{epfd: epfd, closefd: closefd, wakefd: wakefd, fd: fd, drain: drain}
	for _, f := range []int{fd, closefd, wakefd} {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(f)}
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, f, &ev); err != nil {
			unix.Close(epfd)
			unix.Close(closefd)
			unix.Close(wakefd)
			return nil, fmt.Errorf("epoll_ctl add fd %d: %w", f, err)
		}
	}
	return w, nil
}

// Wait blocks until the descriptor is readable, the timeout or Close.
func (w *fdWaiter) Wait(timeout time.Duration) error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	var evs [3]unix.EpollEvent
	for {
		if w.closed.Load() {
			return ErrClosed
		}
		n, err := unix.EpollWait(w.epfd, evs[:], timeoutMs(timeout))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("epoll_wait: %w", err)
		}
		woken, ready := false, false
		for _, ev := range evs[:n] {
			switch int(ev.Fd) {
			case w.closefd:
				return ErrClosed
			case w.wakefd:
				woken = true
			default:
				ready = true
			}
		}
		if woken {
			var buf [8]byte
			unix.Read(w.wakefd, buf[:]) // rearm; EAGAIN if another Wait drained it
			return ErrWoken
		}
		if w.drain && ready {
			var buf [8]byte
			// EAGAIN: another reader of the eventfd drained it first.
			if _, err := unix.Read(w.fd, buf[:]); err != nil && !errors.Is(err, unix.EAGAIN) {
				return fmt.Errorf("read eventfd: %w", err)
			}
		}
		return nil
	}
}

// Wake makes a Wait in progress (or the next one) return ErrWoken. After
// Close it does nothing.
func (w *fdWaiter) Wake() {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if !w.closed.Load() {
		_ = eventfdSignal(w.wakefd) // fails only if the counter is saturated: readable anyway
	}
}

// Close interrupts a Wait in progress and releases the epoll descriptors
// (not the watched one, which its owner closes).
func (w *fdWaiter) Close() error {
	if w.closed.Swap(true) {
		return nil
	}
	if err := eventfdSignal(w.closefd); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return errors.Join(unix.Close(w.epfd), unix.Close(w.closefd), unix.Close(w.wakefd))
}

// timeoutMs is a poll timeout in whole milliseconds, rounded up so a
// short positive timeout does not spin; negative stays "no timeout".
func timeoutMs(d time.Duration) int {
	if d < 0 {
		return -1
	}
	return int(min((d+time.Millisecond-1)/time.Millisecond, 1<<30))
}

func eventfdSignal(fd int) error {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	// EAGAIN: the counter is saturated, so it is readable anyway.
	if _, err := unix.Write(fd, one[:]); err != nil && !errors.Is(err, unix.EAGAIN) {
		return fmt.Errorf("signal eventfd: %w", err)
	}
	return nil
}

// Eventfd is a wake-up channel for rings without a device: the producer
// calls Signal when a commit says the reader may be asleep, and the reader
// uses the Eventfd as its Waiter. Across processes, pass FD to the producer
// (for example as an inherited descriptor) and have it write(2) an 8-byte 1.
type Eventfd struct {
	fd int
	w  *fdWaiter
}

// NewEventfd creates a non-blocking, close-on-exec eventfd.
func NewEventfd() (*Eventfd, error) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	w, err := newFDWaiter(fd, true)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &Eventfd{fd: fd, w: w}, nil
}

// FD is the eventfd's descriptor, for handing to another process.
func (e *Eventfd) FD() int { return e.fd }

// Signal wakes a reader waiting on the Eventfd. After Close it does nothing.
func (e *Eventfd) Signal() error {
	e.w.mu.RLock()
	defer e.w.mu.RUnlock()
	if e.w.closed.Load() {
		return nil
	}
	return eventfdSignal(e.fd)
}

// Wait blocks until Signal, the timeout or Close (or Wake: ErrWoken).
func (e *Eventfd) Wait(timeout time.Duration) error { return e.w.Wait(timeout) }

// Wake makes a Wait in progress (or the next one) return ErrWoken.
func (e *Eventfd) Wake() { e.w.Wake() }

// Close interrupts a Wait in progress and closes the eventfd.
func (e *Eventfd) Close() error {
	if e.w.closed.Load() {
		return nil
	}
	err := e.w.Close()
	e.w.mu.Lock()
	defer e.w.mu.Unlock()
	if e.fd >= 0 {
		err = errors.Join(err, unix.Close(e.fd))
		e.fd = -1
	}
	return err
}
