//go:build vmtest

package hooktest

import (
	"net"
	"net/netip"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"smith/agent/decode"
	"smith/internal/tcptest"
	"smith/shm"
)

// connectCall is one connect(2) made by the test on a locked thread, with
// what the test knows about it afterwards.
type connectCall struct {
	fd, tid   int
	errno     syscall.Errno
	local     netip.AddrPort
	before    time.Time
	after     time.Time
	family    int
	sotype    int
	remote    netip.AddrPort
	nonblock  bool
	wantProto uint16
	// results the record may carry; nil: exactly what the call got
	rec []syscall.Errno
}

func sockaddr(ap netip.AddrPort) unix.Sockaddr {
	if ap.Addr().Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}

func (c *connectCall) run(t *testing.T) {
	t.Helper()
	c.errno = c.runWith(t, func(fd int) syscall.Errno {
		if err := unix.Connect(fd, sockaddr(c.remote)); err != nil {
			return err.(syscall.Errno)
		}
		return 0
	})
}

// runWith makes the socket and connects it with how, on a locked thread.
func (c *connectCall) runWith(t *testing.T, how func(fd int) syscall.Errno) syscall.Errno {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	flags := unix.SOCK_CLOEXEC
	if c.nonblock {
		flags |= unix.SOCK_NONBLOCK
	}
	fd, err := unix.Socket(c.family, c.sotype|flags, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	c.fd = fd
	c.tid = unix.Gettid()
	c.before = time.Now()
	c.errno = how(fd)
	c.after = time.Now()
	if sa, err := unix.Getsockname(fd); err == nil {
		switch a := sa.(type) {
		case *unix.SockaddrInet4:
			c.local = netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
		case *unix.SockaddrInet6:
			c.local = netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port))
		}
	}
	return c.errno
}

func connectInfo(t *testing.T, e *event) decode.Connect {
	t.Helper()
	f, ok := e.fields[shm.FConnect]
	if !ok || !e.HasConnect || len(f.val) != int(unsafe.Sizeof(shm.ConnectInfo{})) {
		t.Fatalf("connect field missing or of the wrong size: %v", e)
	}
	return e.Connect
}

func addrOf(family uint16, b [16]byte) netip.Addr {
	if family == unix.AF_INET {
		return netip.AddrFrom4([4]byte(b[:4]))
	}
	return netip.AddrFrom16(b)
}

func (c *connectCall) check(t *testing.T, s *session) *event {
	t.Helper()
	e := s.find("connect", func(e *event) bool {
		// An attempt interrupted by a signal (Go preempts a thread that
		// is in int $0x80 as if it ran Go code) is recorded, marked,
		// and the kernel restarts the call: the call's record follows.
		if e.Hdr.Type != shm.EvConnect || int(e.Pid) != c.tid ||
			shm.RecFlags(e.Hdr.Flags)&shm.RFRestart != 0 {
			return false
		}
		ci := connectInfo(t, e)
		// The local port tells apart calls on a reused fd number
		// (io_uring's retries, say).
		if c.local.Port() != 0 && ci.LocalPort != 0 && ci.LocalPort != c.local.Port() {
			return false
		}
		return int(ci.FD) == c.fd && ci.RemotePort == c.remote.Port()
	})
	checkCommon(t, e, c.before, c.after)
	if c.rec == nil {
		expectEq(t, "result", e.Result, -int64(c.errno))
	} else {
		ok := false
		for _, r := range c.rec {
			ok = ok || e.Result == -int64(r)
		}
		if !ok {
			t.Errorf("result %d, want one of %v", e.Result, c.rec)
		}
	}
	expectEq(t, "tgid", int(e.Tgid), os.Getpid())
	expectEq(t, "ppid", int(e.Ppid), os.Getppid())
	expectEq(t, "pgid", int(e.Pgid), syscall.Getpgrp())
	self, _ := os.Executable()
	expectStr(t, e, shm.FExe, "exe", self)
	ci := connectInfo(t, e)
	expectEq(t, "family", int(ci.Family), c.family)
	expectEq(t, "protocol", ci.Protocol, c.wantProto)
	expectEq(t, "remote", netip.AddrPortFrom(addrOf(ci.Family, ci.RemoteAddr), ci.RemotePort), c.remote)
	if c.local.IsValid() {
		expectEq(t, "local", netip.AddrPortFrom(addrOf(ci.Family, ci.LocalAddr), ci.LocalPort), c.local)
	}
	return e
}

func listen(t *testing.T, network, addr string) netip.AddrPort {
	t.Helper()
	l, err := tcptest.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.Addr().(*net.TCPAddr).AddrPort()
}

// closedPort is a loopback port nobody listens on.
func closedPort(t *testing.T, network, addr string) netip.AddrPort {
	t.Helper()
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	ap := l.Addr().(*net.TCPAddr).AddrPort()
	l.Close()
	return ap
}

func TestConnect(t *testing.T) {
	s := open(t)
	if in := s.info(); in.HooksAttached&shm.HookConnect == 0 {
		t.Fatalf("connect hook not attached: attached %#x failed %#x", in.HooksAttached, in.HooksFailed)
	}
	v4 := listen(t, "tcp4", "127.0.0.1:0")
	v6 := listen(t, "tcp6", "[::1]:0")

	cases := []struct {
		name string
		call connectCall
		// errnos the call may get; the record must carry the one it got.
		want []syscall.Errno
	}{
		{"TCP IPv4", connectCall{family: unix.AF_INET, sotype: unix.SOCK_STREAM, remote: v4, wantProto: unix.IPPROTO_TCP}, []syscall.Errno{0}},
		{"TCP IPv6", connectCall{family: unix.AF_INET6, sotype: unix.SOCK_STREAM, remote: v6, wantProto: unix.IPPROTO_TCP}, []syscall.Errno{0}},
		{"refused", connectCall{family: unix.AF_INET, sotype: unix.SOCK_STREAM, remote: closedPort(t, "tcp4", "127.0.0.1:0"), wantProto: unix.IPPROTO_TCP}, []syscall.Errno{unix.ECONNREFUSED}},
		{"refused IPv6", connectCall{family: unix.AF_INET6, sotype: unix.SOCK_STREAM, remote: closedPort(t, "tcp6", "[::1]:0"), wantProto: unix.IPPROTO_TCP}, []syscall.Errno{unix.ECONNREFUSED}},
		// Loopback may finish the handshake at once; either way the
		// record must carry what the call returned.
		{"non-blocking", connectCall{family: unix.AF_INET, sotype: unix.SOCK_STREAM, remote: v4, nonblock: true, wantProto: unix.IPPROTO_TCP}, []syscall.Errno{unix.EINPROGRESS, 0}},
		{"UDP", connectCall{family: unix.AF_INET, sotype: unix.SOCK_DGRAM, remote: netip.MustParseAddrPort("127.0.0.1:9"), wantProto: unix.IPPROTO_UDP}, []syscall.Errno{0}},
		{"UDP IPv6", connectCall{family: unix.AF_INET6, sotype: unix.SOCK_DGRAM, remote: netip.MustParseAddrPort("[::1]:9"), wantProto: unix.IPPROTO_UDP}, []syscall.Errno{0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.call
			c.run(t)
			ok := false
			for _, w := range tc.want {
				ok = ok || c.errno == w
			}
			if !ok {
				t.Fatalf("connect to %v: %v, want one of %v", c.remote, c.errno, tc.want)
			}
			t.Logf("connect to %v from %v: errno %d", c.remote, c.local, c.errno)
			c.check(t, s)
		})
	}

	t.Run("unix sockets are not recorded", func(t *testing.T) {
		expectUnrecorded(t, s, v4, func() int {
			fd := unixSocket(t)
			_ = unix.Connect(fd, &unix.SockaddrUnix{Name: "/tmp/hooktest-no-such-socket"})
			return fd
		})
	})

	if st := s.stats(); st.Hooks[2].Events < uint64(len(cases)) {
		t.Errorf("connect events counted %d, want at least %d", st.Hooks[2].Events, len(cases))
	}
}

// unixSocket is an AF_UNIX stream socket, closed at the end of the test.
func unixSocket(t *testing.T) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// expectUnrecorded checks that call, which connects the descriptor it
// returns, made no connect record, through a TCP connect to v4 after it:
// when that one's record arrives, one for call would have arrived before
// it. Records read before call are not its own: an earlier call's
// interrupted attempt (SMITH_RF_RESTART, left in the backlog) may have
// had the same descriptor number.
func expectUnrecorded(t *testing.T, s *session, v4 netip.AddrPort, call func() int) {
	t.Helper()
	earlier := make(map[*event]bool, len(s.backlog))
	for _, e := range s.backlog {
		earlier[e] = true
	}
	fd := call()
	c := connectCall{family: unix.AF_INET, sotype: unix.SOCK_STREAM, remote: v4, wantProto: unix.IPPROTO_TCP}
	c.run(t)
	c.check(t, s)
	for _, e := range s.backlog {
		if !earlier[e] && e.Hdr.Type == shm.EvConnect && int(e.Tgid) == os.Getpid() {
			if ci := connectInfo(t, e); int(ci.FD) == fd {
				t.Errorf("connect on fd %d recorded: %v %+v", fd, e, ci)
			}
		}
	}
}
