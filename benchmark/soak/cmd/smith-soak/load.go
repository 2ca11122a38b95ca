package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"smith/benchmark/soak"
	"smith/internal/tcptest"
)

// loader performs tagged syscalls and remembers each one.  Three workers
// run side by side, each at its own rate: execs (one in eight of a path
// that does not exist), connects (TCP to a listener, TCP refused, UDP; each
// to its own address in 127.0.0.0/8, which is the tag) and module loads
// (finit_module of the test module then unload, init_module refused by
// fail=1; the tag is a module parameter the kernel ignores).
type loader struct {
	prefix   string
	execPath string
	modPath  string
	modImage []byte
	port     int // TCP listener on every loopback address
	refused  int // a port nobody listens on

	execRate, connRate, modRate float64
	burst                       atomic.Bool // connects as fast as they go
	phase                       atomic.Pointer[string]

	mu  sync.Mutex
	ops []soak.Op
	n   atomic.Uint64 // tag counter
	ip  atomic.Uint32 // address counter
	err atomic.Pointer[error]
}

func (l *loader) setPhase(p string) { l.phase.Store(&p) }

func (l *loader) record(op soak.Op) {
	op.Phase = *l.phase.Load()
	l.mu.Lock()
	l.ops = append(l.ops, op)
	l.mu.Unlock()
}

func (l *loader) fail(err error) {
	l.err.CompareAndSwap(nil, &err)
}

func (l *loader) tag() string { return fmt.Sprintf("%s%d", l.prefix, l.n.Add(1)) }

// run starts the workers; they stop when ctx ends.
func (l *loader) run(ctx context.Context) *sync.WaitGroup {
	var wg sync.WaitGroup
	worker := func(rate float64, burstable bool, step func(i uint64)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if rate <= 0 {
				return
			}
			period := time.Duration(float64(time.Second) / rate)
			next := time.Now()
			for i := uint64(0); ctx.Err() == nil; i++ {
				step(i)
				if burstable && l.burst.Load() {
					next = time.Now()
					continue
				}
				next = next.Add(period)
				if d := time.Until(next); d > 0 {
					select {
					case <-ctx.Done():
					case <-time.After(d):
					}
				} else if d < -time.Second {
					next = time.Now() // behind: do not catch up in a burst
				}
			}
		}()
	}
	worker(l.execRate, false, func(i uint64) {
		if i%8 == 7 {
			l.execFail()
		} else {
			l.exec()
		}
	})
	worker(l.connRate, true, func(i uint64) {
		switch i % 4 {
		case 0, 1:
			l.connect(soak.OpUDP, 7, unix.SOCK_DGRAM)
		case 2:
			l.connect(soak.OpTCP, l.port, unix.SOCK_STREAM)
		case 3:
			l.connect(soak.OpTCP, l.refused, unix.SOCK_STREAM)
		}
	})
	worker(l.modRate, false, func(i uint64) {
		if i%2 == 0 {
			l.finit()
		} else {
			l.initRefused()
		}
	})
	return &wg
}

func (l *loader) exec() {
	tag := l.tag()
	args := []string{l.execPath, tag}
	t0 := time.Now().UnixNano()
	pid, err := syscall.ForkExec(l.execPath, args, &syscall.ProcAttr{Env: []string{}})
	if err != nil {
		l.fail(fmt.Errorf("exec %s: %w", l.execPath, err))
		return
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
		l.fail(fmt.Errorf("wait for %d: %w", pid, err))
		return
	}
	t1 := time.Now().UnixNano()
	l.record(soak.Op{Kind: soak.OpExec, Tag: tag, T0: t0, T1: t1, Pid: uint32(pid), Filename: l.execPath, Args: args})
}

func (l *loader) execFail() {
	tag := l.tag()
	path := "/nonexistent/" + tag
	args := []string{path, tag}
	t0 := time.Now().UnixNano()
	_, err := syscall.ForkExec(path, args, &syscall.ProcAttr{Env: []string{}})
	t1 := time.Now().UnixNano()
	if err != syscall.ENOENT {
		l.fail(fmt.Errorf("exec %s: %v, want ENOENT", path, err))
		return
	}
	// The child that called execve is gone; its pid is not known here.
	l.record(soak.Op{Kind: soak.OpExecFail, Tag: tag, T0: t0, T1: t1, Result: -int64(syscall.ENOENT), Filename: path, Args: args})
}

// nextIP is a loopback address no other op of the run used.
func (l *loader) nextIP() [4]byte {
	n := l.ip.Add(1) + 1 // 127.0.0.2 first: 127.0.0.1 is everybody's
	return [4]byte{127, byte(n >> 16), byte(n >> 8), byte(n)}
}

func (l *loader) connect(kind string, port, typ int) {
	ip := l.nextIP()
	tag := fmt.Sprintf("%d.%d.%d.%d:%d", ip[0], ip[1], ip[2], ip[3], port)
	fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		l.fail(fmt.Errorf("socket: %w", err))
		return
	}
	defer unix.Close(fd)
	t0 := time.Now().UnixNano()
	err = unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: ip})
	t1 := time.Now().UnixNano()
	res := int64(0)
	if err != nil {
		errno, ok := err.(syscall.Errno)
		if !ok {
			l.fail(fmt.Errorf("connect %s: %w", tag, err))
			return
		}
		res = -int64(errno)
	}
	if want := port == l.refused; want != (res == -int64(syscall.ECONNREFUSED)) {
		l.fail(fmt.Errorf("connect %s: result %d", tag, res))
		return
	}
	l.record(soak.Op{Kind: kind, Tag: tag, T0: t0, T1: t1, Result: res, Pid: uint32(os.Getpid()), Port: uint16(port)})
}

// The test module's name (kernel/hooktest/kmod).
const testModule = "smith_hooktest"

func (l *loader) finit() {
	params := "fail=0 soak_tag=" + l.tag()
	f, err := os.Open(l.modPath)
	if err != nil {
		l.fail(err)
		return
	}
	defer f.Close()
	t0 := time.Now().UnixNano()
	err = unix.FinitModule(int(f.Fd()), params, 0)
	t1 := time.Now().UnixNano()
	if err != nil {
		l.fail(fmt.Errorf("finit_module %s %q: %w", l.modPath, params, err))
		return
	}
	l.record(soak.Op{Kind: soak.OpFinit, Tag: params, T0: t0, T1: t1, Pid: uint32(os.Getpid()), Filename: l.modPath})
	if err := unix.DeleteModule(testModule, 0); err != nil {
		l.fail(fmt.Errorf("delete_module %s: %w", testModule, err))
	}
}

func (l *loader) initRefused() {
	params := "fail=1 soak_tag=" + l.tag()
	t0 := time.Now().UnixNano()
	err := unix.InitModule(l.modImage, params)
	t1 := time.Now().UnixNano()
	if err != syscall.EINVAL {
		l.fail(fmt.Errorf("init_module %q: %v, want EINVAL", params, err))
		return
	}
	l.record(soak.Op{Kind: soak.OpInit, Tag: params, T0: t0, T1: t1, Result: -int64(syscall.EINVAL), Pid: uint32(os.Getpid())})
}

// listen accepts TCP connections on every loopback address and closes
// them, until ctx ends.
func listen(ctx context.Context) (int, error) {
	ln, err := tcptest.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		return 0, err
	}
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
