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

// netlinkRcvBuf is the socket receive buffer a Netlink asks for (root may
// go beyond rmem_max): records arrive one message each, and the buffer
// absorbs bursts. What overflows it the module counts in netlink_failed.
const netlinkRcvBuf = 16 << 20

// netlinkBuf holds one datagram.
const netlinkBuf = 1 << 20

// NetlinkStats counts what a Netlink has received since it was opened.
type NetlinkStats struct {
	Records     uint64 // records returned by Next, lost records included
	LostRecords uint64 // "lost N" records returned
	Lost        uint64 // sum of their counts
	Skipped     uint64 // messages of other types than SMITH_NLMSG_RECORD
	Overruns    uint64 // receives that found the socket overflowed (ENOBUFS)
}

// Netlink is a connection to the module's netlink transport (module
// parameter send_type=1): a socket registered with SMITH_NLMSG_HELLO, to
// which the module unicasts one SMITH_NLMSG_RECORD message per record. A
// socket has no replay: what the module could not send (no listener,
// socket full) it counts in netlink_failed, and what was received is gone
// from the kernel, so there is nothing to commit.
//
// Records are returned as by a Reader: Pos is a byte counter of the
// records received since the connection opened (aligned as in the ring),
// and a view is valid until the next Next. Next, Wait and Read belong to
// one goroutine; Close, SetDeadline and Wake may be called from any.
type Netlink struct {
	fd      int
	closefd int // signalled by Close
	wakefd  int // signalled by Wake
	buf     []byte
	msgs    []byte // unparsed rest of the last datagram
	pos     uint64
	stats   NetlinkStats
	// mu keeps the descriptors open while Next or Wait use them.
	mu       sync.RWMutex
	closed   atomic.Bool
	deadline atomic.Int64 // unix ns; 0 none
}

// DialNetlink opens a socket of the module's protocol and registers it as
// the listener. It fails when the module is not loaded with send_type=1.
func DialNetlink() (*Netlink, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, NetlinkProto)
	if err != nil {
		return nil, fmt.Errorf("netlink socket, protocol %d (is the smith module loaded with send_type=1?): %w", NetlinkProto, err)
	}
	n := &Netlink{fd: fd, closefd: -1, wakefd: -1}
	if err := n.init(); err != nil {
		n.release()
		return nil, err
	}
	return n, nil
}

func (n *Netlink) init() error {
	if err := unix.Bind(n.fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink bind: %w", err)
	}
	// Best effort: without CAP_NET_ADMIN the default buffer stays.
	_ = unix.SetsockoptInt(n.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, netlinkRcvBuf)
	hello := make([]byte, unix.NLMSG_HDRLEN)
	binary.NativeEndian.PutUint32(hello[0:], uint32(len(hello)))
	binary.NativeEndian.PutUint16(hello[4:], NlmsgHello)
	binary.NativeEndian.PutUint32(hello[8:], 1) // seq
	if err := unix.Sendto(n.fd, hello, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink hello to the module: %w", err)
	}
	var err error
	if n.closefd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return fmt.Errorf("eventfd: %w", err)
	}
	if n.wakefd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return fmt.Errorf("eventfd: %w", err)
	}
	n.buf = make([]byte, netlinkBuf)
	return nil
}

// Next returns the next record of the last datagram, receiving another
// without blocking when it is used up; ok is false when none is ready.
// Messages of other types are skipped; a message whose length or record
// does not add up gives an error wrapping ErrCorrupt (the rest of its
// datagram is dropped, and the next call goes on with the next one).
func (n *Netlink) Next() (rec Record, ok bool, err error) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.closed.Load() {
		return Record{}, false, ErrClosed
	}
	for {
		if len(n.msgs) >= unix.NLMSG_HDRLEN {
			return n.parse()
		}
		got, _, err := unix.Recvfrom(n.fd, n.buf, unix.MSG_DONTWAIT)
		switch {
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
			return Record{}, false, nil
		case errors.Is(err, unix.ENOBUFS):
			// The socket overflowed: the module counted the records it
			// could not send (netlink_failed).
			n.stats.Overruns++
			continue
		case err != nil:
			return Record{}, false, fmt.Errorf("netlink receive: %w", err)
		}
		n.msgs = n.buf[:got]
	}
}

// parse takes the next message of n.msgs.
func (n *Netlink) parse() (Record, bool, error) {
	for len(n.msgs) >= unix.NLMSG_HDRLEN {
		l := int(binary.NativeEndian.Uint32(n.msgs[0:]))
		typ := binary.NativeEndian.Uint16(n.msgs[4:])
		if l < unix.NLMSG_HDRLEN || l > len(n.msgs) {
			left := len(n.msgs)
			n.msgs = nil
			return Record{}, false, fmt.Errorf("netlink message of %d bytes in a %d-byte datagram: %w", l, left, ErrCorrupt)
		}
		data := n.msgs[unix.NLMSG_HDRLEN:l]
		n.msgs = n.msgs[min(len(n.msgs), (l+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1)):]
		if typ != NlmsgRecord {
			n.stats.Skipped++
			continue
		}
		if len(data) < SizeofRecHdr {
			return Record{}, false, fmt.Errorf("netlink record message of %d bytes, shorter than a record header: %w", len(data), ErrCorrupt)
		}
		rl := int(binary.LittleEndian.Uint32(data) & RecLenMask)
		if rl != len(data) {
			return Record{}, false, fmt.Errorf("netlink record of length %d in a %d-byte message: %w", rl, len(data), ErrCorrupt)
		}
		rec := Record{Pos: n.pos, Type: RecType(binary.LittleEndian.Uint16(data[4:])),
			Flags: RecFlags(binary.LittleEndian.Uint16(data[6:])), Raw: data[:rl:rl]}
		n.pos += uint64(RecAlign(uint32(rl)))
		n.stats.Records++
		if c, ok := rec.LostCount(); ok {
			n.stats.LostRecords++
			n.stats.Lost += c
		}
		return rec, true, nil
	}
	return Record{}, false, nil
}

// ReadPos is the position after the last record returned.
func (n *Netlink) ReadPos() uint64 { return n.pos }

// Stats returns what the connection has received so far.
func (n *Netlink) Stats() NetlinkStats { return n.stats }

// SetDeadline makes a blocked Read or Wait return ErrDeadline once t has
// passed; the zero time removes it. Safe from any goroutine; a Wait asleep
// sees a new deadline within DefaultWakeupTimeout.
func (n *Netlink) SetDeadline(t time.Time) {
	if t.IsZero() {
		n.deadline.Store(0)
		return
	}
	n.deadline.Store(max(t.UnixNano(), 1))
}

// Wait blocks until a datagram is ready (or one is left to parse). It
// returns ErrClosed after Close, ErrDeadline after the deadline and
// ErrWoken after Wake. It may return early: call Next again.
func (n *Netlink) Wait() error {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if len(n.msgs) >= unix.NLMSG_HDRLEN {
		return nil
	}
	fds := []unix.PollFd{{Fd: int32(n.fd), Events: unix.POLLIN},
		{Fd: int32(n.closefd), Events: unix.POLLIN}, {Fd: int32(n.wakefd), Events: unix.POLLIN}}
	for {
		if n.closed.Load() {
			return ErrClosed
		}
		sleep := DefaultWakeupTimeout
		if d := n.deadline.Load(); d != 0 {
			left := time.Duration(d - time.Now().UnixNano())
			if left <= 0 {
				return ErrDeadline
			}
			sleep = min(sleep, left)
		}
		got, err := unix.Poll(fds, timeoutMs(sleep))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("poll netlink socket: %w", err)
		}
		switch {
		case n.closed.Load():
			return ErrClosed
		case fds[2].Revents != 0:
			var buf [8]byte
			unix.Read(n.wakefd, buf[:]) // rearm
			return ErrWoken
		case got > 0:
			return nil
		}
	}
}

// Read returns the next record, blocking (in Wait) until there is one.
func (n *Netlink) Read() (Record, error) {
	for {
		rec, ok, err := n.Next()
		if err != nil || ok {
			return rec, err
		}
		if err := n.Wait(); err != nil && !errors.Is(err, ErrWoken) {
			return Record{}, err
		}
	}
}

// Wake makes a Wait in progress (or the next one) return ErrWoken.
func (n *Netlink) Wake() {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if !n.closed.Load() {
		_ = eventfdSignal(n.wakefd)
	}
}

// Close unregisters (closes the socket, so the module stops sending) and
// interrupts a Wait in progress, which returns ErrClosed, as do later
// calls. Safe from any goroutine, and more than once.
func (n *Netlink) Close() error {
	if n.closed.Swap(true) {
		return nil
	}
	err := eventfdSignal(n.closefd)
	n.mu.Lock()
	defer n.mu.Unlock()
	return errors.Join(err, n.release())
}

func (n *Netlink) release() error {
	var errs []error
	for _, fd := range []*int{&n.fd, &n.closefd, &n.wakefd} {
		if *fd >= 0 {
			errs = append(errs, unix.Close(*fd))
			*fd = -1
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close netlink socket: %w", err)
	}
	return nil
}
