package report

import (
	"strings"
	"testing"

	"smith/benchmark/internal/results"
)

func loops(config, op string, means ...float64) []results.LoopRun {
	var out []results.LoopRun
	for i, m := range means {
		out = append(out, results.LoopRun{Config: config, Op: op, Round: i + 1, N: 100, MeanNs: 2 * m, MedianNs: m})
	}
	return out
}

func lat(config, hook string, median uint64) results.HookLatency {
	return results.HookLatency{Config: config, Hook: hook, Count: 10, MedianNs: median, P95Ns: 2 * median, P99Ns: 3 * median, MaxNs: 4 * median}
}

func sampleVM() results.VM {
	var l []results.LoopRun
	l = append(l, loops("none", "connect", 1000, 1000, 1000)...)
	l = append(l, loops("shm", "connect", 1040, 1040, 1040)...)     // +4%: met
	l = append(l, loops("netlink", "connect", 1100, 1100, 1100)...) // +10%
	l = append(l, loops("none", "exec", 10000, 10000, 10000)...)    //
	l = append(l, loops("shm", "exec", 10500, 10500, 10500)...)     // +5%: missed by 2 points
	l = append(l, loops("loaded", "exec", 10010, 10010, 10010)...)  //
	return results.VM{
		Machine: results.Machine{CPU: "Test CPU", Kernel: "6.1.0-99-amd64", CPUs: 2, Where: "QEMU TCG"},
		Rounds:  3,
		Loops:   l,
		Latency: []results.HookLatency{
			lat("shm", "connect", 2000), lat("netlink", "connect", 4000), lat("shm", "execve", 3000),
		},
		Cost: []results.TransportCost{
			{Transport: "shm", NsPerRecord: 100, Records: 10, RecordLen: 256},
			{Transport: "netlink", NsPerRecord: 500, Records: 10, RecordLen: 256},
		},
		Saturation: []results.RateStep{
			{Transport: "shm", Offered: 1000, Achieved: 1000, Carried: 1000},
			{Transport: "shm", Offered: 2000, Achieved: 2000, Carried: 1500, Dropped: 5},
		},
	}
}

func section(o Output, title string) string {
	for _, s := range o.Sections {
		if s.Title == title {
			return s.Body
		}
	}
	return ""
}

// sectionContains fails t for each of want that o's section title lacks.
func sectionContains(t *testing.T, o Output, title string, want ...string) {
	t.Helper()
	containsAll(t, title, section(o, title), want...)
}

func TestRenderHookCostRatiosAndVerdicts(t *testing.T) {
	sectionContains(t, Render(Input{VMs: []results.VM{sampleVM()}}), "Hook cost",
		"### Kernel 6.1.0-99-amd64",
		"host CPU Test CPU",
		"1.040 / 1.040 / 1.040", // shm connect ratio
		"| connect | shm | +4.0% | +4.0% | <= 5% | met |",
		"| exec | shm | +5.0% | +5.0% | <= 3% | missed by 2.0 points |",
		"| connect hook median, shm | 8478 ns | 2000 ns |",
		"| connect hook, shm / netlink | 0.73 | 0.50 |",
		"| cost per record, shm / netlink (target <= 0.33) | n/a | 0.20 |",
		"| connect | shm | +40 ns | 2000 ns | 5000% |",
		"| exec | shm | +500 ns | 3000 ns | 600% |",
	)
}

func TestRoundRatioPairsRunsOfTheSameRound(t *testing.T) {
	vm := results.VM{Loops: []results.LoopRun{
		{Config: "none", Op: "connect", Round: 1, MeanNs: 100},
		{Config: "none", Op: "connect", Round: 2, MeanNs: 200}, // the host got busier
		{Config: "shm", Op: "connect", Round: 1, MeanNs: 110},
		{Config: "shm", Op: "connect", Round: 2, MeanNs: 220},
		{Config: "shm", Op: "connect", Round: 3, MeanNs: 999}, // no baseline: left out
		{Config: "shm", Op: "exec", Round: 1, MeanNs: 5},
	}}
	got := roundRatio(vm, "shm", "connect", meanOp)
	if got.Runs != 2 || got.Min != 1.1 || got.Max != 1.1 {
		t.Errorf("roundRatio = %+v, want 2 runs all 1.1", got)
	}
}

func TestRenderTransportsFindsTheLastRateWithoutDrops(t *testing.T) {
	o := Render(Input{VMs: []results.VM{sampleVM()}})
	sectionContains(t, o, "Transports",
		"**0.20** (target <= 0.33: met)",
		"Highest rate shm carried with no drop: **1.0 k records/s**",
	)
	var files []string
	for _, c := range o.Charts {
		files = append(files, c.File)
	}
	joined := strings.Join(files, " ")
	containsAll(t, "charts", joined, "bench-transport-load.png", "bench-hook-latency-connect.png")
}

func TestRenderWithoutResultsSaysSo(t *testing.T) {
	o := Render(Input{})
	for _, title := range []string{"Hook cost", "Transports", "Pipeline"} {
		if !strings.Contains(section(o, title), "Not measured") {
			t.Errorf("%s does not say it was not measured: %q", title, section(o, title))
		}
	}
	if len(o.Charts) != 0 {
		t.Errorf("charts without data: %v", o.Charts)
	}
}

func TestRenderPipelineSummarisesGoBenchRuns(t *testing.T) {
	h := &results.Host{
		Machine: results.Machine{CPU: "Test CPU", Kernel: "6.18", CPUs: 2, Where: "host"},
		GoBench: []results.GoBench{{Package: "smith/shm", Name: "Read/64B", Runs: []map[string]float64{
			{"ns/op": 90, "allocs/op": 0, "records/s": 11e6},
			{"ns/op": 80, "allocs/op": 0, "records/s": 12e6},
			{"ns/op": 100, "allocs/op": 0, "records/s": 10e6},
		}}},
		Pipeline: []results.RateStep{
			{Offered: 10000, Achieved: 10000, Carried: 10000, Sent: 10, Received: 10},
			{Offered: 20000, Achieved: 20000, Carried: 20000, Sent: 20, Received: 20, Duplicates: 2},
			{Offered: 50000, Achieved: 50000, Carried: 40000, Sent: 50, Received: 40, Dropped: 10},
		},
		Steady: &results.Steady{Rate: 10000, Seconds: 10, CPUPercent: []float64{5, 6, 7}, RSSMiB: []float64{20, 21, 22}},
	}
	sectionContains(t, Render(Input{Host: h}), "Pipeline",
		"| shm | Read/64B | 3 | 80 ns / 90 ns / 100 ns | 11.11 M | 11.00 M records/s | 0 |",
		"| 3 | 5.0 / 6.0 / 7.0 | 20.0 / 21.0 / 22.0 |",
		"| 20.0 k | 20.0 k | 20.0 k | 20 | 20 | 0 | 2 | 0.0 | 0 |",
		"CPU under 2% of a core: missed by 200%; RSS under 40 MiB: met",
		"Highest offered rate delivered with nothing lost: **20.0 k events/s** (20.0 k delivered; target >= 300.0 k on 2 cores: missed: 7% of it",
	)
}

func TestRenderInstructionHeadline(t *testing.T) {
	vm := sampleVM()
	if hook := section(Render(Input{VMs: []results.VM{vm}}), "Hook cost"); !strings.Contains(hook, "### Kernel") ||
		strings.Contains(hook, "Instructions per operation") {
		t.Fatal("a wall-clock run got the instruction headline")
	}
	vm.Clock, vm.AgentSink = clockInstructions, "stdout"
	vm.Loops = append(vm.Loops, loops("agent", "connect", 1020, 1025, 1050)...) // x2.04..: mean is 2*median
	vm.Idle = []results.IdleWakeups{{Reader: "shm", Seconds: 5, Wakeups: 5, PerSecond: 1}}
	sectionContains(t, Render(Input{VMs: []results.VM{vm}}), "Hook cost",
		"### Instructions per operation (headline)",
		"its events to its standard output (its default sink), sent to /dev/null",
		"| 6.1.0 | connect (n=100) | (e) shm + smith-agent | 2040 / 2050 / 2100 | 1.020 / 1.025 / 1.050 | 0 |",
		"| 6.1.0 | connect loop, (e) shm + smith-agent / (a) | x1.025 | x1.030 | x1.015 | met |",
		"| 6.1.0 | connect loop, (c) shm + reader / (a) | x1.040 | x1.020 | x1.010 | missed |",
		"| 6.1.0 | exec loop, (e) shm + smith-agent / (a) | n/a | x1.010 | x1.005 | not measured |",
		"| 6.1.0 | in the connect hook (shm, median) | 2000 | 1200 | - | missed (instructions) |",
		"| 6.1.0 | idle wake-ups per second, shm reader (sleeps ended) | 1.0 | - | 10 | met (goal too) |",
	)
}

// An arm64 kernel keeps its architecture in the tables, so that it is not
// taken for the amd64 kernel of the same version.
func TestKernelShortKeepsTheArchitecture(t *testing.T) {
	for in, want := range map[string]string{
		"6.1.0-50-amd64":      "6.1.0",
		"6.1.0-50-arm64":      "6.1.0-arm64",
		"6.12.95+deb12-arm64": "6.12.95+deb12-arm64",
		"6.12.95+deb12-amd64": "6.12.95+deb12",
		"5.10.0-32-rt-amd64":  "5.10.0",
	} {
		if got := kernelShort(in); got != want {
			t.Errorf("kernelShort(%q) = %q, want %q", in, got, want)
		}
	}
}

// A lossless step at the target rate meets it, though what it carried
// per second falls a hair short (the step's clock runs past its last
// event).
func TestRenderPipelineTargetByOfferedRate(t *testing.T) {
	h := &results.Host{Pipeline: []results.RateStep{
		{Offered: 300000, Achieved: 299995, Carried: 299990, Sent: 1500000, Received: 1500000},
		{Offered: 350000, Achieved: 347000, Carried: 346000, Sent: 1735000, Received: 1730000, Dropped: 5000},
	}}
	sectionContains(t, Render(Input{Host: h}), "Pipeline",
		"Highest offered rate delivered with nothing lost: **300.0 k events/s** (300.0 k delivered; target >= 300.0 k on 2 cores: met;")
}

// Only keeps the named sections with their charts, and refuses a title
// the report does not write.
func TestOnlyKeepsTheNamedSections(t *testing.T) {
	h := &results.Host{
		Machine:  results.Machine{CPU: "Test CPU", CPUs: 2, Where: "host"},
		Pipeline: []results.RateStep{{Offered: 10000, Achieved: 10000, Carried: 10000, Sent: 10, Received: 10}},
	}
	o, err := Render(Input{VMs: []results.VM{sampleVM()}, Host: h}).Only([]string{"Pipeline"})
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Sections) != 1 || o.Sections[0].Title != "Pipeline" {
		t.Fatalf("sections %v, want Pipeline only", o.Sections)
	}
	if len(o.Charts) != 1 || o.Charts[0].File != "bench-pipeline-load.png" {
		t.Fatalf("charts %v, want the pipeline's only", o.Charts)
	}
	if _, err := Render(Input{}).Only([]string{"Pipeline", "Ring"}); err == nil || !strings.Contains(err.Error(), `"Ring"`) {
		t.Fatalf("unknown title: %v, want an error naming it", err)
	}
}
