package source

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"smith/shm"
)

// waker blocks the reading goroutine until the device is readable (the
// module has records due past our read position), the timeout or the poll
// interval passed (a ring file, which has no wake-up), Wake (work other
// than records, such as task results to ship: shm.ErrWoken), or Close.
// Spurious returns are allowed: the caller looks at the ring again.
type waker struct {
	fd       int           // -1: none
	interval time.Duration // 0: none
	efd      int
	closed   atomic.Bool
	// mu keeps the descriptors open while Wait polls them.
	mu sync.RWMutex
}

func newWaker(fd int, interval time.Duration) (*waker, error) {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	return &waker{fd: fd, interval: interval, efd: efd}, nil
}

// Wait implements shm.Waiter.
func (w *waker) Wait(limit time.Duration) error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed.Load() {
		return ErrClosed
	}
	fds := []unix.PollFd{{Fd: int32(w.efd), Events: unix.POLLIN}}
	if w.fd >= 0 {
		fds = append(fds, unix.PollFd{Fd: int32(w.fd), Events: unix.POLLIN})
	}
	if w.interval > 0 {
		limit = min(limit, w.interval)
	}
	timeout := max(1, int((limit+time.Millisecond-1)/time.Millisecond))
	for {
		_, err := unix.Poll(fds, timeout)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("poll: %w", err)
		}
		break
	}
	if w.closed.Load() {
		return ErrClosed
	}
	if fds[0].Revents != 0 {
		var buf [8]byte
		unix.Read(w.efd, buf[:]) // rearm; EAGAIN if another read drained it
		return shm.ErrWoken
	}
	return nil
}

// Wake makes a Wait in progress (or the next one) return.
func (w *waker) Wake() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	unix.Write(w.efd, one[:])
}

// Close makes Wait return ErrClosed from now on and releases the eventfd
// once no Wait uses it.
func (w *waker) Close() error {
	if w.closed.Swap(true) {
		return nil
	}
	w.Wake()
	w.mu.Lock()
	defer w.mu.Unlock()
	return unix.Close(w.efd)
}
