package source

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"smith/agent/metrics"
	"smith/shm"
)

// netlink reads the module's netlink transport (module parameter
// send_type=1): one SMITH_NLMSG_RECORD message per record, unicast to the
// socket that registered with SMITH_NLMSG_HELLO.  A socket has no replay:
// what the module could not send (no listener, socket buffer full) it
// counts in netlink_failed, and what the agent read is gone from the
// kernel, so Commit has nothing to give back.
//
// Positions are a byte counter of the records received since the source
// opened, so the sequence state does not match across restarts: each
// start continues above the high-water mark.
type netlink struct {
	fd      int
	closefd int
	dev     *shm.Device // for ioctls (stats, version); nil if not openable
	module  Module

	buf    []byte
	msgs   []byte // unparsed rest of the last datagram
	pos    uint64 // position after the last record returned
	cons   atomic.Uint64
	lost   atomic.Uint64
	closed atomic.Bool
	mu     sync.RWMutex // keeps fds open while Wait polls them
}

// OpenNetlink registers with the module's netlink socket.  The device, if
// present, is opened too for the module's version and counters.
func OpenNetlink(device string) (Source, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, shm.NetlinkProto)
	if err != nil {
		return nil, fmt.Errorf("netlink socket, protocol %d (is the smith module loaded with send_type=1?): %w", shm.NetlinkProto, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink bind: %w", err)
	}
	// Records arrive one message each: a large buffer absorbs bursts.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16<<20)
	hello := make([]byte, unix.NLMSG_HDRLEN)
	binary.NativeEndian.PutUint32(hello[0:], uint32(len(hello)))
	binary.NativeEndian.PutUint16(hello[4:], shm.NlmsgHello)
	binary.NativeEndian.PutUint32(hello[8:], 1) // seq
	if err := unix.Sendto(fd, hello, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink hello to the module: %w", err)
	}
	closefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	s := &netlink{fd: fd, closefd: closefd, buf: make([]byte, 1<<20), module: Module{Transport: "netlink"}}
	// The device gives the version and counters; without it (another
	// reader holds it) records still come over netlink.
	if d, err := shm.OpenDevice(device); err == nil {
		s.dev = d
		if info, err := d.Info(); err == nil {
			s.module.Version = cstring(info.Version[:])
			s.module.ABI = fmt.Sprintf("%d.%d", info.ABIMajor, info.ABIMinor)
		}
	}
	return s, nil
}

func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// Next returns the next record of the last datagram, receiving another
// (without blocking) when it is used up.  The view is valid until the
// next receive, which happens only after the record was processed.
func (s *netlink) Next() (shm.Record, bool, error) {
	for {
		if len(s.msgs) >= unix.NLMSG_HDRLEN {
			l := int(binary.NativeEndian.Uint32(s.msgs[0:]))
			typ := binary.NativeEndian.Uint16(s.msgs[4:])
			if l < unix.NLMSG_HDRLEN || l > len(s.msgs) {
				s.msgs = nil
				return shm.Record{}, false, fmt.Errorf("netlink message of %d bytes in a %d-byte datagram: %w", l, len(s.msgs), shm.ErrCorrupt)
			}
			data := s.msgs[unix.NLMSG_HDRLEN:l]
			s.msgs = s.msgs[min(len(s.msgs), (l+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1)):]
			if typ != shm.NlmsgRecord || len(data) < shm.SizeofRecHdr {
				continue
			}
			n := int(binary.LittleEndian.Uint32(data) & shm.RecLenMask)
			if n < shm.SizeofRecHdr || n > len(data) {
				return shm.Record{}, false, fmt.Errorf("netlink record of length %d in a %d-byte message: %w", n, len(data), shm.ErrCorrupt)
			}
			rec := shm.Record{Pos: s.pos, Type: shm.RecType(binary.LittleEndian.Uint16(data[4:])),
				Flags: shm.RecFlags(binary.LittleEndian.Uint16(data[6:])), Raw: data[:n:n]}
			s.pos += uint64(shm.RecAlign(uint32(n)))
			if c, ok := rec.LostCount(); ok {
				s.lost.Add(c)
			}
			return rec, true, nil
		}
		n, _, err := unix.Recvfrom(s.fd, s.buf, unix.MSG_DONTWAIT)
		switch {
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
			return shm.Record{}, false, nil
		case errors.Is(err, unix.ENOBUFS):
			// The socket overflowed: the module counted the records it
			// could not send (netlink_failed).
			continue
		case err != nil:
			return shm.Record{}, false, fmt.Errorf("netlink receive: %w", err)
		}
		s.msgs = s.buf[:n]
	}
}

// CommitTo marks the records before pos as consumed (there is nothing to
// give back to the kernel).
func (s *netlink) CommitTo(pos uint64) error {
	if pos < s.cons.Load() || pos > s.pos {
		return fmt.Errorf("commit to %d: outside [%d, %d]", pos, s.cons.Load(), s.pos)
	}
	s.cons.Store(pos)
	return nil
}

// CommitsOnWait implements Source: Wait commits nothing.
func (s *netlink) CommitsOnWait() bool { return false }

// Wait blocks until a datagram is ready or Close.
func (s *netlink) Wait() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.msgs) >= unix.NLMSG_HDRLEN {
		return nil
	}
	fds := []unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLIN}, {Fd: int32(s.closefd), Events: unix.POLLIN}}
	for {
		if s.closed.Load() {
			return ErrClosed
		}
		_, err := unix.Poll(fds, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("poll netlink socket: %w", err)
		}
		if s.closed.Load() {
			return ErrClosed
		}
		if fds[1].Revents != 0 {
			var buf [8]byte
			unix.Read(s.closefd, buf[:]) // a Wake: rearm
		}
		return nil
	}
}

func (s *netlink) ConsumerPos() uint64 { return s.cons.Load() }

// ProducerPos is 0: a socket is never read twice.
func (s *netlink) ProducerPos() uint64 { return 0 }

// Size is nominal: nothing is buffered on the agent's side.
func (s *netlink) Size() uint64 { return shm.RingDefaultSize }

// Wake makes Wait return.
func (s *netlink) Wake() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	unix.Write(s.closefd, one[:])
}

// Close interrupts Wait for good.
func (s *netlink) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.Wake()
	return nil
}

// Release closes the socket and the device.
func (s *netlink) Release() error {
	s.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	errs := []error{unix.Close(s.fd), unix.Close(s.closefd)}
	if s.dev != nil {
		errs = append(errs, s.dev.Close())
	}
	return errors.Join(errs...)
}

func (s *netlink) Module() Module { return s.module }

// Ring reports the module's counters (by ioctl) when the device is open.
func (s *netlink) Ring() metrics.Ring {
	r := metrics.Ring{Lost: s.lost.Load()}
	if s.dev == nil {
		return r
	}
	st, err := s.dev.Stats()
	if err != nil {
		return r
	}
	r.Written, r.DroppedFull, r.DroppedTooLarge, r.DroppedFault = st.Written, st.DroppedFull, st.DroppedTooLarge, st.DroppedFault
	r.NetlinkFailed = st.NetlinkFailed
	r.Truncated, r.HookMissed, r.LostRecords = st.Truncated, st.HookMissed, st.LostRecords
	return r
}
