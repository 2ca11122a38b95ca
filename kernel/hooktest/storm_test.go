//go:build vmtest

package hooktest

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"smith/internal/kmodtest"
	"smith/shm"
)

// envInt is a positive integer from the environment, or def.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// stormWorkers is how many processes exec and connect at once.
const stormWorkers = 4

// stormLoop is the body of a storm worker: exec /bin/true and connect a
// UDP socket, as fast as it can, until the time is up.
func stormLoop(seconds int) int {
	end := time.Now().Add(time.Duration(seconds) * time.Second)
	sa := &unix.SockaddrInet4{Port: 9, Addr: [4]byte{127, 0, 0, 1}}
	for time.Now().Before(end) {
		if err := exec.Command(truePath, "storm").Run(); err != nil {
			fmt.Fprintln(os.Stderr, "storm exec:", err)
			return 2
		}
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, "storm socket:", err)
			return 2
		}
		err = unix.Connect(fd, sa)
		unix.Close(fd)
		if err != nil {
			fmt.Fprintln(os.Stderr, "storm connect:", err)
			return 2
		}
	}
	return 0
}

// startStorm starts the workers; wait returns once they all ended well.
func startStorm(t *testing.T, seconds int) (wait func()) {
	t.Helper()
	var cmds []*exec.Cmd
	for i := 0; i < stormWorkers; i++ {
		cmd := helper(t, "storm")
		cmd.Env = append(cmd.Env, fmt.Sprintf("SMITH_STORM_SECONDS=%d", seconds))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	return func() {
		t.Helper()
		for _, c := range cmds {
			if err := c.Wait(); err != nil {
				t.Errorf("storm worker %d: %v", c.Process.Pid, err)
			}
		}
	}
}

// orderChecker checks that each thread's records come in time order: a
// thread's calls are sequential, so any reordering is the transport's.
type orderChecker map[uint32]uint64

func (o orderChecker) add(t *testing.T, e *event) {
	t.Helper()
	if last, ok := o[e.Pid]; ok && e.TimeNs < last {
		t.Errorf("thread %d: record at %d after one at %d", e.Pid, e.TimeNs, last)
	}
	o[e.Pid] = e.TimeNs
}

// trigger makes one more record, so that drops still pending are reported
// by a "lost N" record in front of it, and returns once it was read.
func trigger(t *testing.T, s *session) {
	t.Helper()
	cmd := exec.Command(truePath, "storm", "end")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	s.find("the exec after the storm", func(e *event) bool {
		return e.Hdr.Type == shm.EvExecve && int(e.Tgid) == pid
	})
}

// checkAccounting: every record the hooks built was read, and every record
// dropped was reported in the stream.
func checkAccounting(t *testing.T, s *session, events uint64) {
	t.Helper()
	st := s.stats()
	var built, missed uint64
	for _, h := range st.Hooks {
		built += h.Events
		missed += h.Missed
	}
	dropped := st.DroppedFull + st.DroppedTooLarge + st.DroppedFault
	t.Logf("records read %d (events %d), written %d, dropped %d (full %d), lost reported %d in %d records, hook misses %d",
		s.records, events, st.Written, dropped, st.DroppedFull, s.lost, st.LostRecords, missed)
	if events != built {
		t.Errorf("event records read %d, built by the hooks %d", events, built)
	}
	if st.Written != built {
		t.Errorf("ring written %d, built by the hooks %d", st.Written, built)
	}
	if s.lost != dropped {
		t.Errorf("lost reported in the stream %d, dropped %d", s.lost, dropped)
	}
}

// readAll reads every record until the source stays quiet, checking order.
func readAll(t *testing.T, s *session, order orderChecker, quiet time.Duration) (events uint64) {
	t.Helper()
	for {
		e, err := s.read(quiet)
		if err != nil {
			t.Fatal(err)
		}
		if e == nil {
			return events
		}
		events++
		order.add(t, e)
	}
}

func TestStorm(t *testing.T) {
	seconds := envInt(t, "SMITH_STORM_SECONDS", 5)

	t.Run("reader attached", func(t *testing.T) {
		s := open(t, "measure_latency=1")
		order := orderChecker{}
		start := time.Now()
		wait := startStorm(t, seconds)
		done := make(chan struct{})
		go func() { wait(); close(done) }()
		var events uint64
	loop:
		for {
			select {
			case <-done:
				break loop
			default:
			}
			e, err := s.read(100 * time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			if e != nil {
				events++
				order.add(t, e)
			}
		}
		events += readAll(t, s, order, time.Second)
		elapsed := time.Since(start)
		trigger(t, s)
		events++
		t.Logf("storm of %v with the reader attached: %d records, %.0f records/s",
			elapsed.Round(time.Millisecond), events, float64(events)/elapsed.Seconds())
		if events < stormWorkers {
			t.Errorf("only %d records from %d workers", events, stormWorkers)
		}
		checkAccounting(t, s, events)
		logLatency(t, s)
	})

	t.Run("no reader consuming", func(t *testing.T) {
		// A small ring fills quickly: drops are certain.
		s := open(t, fmt.Sprintf("ring_size=%d", shm.RingMinSize))
		wait := startStorm(t, seconds)
		wait()
		st := s.stats()
		if st.DroppedFull == 0 {
			t.Errorf("no drop counted with a full ring: written %d", st.Written)
		}
		order := orderChecker{}
		events := readAll(t, s, order, time.Second)
		trigger(t, s)
		events++
		checkAccounting(t, s, events)
	})
}

func TestLoadUnloadUnderLoad(t *testing.T) {
	cycles := envInt(t, "SMITH_LOAD_CYCLES", 20)
	// The load outlives the cycles; the workers are stopped at the end.
	var cmds []*exec.Cmd
	for i := 0; i < 2; i++ {
		cmd := helper(t, "storm")
		cmd.Env = append(cmd.Env, "SMITH_STORM_SECONDS=3600")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	defer func() {
		for _, c := range cmds {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}()
	// finit_module directly: an insmod process per cycle would compete
	// with the load for the CPUs.
	ko, err := os.Open(kmodtest.Path("smith.ko"))
	if err != nil {
		t.Fatal(err)
	}
	defer ko.Close()
	start := time.Now()
	var records uint64
	var loading, unloading time.Duration
	_ = kmodtest.Unload()
	for i := 0; i < cycles; i++ {
		t0 := time.Now()
		if err := unix.FinitModule(int(ko.Fd()), "", 0); err != nil {
			t.Fatalf("cycle %d: finit_module smith.ko: %v", i, err)
		}
		loading += time.Since(t0)
		dev, err := shm.OpenDevice(devPath)
		if err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		r, err := dev.NewReader()
		if err != nil {
			dev.Close()
			t.Fatalf("cycle %d: %v", i, err)
		}
		// Read for a moment so that hooks are in flight at rmmod.
		end := time.Now().Add(20 * time.Millisecond)
		for time.Now().Before(end) {
			if _, ok, err := r.Next(); err != nil {
				t.Fatalf("cycle %d: %v", i, err)
			} else if ok {
				records++
			}
		}
		r.Close()
		dev.Close()
		t0 = time.Now()
		if err := kmodtest.TryUnload(); err != nil {
			t.Fatalf("cycle %d: rmmod: %v", i, err)
		}
		unloading += time.Since(t0)
	}
	for _, c := range cmds {
		if c.ProcessState != nil {
			t.Errorf("storm worker %d ended early: %v", c.Process.Pid, c.ProcessState)
		}
	}
	t.Logf("%d load/unload cycles under exec and connect load in %v (loading %v, unloading %v), %d records read",
		cycles, time.Since(start).Round(time.Millisecond), loading.Round(time.Millisecond),
		unloading.Round(time.Millisecond), records)
	if records == 0 {
		t.Error("no record read in any cycle")
	}
}

// logLatency reports the time the hooks spent per call (the module's own
// histograms): figures to read, not to assert, under emulation.
func logLatency(t *testing.T, s *session) {
	t.Helper()
	names := []string{"execve", "execveat", "connect", "init_module", "finit_module"}
	for hook, name := range names {
		l, err := s.dev.Latency(uint32(hook))
		if err != nil {
			t.Fatalf("SMITH_IOC_GET_LATENCY %s: %v", name, err)
		}
		if l.Count == 0 {
			continue
		}
		t.Logf("hook latency %-12s count %6d median %6d ns p95 %6d ns p99 %6d ns max %7d ns",
			name, l.Count, l.MedianNs, l.P95Ns, l.P99Ns, l.MaxNs)
	}
	if l, err := s.dev.Latency(0); err == nil && l.Count == 0 {
		t.Error("execve latency histogram empty with measure_latency=1")
	}
}
