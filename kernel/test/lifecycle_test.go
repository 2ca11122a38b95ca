//go:build vmtest

package kerneltest

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"smith/internal/kmodtest"
	"smith/internal/tcptest"
)

func TestInvalidParametersAreRefused(t *testing.T) {
	for _, p := range []string{
		"ring_size=100000",    // not a power of two
		"ring_size=32768",     // below the minimum
		"ring_size=536870912", // above the maximum
		"ring_size=0",
		"send_type=0",
		"send_type=3",
		"argv_cap=10",
		"argv_cap=1048576",
	} {
		t.Run(p, func(t *testing.T) {
			err := kmodtest.Load(p)
			if err == nil {
				kmodtest.TryUnload()
				t.Fatalf("insmod %s succeeded", p)
			}
			if kmodtest.Loaded() {
				t.Fatalf("insmod %s failed but the module is loaded", p)
			}
		})
	}
}

// loadAndOpen loads the module and opens its device; the test unloads
// it itself (only TryUnload, to see it refused while the device is held).
func loadAndOpen(t *testing.T) *os.File {
	t.Helper()
	if err := kmodtest.Load(); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(devPath, os.O_RDWR, 0)
	if err != nil {
		kmodtest.TryUnload()
		t.Fatal(err)
	}
	return f
}

func TestUnloadRefusedWhileOpen(t *testing.T) {
	f := loadAndOpen(t)
	if err := kmodtest.TryUnload(); !kmodtest.IsBusy(err) {
		f.Close()
		t.Fatalf("rmmod with %s open: %v, want EWOULDBLOCK or EBUSY", devPath, err)
	}
	if !kmodtest.Loaded() {
		t.Fatal("module gone while the device was open")
	}
	f.Close()
	if err := kmodtest.TryUnload(); err != nil {
		t.Fatalf("rmmod after close: %v", err)
	}
	if kmodtest.Loaded() {
		t.Fatal("module still loaded after rmmod")
	}
}

func TestUnloadRefusedWhileMapped(t *testing.T) {
	f := loadAndOpen(t)
	b, err := syscall.Mmap(int(f.Fd()), 0, os.Getpagesize(), syscall.PROT_READ, syscall.MAP_SHARED)
	f.Close()
	if err != nil {
		kmodtest.TryUnload()
		t.Fatal(err)
	}
	// The mapping holds the file, so the ring memory stays.
	if err := kmodtest.TryUnload(); !kmodtest.IsBusy(err) {
		syscall.Munmap(b)
		t.Fatalf("rmmod with the ring mapped: %v, want EWOULDBLOCK or EBUSY", err)
	}
	_ = b[0]
	syscall.Munmap(b)
	if err := kmodtest.TryUnload(); err != nil {
		t.Fatalf("rmmod after munmap: %v", err)
	}
}

// syscallLoad runs execs and TCP connects until ctx ends, so hooks are in
// flight while the module comes and goes.
func syscallLoad(ctx context.Context, t *testing.T) (wait func() int) {
	t.Helper()
	ln, err := tcptest.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ops := 0
	count := func() { mu.Lock(); ops++; mu.Unlock() }
	wg.Add(2)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if exec.Command("/bin/true").Run() == nil {
				count()
			}
		}
	}()
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
			if err == nil {
				c.Close()
				count()
			}
		}
	}()
	return func() int {
		wg.Wait()
		ln.Close()
		return ops
	}
}

func TestLoadUnloadCyclesUnderLoad(t *testing.T) {
	cycles := 10
	if s := os.Getenv("SMITH_KTEST_CYCLES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("SMITH_KTEST_CYCLES=%q: %v", s, err)
		}
		cycles = n
	}
	ctx, cancel := context.WithCancel(context.Background())
	wait := syscallLoad(ctx, t)
	defer func() {
		cancel()
		wait()
	}()
	for i := 0; i < cycles; i++ {
		params := []string{}
		if i%2 == 1 {
			params = append(params, "send_type=1")
		}
		if err := kmodtest.Load(params...); err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		d, err := os.OpenFile(devPath, os.O_RDWR, 0)
		if err != nil {
			kmodtest.Unload()
			t.Fatalf("cycle %d: open: %v", i, err)
		}
		// Recording is on now; let the load hit the hooks for a moment.
		time.Sleep(20 * time.Millisecond)
		d.Close()
		if err := kmodtest.Unload(); err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
	}
	cancel()
	if ops := wait(); ops == 0 {
		t.Fatal("the exec/connect load made no call at all")
	}
	wait = func() int { return 0 }
}
