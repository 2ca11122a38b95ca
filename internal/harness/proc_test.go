// SPDX-License-Identifier: GPL-2.0

package harness

import (
	"net"
	"os"
	"strconv"
	"testing"
)

func TestProcSamplersReadThisProcess(t *testing.T) {
	pid := os.Getpid()
	// Burn some CPU so that the count is above zero.
	x := 0
	for cpu, _ := ProcCPU(pid); cpu < 0.02; cpu, _ = ProcCPU(pid) {
		for i := range 1 << 20 {
			x += i
		}
	}
	if _, err := ProcCPU(pid); err != nil {
		t.Fatal(err)
	}
	m, err := ProcMemory(pid)
	if err != nil || m.RSSMiB <= 0 || m.PeakMiB < m.RSSMiB {
		t.Fatalf("memory %+v, %v", m, err)
	}
	if _, err := ProcWakeups(pid); err != nil {
		t.Fatal(err)
	}
	if _, err := ProcCPU(1 << 30); err == nil {
		t.Error("no error for a missing process")
	}
	if _, err := ProcWakeups(1 << 30); err == nil {
		t.Error("no error for a missing process")
	}
	_ = x
}

func TestFreePortCanBeListenedOn(t *testing.T) {
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
}

func TestMachineFacts(t *testing.T) {
	if k := KernelRelease(); k == "unknown" || k == "" {
		t.Errorf("kernel release %q", k)
	}
	if l := LoadAverage(); l == "" {
		t.Error("no load average")
	}
	// Not every architecture's cpuinfo has "model name": only logged.
	t.Logf("CPU model %q", CPUModel())
}
