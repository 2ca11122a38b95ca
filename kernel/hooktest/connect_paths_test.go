//go:build vmtest

package hooktest

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"smith/kernel/hooktest/int80"
	"smith/shm"
)

// rawSockaddr is the sockaddr bytes connect(2) takes for ap.
func rawSockaddr(ap netip.AddrPort) []byte {
	// sin6_addr comes after sin6_flowinfo, sin_addr right after the port.
	size, family, addrAt := unix.SizeofSockaddrInet6, unix.AF_INET6, 8
	if ap.Addr().Is4() {
		size, family, addrAt = unix.SizeofSockaddrInet4, unix.AF_INET, 4
	}
	b := make([]byte, size)
	binary.LittleEndian.PutUint16(b[0:], uint16(family))
	binary.BigEndian.PutUint16(b[2:], ap.Port())
	copy(b[addrAt:], ap.Addr().AsSlice())
	return b
}

// connectInt80 connects fd through the i386 entry: socketcall
// SYS_CONNECT, or the direct compat connect.
// It is nil where there is no such entry (int80.Supported).
func connectInt80(socketcall bool) func(t *testing.T, fd int, ap netip.AddrPort) syscall.Errno {
	if !int80.Supported {
		return nil
	}
	return func(t *testing.T, fd int, ap netip.AddrPort) syscall.Errno {
		low, err := int80.NewLow()
		if err != nil {
			t.Fatal(err)
		}
		defer low.Close()
		sa := rawSockaddr(ap)
		saAddr := low.Put(0, sa)
		if !socketcall {
			_, errno := int80.Syscall(int80.SysConnect, uint32(fd), saAddr, uint32(len(sa)))
			return errno
		}
		args := make([]byte, 12)
		binary.LittleEndian.PutUint32(args[0:], uint32(fd))
		binary.LittleEndian.PutUint32(args[4:], saAddr)
		binary.LittleEndian.PutUint32(args[8:], uint32(len(sa)))
		_, errno := int80.Syscall(int80.SysSocketcall, int80.SocketcallConnect, low.Put(256, args), 0)
		return errno
	}
}

// io_uring, by raw system calls (5.10's layout, which later kernels keep).
type ioUringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
	resv                                                                   [3]uint32
	sqOff                                                                  [10]uint32
	cqOff                                                                  [10]uint32
}

type ioUringSqe struct {
	opcode, flags uint8
	ioprio        uint16
	fd            int32
	off, addr     uint64
	len, opFlags  uint32
	userData      uint64
	pad           [3]uint64
}

const (
	ioringOpConnect      = 16
	ioringEnterGetevents = 1
	ioringOffCqRing      = 0x8000000
	ioringOffSqes        = 0x10000000
)

// connectIOUring submits one IORING_OP_CONNECT and waits for its
// completion; the errno is the completion's result.
func connectIOUring(t *testing.T, fd int, ap netip.AddrPort) syscall.Errno {
	var p ioUringParams
	rfd, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, 4, uintptr(unsafe.Pointer(&p)), 0)
	if e != 0 {
		t.Fatalf("io_uring_setup: %v", e)
	}
	defer unix.Close(int(rfd))
	sqRing, err := unix.Mmap(int(rfd), 0, int(p.sqOff[6]+p.sqEntries*4), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		t.Fatalf("mmap SQ ring: %v", err)
	}
	defer unix.Munmap(sqRing)
	cqRing, err := unix.Mmap(int(rfd), ioringOffCqRing, int(p.cqOff[5]+p.cqEntries*16), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		t.Fatalf("mmap CQ ring: %v", err)
	}
	defer unix.Munmap(cqRing)
	sqes, err := unix.Mmap(int(rfd), ioringOffSqes, int(p.sqEntries)*64, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		t.Fatalf("mmap SQEs: %v", err)
	}
	defer unix.Munmap(sqes)

	sa := rawSockaddr(ap)
	sqe := (*ioUringSqe)(unsafe.Pointer(&sqes[0]))
	*sqe = ioUringSqe{opcode: ioringOpConnect, fd: int32(fd), off: uint64(len(sa)),
		addr: uint64(uintptr(unsafe.Pointer(&sa[0]))), userData: 42}
	u32 := func(b []byte, off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&b[off])) }
	tail := *u32(sqRing, p.sqOff[1])
	mask := *u32(sqRing, p.sqOff[2])
	*u32(sqRing, p.sqOff[6]+(tail&mask)*4) = 0
	*u32(sqRing, p.sqOff[1]) = tail + 1 // the enter below orders it
	_, _, e = unix.Syscall6(unix.SYS_IO_URING_ENTER, rfd, 1, 1, ioringEnterGetevents, 0, 0)
	runtime.KeepAlive(sa)
	if e != 0 {
		t.Fatalf("io_uring_enter: %v", e)
	}
	head := *u32(cqRing, p.cqOff[0])
	if head == *u32(cqRing, p.cqOff[1]) {
		t.Fatal("io_uring: no completion")
	}
	cqe := cqRing[p.cqOff[5]+(head&*u32(cqRing, p.cqOff[2]))*16:]
	res := int32(binary.LittleEndian.Uint32(cqe[8:]))
	if ud := binary.LittleEndian.Uint64(cqe); ud != 42 {
		t.Fatalf("io_uring: completion of %d, want 42", ud)
	}
	if res < 0 {
		return syscall.Errno(-res)
	}
	return 0
}

// connectFastOpen opens the connection with sendto(MSG_FASTOPEN).
func connectFastOpen(t *testing.T, fd int, ap netip.AddrPort) syscall.Errno {
	if err := unix.Sendto(fd, []byte("x"), unix.MSG_FASTOPEN, sockaddr(ap)); err != nil {
		return err.(syscall.Errno)
	}
	return 0
}

// enableFastOpen turns on client fast open (Debian's default, made sure).
func enableFastOpen(t *testing.T) {
	if err := os.WriteFile("/proc/sys/net/ipv4/tcp_fastopen", []byte("1\n"), 0); err != nil {
		t.Fatalf("tcp_fastopen: %v", err)
	}
}

// TestConnectPaths: every way to start a connection gives the same record.
func TestConnectPaths(t *testing.T) {
	s := open(t)
	enableFastOpen(t)
	v4 := listen(t, "tcp4", "127.0.0.1:0")
	v6 := listen(t, "tcp6", "[::1]:0")
	refused := closedPort(t, "tcp4", "127.0.0.1:0")

	type how func(t *testing.T, fd int, ap netip.AddrPort) syscall.Errno
	cases := []struct {
		name    string
		how     how
		family  int
		sotype  int
		remote  netip.AddrPort
		proto   uint16
		want    []syscall.Errno // errnos the caller may see
		rec     []syscall.Errno // results the record may carry
		flags   shm.RecFlags
		nolocal bool
	}{
		{"socketcall IPv4", connectInt80(true), unix.AF_INET, unix.SOCK_STREAM, v4, unix.IPPROTO_TCP, []syscall.Errno{0}, nil, 0, false},
		{"socketcall IPv6", connectInt80(true), unix.AF_INET6, unix.SOCK_STREAM, v6, unix.IPPROTO_TCP, []syscall.Errno{0}, nil, 0, false},
		{"socketcall refused", connectInt80(true), unix.AF_INET, unix.SOCK_STREAM, refused, unix.IPPROTO_TCP, []syscall.Errno{unix.ECONNREFUSED}, nil, 0, true},
		{"socketcall UDP", connectInt80(true), unix.AF_INET, unix.SOCK_DGRAM, netip.MustParseAddrPort("127.0.0.1:9"), unix.IPPROTO_UDP, []syscall.Errno{0}, nil, 0, false},
		{"compat connect IPv4", connectInt80(false), unix.AF_INET, unix.SOCK_STREAM, v4, unix.IPPROTO_TCP, []syscall.Errno{0}, nil, 0, false},
		{"compat connect IPv6", connectInt80(false), unix.AF_INET6, unix.SOCK_STREAM, v6, unix.IPPROTO_TCP, []syscall.Errno{0}, nil, 0, false},
		// io_uring tries a non-blocking connect in the submitter's
		// context first: that attempt is the submitter's record.
		{"io_uring IPv4", connectIOUring, unix.AF_INET, unix.SOCK_STREAM, v4, unix.IPPROTO_TCP, []syscall.Errno{0}, []syscall.Errno{0, unix.EINPROGRESS}, 0, false},
		{"io_uring IPv6", connectIOUring, unix.AF_INET6, unix.SOCK_STREAM, v6, unix.IPPROTO_TCP, []syscall.Errno{0}, []syscall.Errno{0, unix.EINPROGRESS}, 0, false},
		{"io_uring refused", connectIOUring, unix.AF_INET, unix.SOCK_STREAM, refused, unix.IPPROTO_TCP, []syscall.Errno{unix.ECONNREFUSED}, []syscall.Errno{unix.ECONNREFUSED, unix.EINPROGRESS}, 0, true},
		// The record carries the connection step's result, not sendto's
		// byte count.
		{"fast open IPv4", connectFastOpen, unix.AF_INET, unix.SOCK_STREAM, v4, unix.IPPROTO_TCP, []syscall.Errno{0}, []syscall.Errno{0, unix.EINPROGRESS}, shm.RFFastOpen, false},
		{"fast open IPv6", connectFastOpen, unix.AF_INET6, unix.SOCK_STREAM, v6, unix.IPPROTO_TCP, []syscall.Errno{0}, []syscall.Errno{0, unix.EINPROGRESS}, shm.RFFastOpen, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.how == nil {
				t.Skipf("no 32-bit x86 entry (int $0x80) on %s", runtime.GOARCH)
			}
			c := connectCall{family: tc.family, sotype: tc.sotype, remote: tc.remote, wantProto: tc.proto}
			errno := c.runWith(t, func(fd int) syscall.Errno { return tc.how(t, fd, tc.remote) })
			ok := false
			for _, w := range tc.want {
				ok = ok || errno == w
			}
			if !ok {
				t.Fatalf("%s to %v: %v, want one of %v", tc.name, tc.remote, errno, tc.want)
			}
			t.Logf("%s to %v from %v: errno %d", tc.name, tc.remote, c.local, errno)
			if tc.nolocal {
				c.local = netip.AddrPort{}
			}
			c.rec = tc.rec
			e := c.check(t, s)
			if got := shm.RecFlags(e.Hdr.Flags) & (shm.RFFastOpen | shm.RFNoResult | shm.RFCompat); got != tc.flags {
				t.Errorf("flags %#x, want %#x", got, tc.flags)
			}
		})
	}
}

// TestConnectHighFd: the record's fd is the one the call was given, also
// past the 65,536 descriptors a table scan would look at.
func TestConnectHighFd(t *testing.T) {
	s := open(t)
	v4 := listen(t, "tcp4", "127.0.0.1:0")
	const high = 70000
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: high + 1, Max: max(old.Max, high+1)}); err != nil {
		t.Fatalf("RLIMIT_NOFILE %d: %v", high+1, err)
	}
	defer unix.Setrlimit(unix.RLIMIT_NOFILE, &old)
	c := connectCall{family: unix.AF_INET, sotype: unix.SOCK_STREAM, remote: v4, wantProto: unix.IPPROTO_TCP}
	c.runWith(t, func(fd int) syscall.Errno {
		if err := unix.Dup3(fd, high, unix.O_CLOEXEC); err != nil {
			t.Fatalf("dup3 to %d: %v", high, err)
		}
		defer unix.Close(high)
		c.fd = high
		if err := unix.Connect(high, sockaddr(v4)); err != nil {
			return err.(syscall.Errno)
		}
		return 0
	})
	if c.errno != 0 {
		t.Fatalf("connect on fd %d: %v", high, c.errno)
	}
	c.check(t, s)
}

// TestFastOpenProbe: where the kernel has tcp_sendmsg_fastopen as a
// function of its own, the fast open kretprobe is there, and a plain
// connect passes through two probes, not three.
func TestFastOpenProbe(t *testing.T) {
	open(t)
	syms, err := os.ReadFile("/proc/kallsyms")
	if err != nil {
		t.Fatal(err)
	}
	own := false
	for _, line := range strings.Split(string(syms), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[2] == "tcp_sendmsg_fastopen" {
			own = true
		}
	}
	list, err := os.ReadFile("/sys/kernel/debug/kprobes/list")
	if err != nil {
		t.Fatal(err)
	}
	// "ADDR  r  SYMBOL+OFFSET  [FTRACE]": the offset is 0x4 where the
	// probe skips an endbr64 (x86 IBT, 6.12).
	probed := map[string]bool{}
	for _, line := range strings.Split(string(list), "\n") {
		for _, f := range strings.Fields(line) {
			if name, off, ok := strings.Cut(f, "+0x"); ok && name != "" && off != "" {
				probed[name] = true
			}
		}
	}
	t.Logf("tcp_sendmsg_fastopen a function of its own: %v; probed: %v", own, probed)
	for _, name := range []string{"__sys_connect_file", "security_socket_connect"} {
		if !probed[name] {
			t.Errorf("%s not probed", name)
		}
	}
	if own && (!probed["tcp_sendmsg_fastopen"] || probed["__inet_stream_connect"]) {
		t.Errorf("fast open: want the kretprobe on tcp_sendmsg_fastopen, not __inet_stream_connect")
	}
	if !own && !probed["__inet_stream_connect"] {
		t.Errorf("fast open: tcp_sendmsg_fastopen inlined, want the kretprobe on __inet_stream_connect")
	}
}

// TestConnectFamilyMismatch: an AF_INET address on an AF_UNIX socket is
// refused and not recorded (the socket's family decides, before any inet
// field is read).
func TestConnectFamilyMismatch(t *testing.T) {
	s := open(t)
	v4 := listen(t, "tcp4", "127.0.0.1:0")
	expectUnrecorded(t, s, v4, func() int {
		fd := unixSocket(t)
		if err := unix.Connect(fd, sockaddr(v4)); err == nil {
			t.Fatal("AF_INET connect on an AF_UNIX socket succeeded")
		}
		return fd
	})
}

// synSent counts sockets in SYN_SENT towards port in /proc/net/tcp.
func synSent(t *testing.T, port uint16) int {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 3 && strings.HasSuffix(f[2], fmt.Sprintf(":%04X", port)) && f[3] == "02" {
			n++
		}
	}
	return n
}

// TestConnectFlood: connects blocked against a listener whose backlog is
// full hold the connect kretprobe's instances; every one of them and
// another process's connect meanwhile must still be recorded.
func TestConnectFlood(t *testing.T) {
	const flood = 300
	s := open(t)
	full := fullListener(t)
	// More must block than the connect kretprobe has instances (64 per
	// CPU), so that some find none.  Not all 298 need to: a client can
	// reach ESTABLISHED while the full listener drops its final ACK.
	need := min(64*runtime.NumCPU()+1, flood-20)
	wait := blockConnects(t, full, flood, need, func(fd int) { _ = unix.Connect(fd, sockaddr(full)) })
	defer wait()

	// Another process connects meanwhile.
	other := listen(t, "tcp4", "127.0.0.1:0")
	pid := runStep(t, "connect:"+other.String())
	e := s.find("other process's connect", func(e *event) bool {
		return e.Hdr.Type == shm.EvConnect && int(e.Tgid) == pid &&
			connectInfo(t, e).RemotePort == other.Port()
	})
	ci := connectInfo(t, e)
	expectEq(t, "other: remote", netip.AddrPortFrom(addrOf(ci.Family, ci.RemoteAddr), ci.RemotePort), other)
	t.Logf("other process's connect: result %d flags %#x", e.Result, e.Hdr.Flags)

	// Every flood connect, once; with its result unless it found no
	// instance left.
	wait()
	withResult, noResult := 0, 0
	for withResult+noResult < flood {
		e := s.find("flood connect", func(e *event) bool {
			return e.Hdr.Type == shm.EvConnect && int(e.Tgid) == os.Getpid() &&
				connectInfo(t, e).RemotePort == full.Port() &&
				shm.RecFlags(e.Hdr.Flags)&shm.RFRestart == 0
		})
		ci := connectInfo(t, e)
		expectEq(t, "flood: remote", netip.AddrPortFrom(addrOf(ci.Family, ci.RemoteAddr), ci.RemotePort), full)
		expectEq(t, "flood: protocol", ci.Protocol, uint16(unix.IPPROTO_TCP))
		if shm.RecFlags(e.Hdr.Flags)&shm.RFNoResult != 0 {
			expectEq(t, "flood: result without one", e.Result, int64(0))
			noResult++
		} else {
			withResult++
		}
	}
	t.Logf("flood: %d records with their result, %d without (no kretprobe instance left)", withResult, noResult)
	st := s.stats()
	t.Logf("stats: hook_missed %d, lost in stream %d", st.HookMissed, s.lost)
	if st.HookMissed > s.lost {
		t.Errorf("hook_missed %d not reported in the stream (lost %d)", st.HookMissed, s.lost)
	}
}

// helperConnect is a helper process's step: one connect(2) to addr.
func helperConnect(addr string) int {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "connect helper:", err)
		return 2
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "connect helper:", err)
		return 2
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, sockaddr(ap)); err != nil {
		fmt.Fprintln(os.Stderr, "connect helper:", err)
		return 1
	}
	return 0
}

// TestConnectRestart: a blocking connect interrupted by a signal is
// recorded with what the caller would see (EINTR) and SMITH_RF_RESTART,
// never the kernel-internal ERESTARTSYS; the restarted call is recorded
// with its own result.
func TestConnectRestart(t *testing.T) {
	s := open(t)
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			unix.Close(lfd)
		}
	}()
	if err := unix.Bind(lfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(lfd, 0); err != nil {
		t.Fatal(err)
	}
	lsa, _ := unix.Getsockname(lfd)
	full := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(lsa.(*unix.SockaddrInet4).Port))
	// Fill the accept queue: these complete, later SYNs are dropped.
	for i := 0; i < 2; i++ {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		_ = unix.Connect(fd, sockaddr(full))
	}
	time.Sleep(200 * time.Millisecond)
	before := synSent(t, full.Port())

	type result struct {
		fd, tid int
		err     error
	}
	done := make(chan result, 1)
	tids := make(chan int, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			done <- result{err: err}
			return
		}
		tids <- unix.Gettid()
		err = unix.Connect(fd, sockaddr(full))
		done <- result{fd: fd, tid: unix.Gettid(), err: err}
	}()
	tid := <-tids
	deadline := time.Now().Add(10 * time.Second)
	for synSent(t, full.Port()) <= before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if synSent(t, full.Port()) <= before {
		t.Fatal("the connect did not block")
	}
	// SIGURG: Go's handler has SA_RESTART, so the kernel restarts the call.
	if err := unix.Tgkill(os.Getpid(), tid, unix.SIGURG); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	// No listener: the next SYN retransmission is refused.
	unix.Close(lfd)
	closed = true
	r := <-done
	if r.fd > 0 {
		defer unix.Close(r.fd)
	}
	t.Logf("interrupted connect: %v", r.err)
	match := func(e *event) bool {
		return e.Hdr.Type == shm.EvConnect && int(e.Pid) == r.tid && int(connectInfo(t, e).FD) == r.fd &&
			connectInfo(t, e).RemotePort == full.Port()
	}
	e := s.find("interrupted connect", match)
	if shm.RecFlags(e.Hdr.Flags)&shm.RFRestart == 0 {
		t.Errorf("first record: flags %#x, result %d: want SMITH_RF_RESTART", e.Hdr.Flags, e.Result)
	}
	expectEq(t, "interrupted: result", e.Result, -int64(unix.EINTR))
	// Each interruption is a record: a second signal (one of the Go
	// runtime's own, say) may come before the restarted call ends.
	e = s.find("restarted connect", match)
	for i := 0; i < 8 && shm.RecFlags(e.Hdr.Flags)&shm.RFRestart != 0 && e.Result == -int64(unix.EINTR); i++ {
		t.Logf("interrupted again: flags %#x", e.Hdr.Flags)
		e = s.find("restarted connect", match)
	}
	want := int64(0)
	if errno, ok := r.err.(syscall.Errno); ok {
		want = -int64(errno)
	}
	expectEq(t, "restarted: result", e.Result, want)
	if shm.RecFlags(e.Hdr.Flags)&shm.RFRestart != 0 {
		t.Errorf("restarted call's record marked restart: %#x", e.Hdr.Flags)
	}
}

// fullListener is a loopback listener with backlog 1 that never accepts:
// once its queue is full, SYNs are dropped and connects block,
// retransmitting.
func fullListener(t *testing.T) netip.AddrPort {
	t.Helper()
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(lfd) })
	if err := unix.Bind(lfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(lfd, 1); err != nil {
		t.Fatal(err)
	}
	lsa, err := unix.Getsockname(lfd)
	if err != nil {
		t.Fatal(err)
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(lsa.(*unix.SockaddrInet4).Port))
}

// blockConnects starts n threads that each open a TCP socket and call
// start on it against full, and returns once they are blocked in SYN_SENT
// (2 complete into the accept queue, and a few more may see ESTABLISHED
// while the listener drops their final ACK), or after 15 s with at least
// need of them blocked.  The returned wait joins them (each gives up after
// 20 s) and closes the sockets.
func blockConnects(t *testing.T, full netip.AddrPort, n, need int, start func(fd int)) (wait func()) {
	t.Helper()
	var wg sync.WaitGroup
	fds := make(chan int, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Error(err)
				return
			}
			fds <- fd
			_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &unix.Timeval{Sec: 20})
			start(fd)
		}()
	}
	var once sync.Once
	wait = func() {
		once.Do(func() {
			wg.Wait()
			close(fds)
			for fd := range fds {
				unix.Close(fd)
			}
		})
	}
	deadline := time.Now().Add(15 * time.Second)
	for synSent(t, full.Port()) < n-2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	blocked := synSent(t, full.Port())
	t.Logf("%d of %d blocked in SYN_SENT", blocked, n)
	if blocked < need {
		wait()
		t.Fatalf("only %d of %d blocked, want at least %d", blocked, n, need)
	}
	return wait
}

// TestMissesFolded: fast opens blocked against a full listener hold every
// instance of their kretprobe (16 per CPU), so further calls are missed;
// the misses must show in the meta page's hook_missed and in a "lost N"
// record in front of the next record.
func TestMissesFolded(t *testing.T) {
	s := open(t)
	enableFastOpen(t)
	full := fullListener(t)
	// More than the instances must block for a miss to be certain.
	instances := 16 * runtime.NumCPU()
	n := instances + 32
	wait := blockConnects(t, full, n, instances+1, func(fd int) {
		_ = unix.Sendto(fd, []byte("x"), unix.MSG_FASTOPEN, sockaddr(full))
	})
	defer wait()
	st := s.stats()
	if st.HookMissed == 0 {
		t.Fatalf("%d fast opens started, %d instances: no miss counted (hook stats %+v)", n, instances, st.Hooks[2])
	}
	// A record after the misses: the lost record comes in front of it.
	c := connectCall{family: unix.AF_INET, sotype: unix.SOCK_STREAM, remote: listen(t, "tcp4", "127.0.0.1:0"), wantProto: unix.IPPROTO_TCP}
	c.run(t)
	c.check(t, s)
	t.Logf("hook_missed %d, lost in the stream %d, ring full drops %d", st.HookMissed, s.lost, st.DroppedFull)
	if s.lost < st.HookMissed {
		t.Errorf("lost records in the stream count %d, hook_missed is %d", s.lost, st.HookMissed)
	}
}
