//go:build vmtest

package kerneltest

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"smith/internal/kmodtest"
	"smith/shm"
)

const hookExecve = 0 // bit number of shm.HookExecve: index into Stats.Hooks

func execTrue(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if err := exec.Command("/bin/true").Run(); err != nil {
			t.Fatalf("exec /bin/true: %v", err)
		}
	}
}

// debugfsHookLine returns the fields of a hook's line in debugfs stats:
// name, attached, events, missed, faults, truncated.
func debugfsHookLine(t *testing.T, name string) []string {
	t.Helper()
	b, err := os.ReadFile("/sys/kernel/debug/smith/stats")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 6 && f[0] == name {
			return f
		}
	}
	t.Fatalf("no %s line in debugfs stats:\n%s", name, b)
	return nil
}

func TestHookCountersAndLatencyFromRealExecs(t *testing.T) {
	kmodtest.LoadT(t, "measure_latency=1")
	d := open(t)
	if in := d.info(t); in.HooksAttached&shm.HookExecve == 0 {
		t.Fatalf("execve hook not attached: attached %#x failed %#x", in.HooksAttached, in.HooksFailed)
	}
	const n = 20
	before := d.stats(t).Hooks[hookExecve].Events
	execTrue(t, n)
	st := d.stats(t)
	if got := st.Hooks[hookExecve].Events - before; got < n {
		t.Fatalf("execve events rose by %d over %d execs", got, n)
	}
	f := debugfsHookLine(t, "execve")
	if f[1] != "yes" {
		t.Errorf("debugfs execve attached %q, want yes", f[1])
	}
	if ev, err := strconv.ParseUint(f[2], 10, 64); err != nil || ev < st.Hooks[hookExecve].Events {
		t.Errorf("debugfs execve events %q, ioctl said %d a moment before", f[2], st.Hooks[hookExecve].Events)
	}

	l := d.latency(t, hookExecve)
	// No hook takes 0 ns: a zero median means a clock too coarse to measure.
	if l.Count < n || l.MedianNs == 0 || !(l.MedianNs <= l.P95Ns && l.P95Ns <= l.P99Ns && l.P99Ns <= l.MaxNs) {
		t.Fatalf("execve latency after %d execs: %+v", n, l)
	}
	t.Logf("execve hook: %d calls, median %d ns, p95 %d ns, p99 %d ns, max %d ns",
		l.Count, l.MedianNs, l.P95Ns, l.P99Ns, l.MaxNs)

	if err := d.ResetLatency(); err != nil {
		t.Fatal(err)
	}
	if l := d.latency(t, hookExecve); l.Count != 0 || l.MaxNs != 0 {
		t.Fatalf("latency after reset: %+v", l)
	}

	// Switched off at run time: execs are still recorded, not measured.
	if err := os.WriteFile("/sys/module/smith/parameters/measure_latency", []byte("0"), 0); err != nil {
		t.Fatal(err)
	}
	before = d.stats(t).Hooks[hookExecve].Events
	execTrue(t, n)
	if got := d.stats(t).Hooks[hookExecve].Events - before; got < n {
		t.Fatalf("execve events rose by %d over %d execs with measurement off", got, n)
	}
	if l := d.latency(t, hookExecve); l.Count != 0 {
		t.Fatalf("latency measured while switched off: %+v", l)
	}
}
