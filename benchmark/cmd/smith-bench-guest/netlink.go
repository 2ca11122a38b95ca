//go:build linux

package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"

	"smith/shm"
)

// netlinkReader consumes the netlink transport: it registers with the
// module (SMITH_NLMSG_HELLO) and counts the records it receives.
type netlinkReader struct {
	fd      int
	records atomic.Uint64
	tests   atomic.Uint64 // SMITH_REC_TEST records
	wg      sync.WaitGroup
	closed  atomic.Bool
}

func openNetlink() (*netlinkReader, error) {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, shm.NetlinkProto)
	if err != nil {
		return nil, fmt.Errorf("netlink socket (protocol %d): %w", shm.NetlinkProto, err)
	}
	// A large receive buffer so a burst is not dropped for lack of it
	// (root may go beyond rmem_max with SO_RCVBUFFORCE).
	_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, 32<<20)
	// Wake up regularly so Close is noticed: closing a socket does not
	// interrupt a recvfrom blocked on it.
	tv := syscall.Timeval{Usec: 200000}
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("netlink socket timeout: %w", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("bind netlink socket: %w", err)
	}
	hello := make([]byte, syscall.NLMSG_HDRLEN)
	binary.LittleEndian.PutUint32(hello[0:], uint32(len(hello)))
	binary.LittleEndian.PutUint16(hello[4:], shm.NlmsgHello)
	binary.LittleEndian.PutUint32(hello[12:], uint32(syscall.Getpid()))
	if err := syscall.Sendto(fd, hello, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("register with the module (netlink hello): %w", err)
	}
	r := &netlinkReader{fd: fd}
	r.wg.Add(1)
	go r.run()
	return r, nil
}

func (r *netlinkReader) run() {
	defer r.wg.Done()
	buf := make([]byte, 1<<20)
	for {
		if r.closed.Load() {
			return
		}
		n, _, err := syscall.Recvfrom(r.fd, buf, 0)
		if err != nil {
			// EAGAIN: the timeout, look at closed again.  ENOBUFS: the
			// socket overran, and the module counts those sends as
			// failed.
			if errors.Is(err, syscall.EINTR) || errors.Is(err, syscall.EAGAIN) ||
				errors.Is(err, syscall.ENOBUFS) {
				continue
			}
			return
		}
		b := buf[:n]
		for len(b) >= syscall.NLMSG_HDRLEN {
			l := int(binary.LittleEndian.Uint32(b[0:]))
			typ := binary.LittleEndian.Uint16(b[4:])
			if l < syscall.NLMSG_HDRLEN || l > len(b) {
				break
			}
			if typ == shm.NlmsgRecord {
				r.records.Add(1)
				if p := b[syscall.NLMSG_HDRLEN:l]; len(p) >= shm.SizeofRecHdr &&
					shm.RecType(binary.LittleEndian.Uint16(p[4:])) == shm.RecTest {
					r.tests.Add(1)
				}
			}
			b = b[min(len(b), (l+3)&^3):]
		}
	}
}

func (r *netlinkReader) status() string {
	return fmt.Sprintf("netlink reader: %d records", r.records.Load())
}

func (r *netlinkReader) received() uint64    { return r.records.Load() }
func (r *netlinkReader) testRecords() uint64 { return r.tests.Load() }

// Close stops the receive loop (within the socket's receive timeout) and
// closes the socket.
func (r *netlinkReader) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	r.wg.Wait()
	return syscall.Close(r.fd)
}
