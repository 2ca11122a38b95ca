//go:build linux

// Command smith-bench-guest runs the hook-cost and transport benchmarks of
// one VM boot and writes their results as one JSON file
// (benchmark/internal/results.VM).
//
// Hook cost: the guest loops of benchmark/guest/hookloop.c run in five
// configurations, interleaved round by round (the order alternating) so
// that drift in the machine's load hits every configuration alike:
//
//	none     the module is not loaded
//	loaded   the module is loaded, no reader has ever attached
//	shm      shm transport, this program counting the ring's records
//	netlink  netlink transport, this program consuming the socket
//	agent    shm transport, the real smith-agent (-agent) on its default
//	         configuration consuming the ring: its events to its standard
//	         output, which this program discards (-agent-sink)
//
// Under QEMU's -icount shift=0,sleep=off with one virtual CPU (make bench)
// the guest clock counts executed instructions, 1 ns per instruction, and
// a loop's time per operation is the whole machine's instructions per
// operation, the reader's included.
//
// Idle wake-ups: with no events, how often the shm reader and the agent
// wake up per second (-idle-seconds).
//
// For shm and netlink a second, untimed pass of the loops runs with the
// module's latency self-measurement switched on, and its per-hook histogram
// (SMITH_IOC_GET_LATENCY) is read: the timed pass stays free of the
// measurement's own cost.
//
// Transports: SMITH_IOC_EMIT_TEST writes test records in the kernel as fast
// as it can; the time the ioctl takes per record is the producer's cost per
// record, and a rising offered rate finds where each transport first drops.
// A syscall storm (several connect loops at once) shows what the hooks
// themselves produce and whether the transport keeps up.
//
// The consumers here only count records: they stand for a reader that keeps
// up, so what is measured is the module and its transport.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"

	"smith/benchmark/internal/results"
	"smith/internal/harness"
)

type options struct {
	out            string
	module         string
	hookloop       string
	noop           string
	cpu            string
	where          string
	rounds         int
	execN          int
	connectN       int
	latencyN       int
	transportParam string
	latencyParam   string
	emitCount      int
	emitLen        int
	stepSeconds    float64
	maxRate        float64
	stormProcs     int
	stormN         int
	agent          string
	agentSink      string
	clock          string
	stepsModule    string
	idleSeconds    float64
	skipHooks      bool
	skipTransports bool
	mark           string
	configs        string
}

func main() {
	var o options
	flag.StringVar(&o.out, "out", "bench-vm.json", "write the results to this JSON `file`")
	flag.StringVar(&o.module, "module", "/smith.ko", "the module to load")
	flag.StringVar(&o.hookloop, "hookloop", "/bin/hookloop", "the syscall loop program")
	flag.StringVar(&o.noop, "noop", "/bin/noop", "the program the exec loop runs")
	flag.StringVar(&o.cpu, "cpu", "", "host CPU model, for the report (the guest sees an emulated one)")
	flag.StringVar(&o.where, "where", "QEMU TCG", "how the VM runs, for the report")
	flag.StringVar(&o.clock, "clock", "ns", "what the guest clock counts, for the report: ns, or instructions (QEMU -icount shift=0)")
	flag.IntVar(&o.rounds, "rounds", 5, "rounds of every configuration")
	flag.IntVar(&o.execN, "exec-n", 200, "execs per loop run")
	flag.IntVar(&o.connectN, "connect-n", 1000, "connects per loop run")
	flag.IntVar(&o.latencyN, "latency-n", 0, "iterations of the latency pass (0: same as the timed pass)")
	flag.StringVar(&o.transportParam, "transport-param", "send_type", "module parameter choosing the transport")
	flag.StringVar(&o.latencyParam, "latency-param", "measure_latency", "module parameter switching latency measurement")
	flag.IntVar(&o.emitCount, "emit-count", 4096, "test records per SMITH_IOC_EMIT_TEST call in the cost runs")
	flag.IntVar(&o.emitLen, "emit-len", 256, "bytes per test record, header included")
	flag.Float64Var(&o.stepSeconds, "step-seconds", 1, "duration of each offered-rate step")
	flag.Float64Var(&o.maxRate, "max-rate", 5e6, "highest offered rate tried, records/s")
	flag.IntVar(&o.stormProcs, "storm-procs", 2, "connect loops run at once in the syscall storm (0: no storm)")
	flag.IntVar(&o.stormN, "storm-n", 2000, "connects per loop in the syscall storm")
	flag.StringVar(&o.stepsModule, "steps-module", "", "the module built with SMITH_STEPS=1, for the in-hook cost by step (empty: not measured)")
	flag.StringVar(&o.agent, "agent", "", "smith-agent `binary` for the agent configuration (empty: not measured)")
	flag.StringVar(&o.agentSink, "agent-sink", "stdout", "the agent's sink: stdout (its default, sent to /dev/null), or file (a file in the guest's tmpfs: page cache per event)")
	flag.Float64Var(&o.idleSeconds, "idle-seconds", 5, "seconds the readers sit idle while their wake-ups are counted (0: not measured)")
	flag.BoolVar(&o.skipHooks, "skip-hooks", false, "skip the hook-cost benchmark")
	flag.BoolVar(&o.skipTransports, "skip-transports", false, "skip the transport benchmark")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s [flags]\n\n"+
			"Hook-cost and transport benchmarks inside a VM (as root, module not loaded).\n\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.StringVar(&o.mark, "mark", "", "instruction profile instead of the hook cost: the marker `program` of benchmark/profile (see its README)")
	flag.StringVar(&o.configs, "configs", "none,shm,agent", "with -mark: the configurations profiled, comma-separated")
	flag.Parse()
	if o.latencyN == 0 {
		o.latencyN = -1
	}
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "smith-bench-guest: %v\n", err)
		os.Exit(1)
	}
}

func run(o options) error {
	res := &results.VM{
		Machine: results.Machine{CPU: o.cpu, Kernel: harness.KernelRelease(), CPUs: runtime.NumCPU(), Where: o.where},
		Rounds:  o.rounds,
		Clock:   o.clock,
	}
	if o.agent != "" {
		res.AgentSink = o.agentSink
	}
	m := &module{path: o.module, transportParam: o.transportParam, latencyParam: o.latencyParam}
	b := &bench{o: o, m: m, res: res}
	defer func() { _ = m.unload() }()
	var err error
	if o.mark != "" {
		err = b.profile()
	} else if !o.skipHooks {
		err = b.hookCost()
	}
	if err == nil && o.stepsModule != "" {
		if serr := b.stepsPass(); serr != nil {
			b.note("in-hook cost by step: %v", serr)
		}
		b.checkpoint()
	}
	if err == nil && o.idleSeconds > 0 {
		err = b.idleWakeups()
	}
	if err == nil && !o.skipTransports {
		err = b.transports()
	}
	if err != nil {
		// Keep what was measured: a partial file says more than none.
		res.Notes = append(res.Notes, "stopped early: "+err.Error())
	}
	// The whole result: the last block on the console, and the file.
	b.checkpoint()
	if werr := results.Write(o.out, res); werr != nil {
		return werr
	}
	return err
}

type bench struct {
	o   options
	m   *module
	res *results.VM
}

// checkpoint prints the results so far on stdout as a result block of the
// VM result channel (harness.EncodeResult), so that a guest that dies
// later (the kprobe patching races QEMU's multi-threaded emulation is
// known for, docs/HOOKS.md) still hands back what it measured; smith-bench
// vmresult takes the last complete block.
func (b *bench) checkpoint() {
	if err := harness.EncodeResult(os.Stdout, harness.ResultBench, b.res); err != nil {
		fmt.Fprintln(os.Stderr, "smith-bench-guest: checkpoint:", err)
	}
}

func (b *bench) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintln(os.Stderr, "smith-bench-guest:", msg)
	b.res.Notes = append(b.res.Notes, msg)
}
