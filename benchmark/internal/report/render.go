package report

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"smith/benchmark/internal/chart"
	"smith/benchmark/internal/results"
	"smith/benchmark/internal/stats"
)

// The 2018 seed's published figures (real hardware, CentOS 7).
const (
	seedShmConnectNs     = 8478
	seedNetlinkConnectNs = 11558
	seedExecveNs         = 4823
)

// Targets the benchmarks report against (they never gate).
const (
	targetConnectOverhead = 0.05 // shm, connect loop
	targetExecOverhead    = 0.03 // shm, exec loop
	targetCostRatio       = 1.0 / 3
	targetPipelineRate    = 300000.0 // events/s into Kafka, nothing lost
	targetSteadyCPU       = 2.0      // % of one core at 10k events/s: 2 µs per event
	targetSteadyRSS       = 40.0     // MiB at 10k events/s
)

// Input is everything a report is made from.
type Input struct {
	VMs  []results.VM  // one per kernel, in the order run
	Host *results.Host // nil when the host part did not run
	// Date and Command describe the run for the header.
	Date    string
	Command string
}

// Chart is a chart file to write under docs/.
type Chart struct {
	File    string // base name, e.g. bench-transport-load.png
	Section string // the title of the section that shows it
	Chart   chart.Chart
}

// Output is the generated part of docs/BENCHMARKS.md and its charts.
type Output struct {
	Header   string
	Sections []Section
	Charts   []Chart
}

// Render builds the header, the "Hook cost", "Transports" and "Pipeline"
// sections and the charts from the results.
func Render(in Input) Output {
	var o Output
	o.Header = header(in)
	hook, hookCharts := hookCost(in.VMs)
	tr, trCharts := transports(in.VMs)
	pipe, pipeCharts := pipeline(in.Host)
	o.Sections = []Section{{"Hook cost", hook}, {"Transports", tr}, {"Pipeline", pipe}}
	for i, charts := range [][]Chart{hookCharts, trCharts, pipeCharts} {
		for j := range charts {
			charts[j].Section = o.Sections[i].Title
		}
	}
	o.Charts = slices.Concat(hookCharts, trCharts, pipeCharts)
	return o
}

// Only keeps the sections titled titles (and their charts); an unknown
// title is an error that names the known ones.
func (o Output) Only(titles []string) (Output, error) {
	var known []string
	for _, s := range o.Sections {
		known = append(known, s.Title)
	}
	for _, t := range titles {
		if !slices.Contains(known, t) {
			return Output{}, fmt.Errorf("no section %q (the report writes %s)", t, strings.Join(known, ", "))
		}
	}
	out := Output{Header: o.Header}
	for _, s := range o.Sections {
		if slices.Contains(titles, s.Title) {
			out.Sections = append(out.Sections, s)
		}
	}
	for _, c := range o.Charts {
		if slices.Contains(titles, c.Section) {
			out.Charts = append(out.Charts, c)
		}
	}
	return out, nil
}

func header(in Input) string {
	var b strings.Builder
	b.WriteString("# Benchmarks\n\n")
	b.WriteString("What Smith costs the programs it watches and how much it carries. " +
		"The sections Hook cost, Transports and Pipeline are written by `make bench` " +
		"(benchmark/, scripts/mk/bench.mk); Ring, Agent and Console hold the figures of " +
		"those parts' own benchmarks. Benchmarks report, they never gate CI.\n\n")
	b.WriteString("Every figure states where it was measured (CPU, kernel), how many runs it " +
		"summarises and their min / median / max. Configurations that are compared ran " +
		"side by side in the same boot, interleaved round by round, so that the machine's " +
		"changing load hits all of them alike.\n\n")
	b.WriteString("The kernel figures come from QEMU in software emulation (TCG), the only " +
		"way this project's build machines can load a module. TCG translates every guest " +
		"instruction, so absolute times are many times those of real hardware, and not " +
		"uniformly: system-call entry, page-table work (fork, exec) and timer reads are " +
		"emulated at very different costs. Ratios between configurations measured in the " +
		"same boot are what carries over to hardware; absolute nanoseconds do not. The hook-cost " +
		"headline therefore counts instructions instead (QEMU `-icount shift=0,sleep=off`, one " +
		"vCPU, `BENCH_ICOUNT=1`, the default): deterministic to a fraction of a percent, and " +
		"the whole machine's cost per operation, the reader's included.\n")
	b.WriteString("\nRun it with `make bench` (kernels: `BENCH_KERNELS`, default all of " +
		"`KERNELS`; the VM runner's flags: `BENCH_VM_ARGS`, see `smith-bench-guest -h`; " +
		"the host's: `BENCH_GO_ARGS`, `BENCH_PIPELINE_ARGS`, see `smith-bench`; " +
		"`make bench-host bench-report BENCH_SECTIONS=Pipeline` rewrites the Pipeline section alone). " +
		"Raw results stay in out/bench/*.json. The build machines are shared, and the " +
		"load average printed with each machine says how busy the host was.\n")
	if in.Date != "" || in.Command != "" {
		fmt.Fprintf(&b, "\nLast run: %s, `%s`.\n", in.Date, in.Command)
	}
	return b.String()
}

// ns formats a duration in ns with a unit that keeps 3 significant digits.
func ns(v float64) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case v < 1e4:
		return fmt.Sprintf("%.0f ns", v)
	case v < 1e7:
		return fmt.Sprintf("%.1f µs", v/1e3)
	default:
		return fmt.Sprintf("%.2f ms", v/1e6)
	}
}

func nsMMM(s stats.Summary) string {
	if s.Runs == 0 {
		return "n/a"
	}
	return ns(s.Min) + " / " + ns(s.Median) + " / " + ns(s.Max)
}

func ratioMMM(s stats.Summary) string {
	if s.Runs == 0 || math.IsNaN(s.Median) {
		return "n/a"
	}
	return fmt.Sprintf("%.3f / %.3f / %.3f", s.Min, s.Median, s.Max)
}

func rate(v float64) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case v >= 1e6:
		return fmt.Sprintf("%.2f M", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1f k", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

func machineLine(m results.Machine) string {
	cpu := cmp.Or(m.CPU, "unknown CPU")
	load := ""
	if m.HostLoad != "" {
		load = fmt.Sprintf(" (host load average at the end: %s)", m.HostLoad)
	}
	if m.Where == "host" {
		return fmt.Sprintf("%s, %d CPUs, kernel %s, on the host%s", cpu, m.CPUs, m.Kernel, load)
	}
	return fmt.Sprintf("host CPU %s; %s with %d vCPUs; guest kernel %s%s", cpu, cmp.Or(m.Where, "VM"), m.CPUs, m.Kernel, load)
}

var configLabel = map[string]string{
	results.ConfigNone:    "(a) no module",
	results.ConfigLoaded:  "(b) loaded, no reader",
	results.ConfigShm:     "(c) shm + reader",
	results.ConfigNetlink: "(d) netlink + reader",
	results.ConfigAgent:   "(e) shm + smith-agent",
}

// A loop run's figure: the mean per op (elapsed / iterations) or the
// median of its iterations.
type loopFigure func(results.LoopRun) float64

func meanOp(r results.LoopRun) float64   { return r.MeanNs }
func medianOp(r results.LoopRun) float64 { return r.MedianNs }

// loopSummary is a figure of one loop in one configuration over its runs.
func loopSummary(vm results.VM, config, op string, fig loopFigure) (stats.Summary, []results.LoopRun) {
	var v []float64
	var runs []results.LoopRun
	for _, r := range vm.Loops {
		if r.Config == config && r.Op == op {
			v = append(v, fig(r))
			runs = append(runs, r)
		}
	}
	return stats.Summarize(v), runs
}

// roundRatio is config's figure over (a)'s in the same round, summarised
// over the rounds both ran in.
func roundRatio(vm results.VM, config, op string, fig loopFigure) stats.Summary {
	base := map[int]float64{}
	for _, r := range vm.Loops {
		if r.Config == results.ConfigNone && r.Op == op && fig(r) > 0 {
			base[r.Round] = fig(r)
		}
	}
	var v []float64
	for _, r := range vm.Loops {
		if b, ok := base[r.Round]; ok && r.Config == config && r.Op == op {
			v = append(v, fig(r)/b)
		}
	}
	return stats.Summarize(v)
}

// latencySummary summarises one quantile of one hook over rounds.
func latencySummary(vm results.VM, config, hook string, q func(results.HookLatency) uint64) (stats.Summary, uint64) {
	var v []float64
	var count uint64
	for _, l := range vm.Latency {
		if l.Config == config && l.Hook == hook && l.Count > 0 {
			v = append(v, float64(q(l)))
			count += l.Count
		}
	}
	return stats.Summarize(v), count
}

func primary(vms []results.VM) *results.VM {
	for i := range vms {
		if k := vms[i].Machine.Kernel; strings.HasPrefix(k, "6.1.") && !strings.HasSuffix(k, "-arm64") {
			return &vms[i]
		}
	}
	if len(vms) > 0 {
		return &vms[0]
	}
	return nil
}

// notMeasured is the text of a section whose results (what: VM, host)
// the last run did not produce.
func notMeasured(what string) string {
	return "Not measured in the last run (no " + what + " results).\n"
}

// kernelShort names a kernel by its version, and its architecture when
// it is not amd64 ("6.1.0", "6.1.0-arm64").
func kernelShort(k string) string {
	arch := ""
	if strings.HasSuffix(k, "-arm64") {
		arch = "-arm64"
	}
	if i := strings.IndexByte(k, '-'); i > 0 {
		return k[:i] + arch
	}
	return k
}

func hookCost(vms []results.VM) (string, []Chart) {
	if len(vms) == 0 {
		return notMeasured("VM"), nil
	}
	var b strings.Builder
	b.WriteString("An exec loop (fork + execve of a tiny static program + wait) and a connect " +
		"loop (TCP connect + close to a listener on 127.0.0.1), both plain C " +
		"(benchmark/guest/hookloop.c), timed per iteration in five configurations in one VM boot: " +
		"(a) no module, (b) module loaded but no reader ever attached (the hooks' one " +
		"cheap check), (c) shm transport with a reader counting the ring's records " +
		"(shm.Reader, default wake-up), (d) netlink transport with a reader consuming the " +
		"socket, (e) shm transport with the real smith-agent. Two figures per run: the median " +
		"iteration, and the mean (elapsed / iterations). Each ratio divides each run by the run of (a) in the same round " +
		"(rounds alternate the order of the configurations), so that slow drift in the " +
		"host's load cancels; min / median / max are over rounds.\n\n" +
		"The in-kernel hook latency is the module's own histogram (`measure_latency`, read " +
		"with SMITH_IOC_GET_LATENCY), taken in a second pass of the loops right after each " +
		"timed pass, so that the timed pass does not pay for the clock reads; its figures " +
		"are the median over rounds, with the range over rounds in brackets.\n")
	b.WriteString(instructionHeadline(vms))
	for _, vm := range vms {
		fmt.Fprintf(&b, "\n### Kernel %s\n\n", vm.Machine.Kernel)
		fmt.Fprintf(&b, "Machine: %s. Module %s. %d rounds.\n\n", machineLine(vm.Machine), cmp.Or(vm.Module, "(version unknown)"), vm.Rounds)
		if vm.Clock == clockInstructions {
			b.WriteString("The guest clock counted instructions: every ns below is one instruction.\n\n")
		}
		loopTable(&b, vm)
		targetTable(&b, vm)
		b.WriteString(overheadSplit(vm))
		b.WriteString(stepTable(vm))
		latencyTable(&b, vm)
		notes(&b, vm.Notes)
	}
	b.WriteString(seedComparison(vms))
	charts := latencyCharts(vms)
	charts = append(charts, loopCharts(&b, vms)...)
	for _, c := range charts {
		if strings.HasPrefix(c.File, "bench-hook-latency") {
			fmt.Fprintf(&b, "\n![%s](%s)\n", c.Chart.Title, c.File)
		}
	}
	return b.String(), charts
}

// loopTable is vm's table of loop timings per configuration.
func loopTable(b *strings.Builder, vm results.VM) {
	b.WriteString("| loop | configuration | runs | median op: min / median / max | ratio to (a) | mean op: min / median / max | ratio to (a) | records per run | dropped |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, op := range []string{"exec", "connect"} {
		for _, c := range results.Configs {
			s, runs := loopSummary(vm, c, op, meanOp)
			med, _ := loopSummary(vm, c, op, medianOp)
			if s.Runs == 0 {
				continue
			}
			var rec, drop []float64
			for _, r := range runs {
				rec = append(rec, float64(r.Records))
				drop = append(drop, float64(r.Dropped))
			}
			recs, dropS := "-", "-"
			if c == results.ConfigShm || c == results.ConfigNetlink || c == results.ConfigAgent {
				recs = fmt.Sprintf("%.0f", stats.Summarize(rec).Median)
				dropS = fmt.Sprintf("%.0f", sum(drop))
			}
			fmt.Fprintf(b, "| %s (n=%d) | %s | %d | %s | %s | %s | %s | %s | %s |\n",
				op, runs[0].N, configLabel[c], s.Runs, nsMMM(med), ratioMMM(roundRatio(vm, c, op, medianOp)),
				nsMMM(s), ratioMMM(roundRatio(vm, c, op, meanOp)), recs, dropS)
		}
	}
}

// targetTable is vm's overheads against the targets.
func targetTable(b *strings.Builder, vm results.VM) {
	b.WriteString("\nTargets (overhead = ratio - 1, median over rounds); the verdict goes by the " +
		"median iteration, which a host preempting a vCPU now and then moves far less " +
		"than the mean:\n\n")
	b.WriteString("| loop | transport | overhead, median op | overhead, mean op | target | verdict |\n|---|---|---|---|---|---|\n")
	for _, t := range []struct {
		op     string
		target float64
	}{{"connect", targetConnectOverhead}, {"exec", targetExecOverhead}} {
		base, _ := loopSummary(vm, results.ConfigNone, t.op, medianOp)
		for _, c := range []string{results.ConfigShm, results.ConfigNetlink} {
			s, _ := loopSummary(vm, c, t.op, medianOp)
			if s.Runs == 0 || base.Runs == 0 {
				continue
			}
			ov := roundRatio(vm, c, t.op, medianOp).Median - 1
			mean := roundRatio(vm, c, t.op, meanOp).Median - 1
			verdict := "met"
			if ov > t.target {
				verdict = fmt.Sprintf("missed by %.1f points", (ov-t.target)*100)
			}
			if c == results.ConfigNetlink {
				verdict = "(no target; for comparison)"
			}
			fmt.Fprintf(b, "| %s | %s | %+.1f%% | %+.1f%% | <= %.0f%% | %s |\n", t.op, c, ov*100, mean*100, t.target*100, verdict)
		}
	}
}

// latencyTable is vm's in-kernel hook latency, when measured.
func latencyTable(b *strings.Builder, vm results.VM) {
	if len(vm.Latency) > 0 {
		b.WriteString("\nIn-kernel hook latency (module's histogram):\n\n")
		b.WriteString("| transport | hook | calls measured | median | p95 | p99 | max |\n|---|---|---|---|---|---|---|\n")
		for _, c := range []string{results.ConfigShm, results.ConfigNetlink, results.ConfigAgent} {
			for _, h := range []string{"execve", "connect"} {
				med, count := latencySummary(vm, c, h, func(l results.HookLatency) uint64 { return l.MedianNs })
				if med.Runs == 0 {
					continue
				}
				p95, _ := latencySummary(vm, c, h, func(l results.HookLatency) uint64 { return l.P95Ns })
				p99, _ := latencySummary(vm, c, h, func(l results.HookLatency) uint64 { return l.P99Ns })
				mx, _ := latencySummary(vm, c, h, func(l results.HookLatency) uint64 { return l.MaxNs })
				fmt.Fprintf(b, "| %s | %s | %d | %s | %s | %s | %s |\n", c, h, count,
					bracket(med), bracket(p95), bracket(p99), bracket(mx))
			}
		}
	}
}

// loopCharts are the primary VM's CDFs of the loops' iterations, each
// linked from b.
func loopCharts(b *strings.Builder, vms []results.VM) []Chart {
	var charts []Chart
	if p := primary(vms); p != nil {
		for _, op := range []string{"connect", "exec"} {
			c := chart.Chart{
				Title:  fmt.Sprintf("%s loop: time per iteration (kernel %s, TCG)", op, p.Machine.Kernel),
				XLabel: "µs per iteration (log)", YLabel: "fraction of iterations", LogX: true, CDF: true,
			}
			for _, cfg := range results.Configs {
				for _, s := range p.Samples {
					if s.Config == cfg && s.Op == op {
						xs, ps := stats.CDF(s.Ns, 400)
						for i := range xs {
							xs[i] /= 1e3
						}
						c.Series = append(c.Series, chart.Series{Name: configLabel[cfg], X: xs, Y: ps})
					}
				}
			}
			if len(c.Series) > 0 {
				file := "bench-" + op + "-loop-cdf.png"
				charts = append(charts, Chart{File: file, Chart: c})
				fmt.Fprintf(b, "\n![%s loop CDF](%s)\n", op, file)
			}
		}
	}
	return charts
}

// overheadSplit compares, per loop and transport, what a call got slower
// by (median iteration, against (a), medians over rounds) with the time
// the module measured inside its hook: the part of the overhead that is
// the hook itself, and the part that is not.
func overheadSplit(vm results.VM) string {
	var b strings.Builder
	for _, t := range []struct{ op, hook string }{{"connect", "connect"}, {"exec", "execve"}} {
		base, _ := loopSummary(vm, results.ConfigNone, t.op, medianOp)
		for _, c := range []string{results.ConfigShm, results.ConfigNetlink} {
			s, _ := loopSummary(vm, c, t.op, medianOp)
			hook, _ := latencySummary(vm, c, t.hook, func(l results.HookLatency) uint64 { return l.MedianNs })
			if base.Runs == 0 || s.Runs == 0 || hook.Runs == 0 {
				continue
			}
			if b.Len() == 0 {
				b.WriteString("\nWhere the overhead is: the median call's extra time against (a), and the " +
					"module's median time inside the hook. Extra time beyond the hook is spent " +
					"outside it: the reader's wake-ups (an irq_work and a wake-up, once per " +
					"batch since ABI 1.1), its system calls, and, in a wall-clock run, the host's " +
					"noise. The median call rarely pays for the reader's batch; the mean op does.\n\n")
				b.WriteString("| loop | transport | extra per call | in the hook | hook share of the extra |\n|---|---|---|---|---|\n")
			}
			extra := s.Median - base.Median
			share := "n/a"
			if extra > 0 {
				share = fmt.Sprintf("%.0f%%", 100*hook.Median/extra)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", t.op, c, signedNs(extra), ns(hook.Median), share)
		}
	}
	return b.String()
}

func signedNs(v float64) string {
	if v < 0 {
		return "-" + ns(-v)
	}
	return "+" + ns(v)
}

// latencyCharts plot the module's latency quantiles as a coarse CDF: the
// histogram is read as median, p95, p99 and max, so the curve has those
// four points per transport (median over rounds of each).
func latencyCharts(vms []results.VM) []Chart {
	var out []Chart
	for _, h := range []string{"connect", "execve"} {
		c := chart.Chart{
			Title:  h + " hook: in-kernel latency, CDF from the module's quantiles (TCG)",
			XLabel: "µs in the hook (log)", YLabel: "fraction of calls", LogX: true, CDF: true,
		}
		for _, vm := range vms {
			for _, cfg := range []string{results.ConfigShm, results.ConfigNetlink} {
				var xs []float64
				for _, q := range []func(results.HookLatency) uint64{
					func(l results.HookLatency) uint64 { return l.MedianNs },
					func(l results.HookLatency) uint64 { return l.P95Ns },
					func(l results.HookLatency) uint64 { return l.P99Ns },
					func(l results.HookLatency) uint64 { return l.MaxNs },
				} {
					s, _ := latencySummary(vm, cfg, h, q)
					xs = append(xs, s.Median/1e3)
				}
				if math.IsNaN(xs[0]) || xs[0] == 0 {
					continue
				}
				c.Series = append(c.Series, chart.Series{
					Name: cfg + " " + kernelShort(vm.Machine.Kernel),
					X:    xs, Y: []float64{0.5, 0.95, 0.99, 1},
				})
			}
		}
		if len(c.Series) > 0 {
			out = append(out, Chart{File: "bench-hook-latency-" + h + ".png", Chart: c})
		}
	}
	return out
}

func bracket(s stats.Summary) string {
	if s.Runs == 0 {
		return "n/a"
	}
	if s.Runs == 1 {
		return ns(s.Median)
	}
	return fmt.Sprintf("%s (%s–%s)", ns(s.Median), ns(s.Min), ns(s.Max))
}

func sum(v []float64) float64 {
	var t float64
	for _, x := range v {
		t += x
	}
	return t
}

func notes(b *strings.Builder, n []string) {
	if len(n) == 0 {
		return
	}
	b.WriteString("\nNotes from this run:\n\n")
	for _, s := range n {
		fmt.Fprintf(b, "- %s\n", s)
	}
}

func seedComparison(vms []results.VM) string {
	var b strings.Builder
	b.WriteString("\n### Against the seed's published figures\n\n")
	b.WriteString("The 2018 seed measured its hooks on real hardware under CentOS 7, shm and " +
		"netlink on different CPUs. Ours are in-kernel hook medians (module histogram) " +
		"under TCG, both transports in the same boot.\n\n")
	b.WriteString("| figure | seed |")
	for _, vm := range vms {
		fmt.Fprintf(&b, " ours, %s |", kernelShort(vm.Machine.Kernel))
	}
	b.WriteString("\n|---|---|" + strings.Repeat("---|", len(vms)) + "\n")
	med := func(vm results.VM, c, h string) float64 {
		s, _ := latencySummary(vm, c, h, func(l results.HookLatency) uint64 { return l.MedianNs })
		if s.Runs == 0 {
			return math.NaN()
		}
		return s.Median
	}
	row := func(name, seed string, f func(vm results.VM) string) {
		fmt.Fprintf(&b, "| %s | %s |", name, seed)
		for _, vm := range vms {
			fmt.Fprintf(&b, " %s |", f(vm))
		}
		b.WriteString("\n")
	}
	row("connect hook median, shm", ns(seedShmConnectNs), func(vm results.VM) string { return ns(med(vm, results.ConfigShm, "connect")) })
	row("connect hook median, netlink", ns(seedNetlinkConnectNs), func(vm results.VM) string { return ns(med(vm, results.ConfigNetlink, "connect")) })
	row("execve hook median, shm", ns(seedExecveNs), func(vm results.VM) string { return ns(med(vm, results.ConfigShm, "execve")) })
	row("connect hook, shm / netlink", fmt.Sprintf("%.2f", float64(seedShmConnectNs)/seedNetlinkConnectNs), func(vm results.VM) string {
		return ratioStr(med(vm, results.ConfigShm, "connect") / med(vm, results.ConfigNetlink, "connect"))
	})
	row("execve hook, shm / netlink", "n/a", func(vm results.VM) string {
		return ratioStr(med(vm, results.ConfigShm, "execve") / med(vm, results.ConfigNetlink, "execve"))
	})
	row("cost per record, shm / netlink (target <= 0.33)", "n/a", func(vm results.VM) string {
		return ratioStr(costRatio(vm))
	})
	return b.String()
}

func ratioStr(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", v)
}

func costSummary(vm results.VM, transport string) stats.Summary {
	var v []float64
	for _, c := range vm.Cost {
		if c.Transport == transport {
			v = append(v, c.NsPerRecord)
		}
	}
	return stats.Summarize(v)
}

func costRatio(vm results.VM) float64 {
	s, n := costSummary(vm, "shm"), costSummary(vm, "netlink")
	if s.Runs == 0 || n.Runs == 0 {
		return math.NaN()
	}
	return s.Median / n.Median
}

func transports(vms []results.VM) (string, []Chart) {
	if len(vms) == 0 {
		return notMeasured("VM"), nil
	}
	var b strings.Builder
	b.WriteString("SMITH_IOC_EMIT_TEST makes the module write test records through the " +
		"configured transport as fast as it can, each the way a hook does (reserve, fill, " +
		"commit, with preemption off), while a reader consumes them on the other vCPU. " +
		"Cost per record is the ioctl's time divided by the records it wrote: the " +
		"producer's side, what a hook pays. Saturation offers a rising rate (one ioctl " +
		"every 10 ms) and reports what arrived; the first step with a drop ends the " +
		"climb.\n")
	load := chart.Chart{
		Title:  "Transports: records carried vs offered (TCG)",
		XLabel: "offered records/s (log)", YLabel: "carried records/s (log)",
		LogX: true, LogY: true, Diagonal: true,
	}
	for _, vm := range vms {
		fmt.Fprintf(&b, "\n### Kernel %s\n\n", vm.Machine.Kernel)
		fmt.Fprintf(&b, "Machine: %s.\n\n", machineLine(vm.Machine))
		b.WriteString("| transport | record bytes | calls | records per call | per record: min / median / max | received | dropped |\n|---|---|---|---|---|---|---|\n")
		for _, t := range []string{"shm", "netlink"} {
			var recv, drop, count float64
			var rl int
			for _, c := range vm.Cost {
				if c.Transport == t {
					recv += float64(c.Received)
					drop += float64(c.Dropped)
					count = float64(c.Records)
					rl = c.RecordLen
				}
			}
			s := costSummary(vm, t)
			if s.Runs == 0 {
				continue
			}
			fmt.Fprintf(&b, "| %s | %d | %d | %.0f | %s | %.0f | %.0f |\n", t, rl, s.Runs, count, nsMMM(s), recv, drop)
		}
		if r := costRatio(vm); !math.IsNaN(r) {
			verdict := "met"
			if r > targetCostRatio {
				verdict = fmt.Sprintf("missed: %.2f times the target", r/targetCostRatio)
			}
			fmt.Fprintf(&b, "\nshm / netlink cost per record (medians): **%.2f** (target <= 0.33: %s).\n", r, verdict)
		}
		b.WriteString("\n| transport | offered /s | achieved /s | carried /s | sent | received | dropped |\n|---|---|---|---|---|---|---|\n")
		best := map[string]float64{}
		for _, s := range vm.Saturation {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %d | %d | %d |\n", s.Transport, rate(s.Offered), rate(s.Achieved), rate(s.Carried), s.Sent, s.Received, s.Dropped)
			if s.Dropped == 0 && s.Achieved > best[s.Transport] {
				best[s.Transport] = s.Achieved
			}
		}
		for _, t := range []string{"shm", "netlink"} {
			if v, ok := best[t]; ok {
				fmt.Fprintf(&b, "\nHighest rate %s carried with no drop: **%s records/s**.", t, rate(v))
			}
		}
		b.WriteString("\n")
		if len(vm.Storms) > 0 {
			b.WriteString("\nSyscall storm: connect loops in parallel processes, a reader consuming:\n\n")
			b.WriteString("| transport | processes | connects | seconds | records | records/s | received | dropped |\n|---|---|---|---|---|---|---|---|\n")
			for _, s := range vm.Storms {
				fmt.Fprintf(&b, "| %s | %d | %d | %.1f | %d | %s | %d | %d |\n", s.Transport, s.Procs, s.Calls, s.Seconds,
					s.Records, rate(float64(s.Records)/s.Seconds), s.Received, s.Dropped)
			}
		}
		for _, t := range []string{"shm", "netlink"} {
			var xs, ys []float64
			for _, s := range vm.Saturation {
				if s.Transport == t {
					xs = append(xs, s.Achieved)
					ys = append(ys, s.Carried)
				}
			}
			if len(xs) > 0 {
				load.Series = append(load.Series, chart.Series{Name: t + " " + kernelShort(vm.Machine.Kernel), X: xs, Y: ys})
			}
		}
	}
	if len(load.Series) == 0 {
		return b.String(), nil
	}
	b.WriteString("\n![transport load](bench-transport-load.png)\n")
	return b.String(), []Chart{{File: "bench-transport-load.png", Chart: load}}
}

func pipeline(h *results.Host) (string, []Chart) {
	if h == nil {
		return notMeasured("host"), nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Machine: %s.\n\n", machineLine(h.Machine))
	goBenchTable(&b, h.GoBench)
	charts := pipelineLoad(&b, h.Pipeline)
	if h.Steady != nil {
		steadyCost(&b, h.Steady)
	}
	notes(&b, h.Notes)
	return b.String(), charts
}

// goBenchTable is the Go benchmarks' table (none: nothing).
func goBenchTable(b *strings.Builder, benches []results.GoBench) {
	if len(benches) == 0 {
		return
	}
	b.WriteString("Go benchmarks of shm/ and agent/ (their own; collected here), over the runs " +
		"`-count` asked for:\n\n")
	b.WriteString("Ops/s per core is 1e9 / ns/op of the median run (each benchmark runs on one " +
		"goroutine); where one op is one record or event it is records or events per " +
		"second per core.\n\n")
	b.WriteString("| package | benchmark | runs | ns/op: min / median / max | ops/s per core | other metrics (median) | allocs/op | B/op |\n|---|---|---|---|---|---|---|---|\n")
	for _, g := range benches {
		col := func(unit string) stats.Summary {
			var v []float64
			for _, r := range g.Runs {
				if x, ok := r[unit]; ok {
					v = append(v, x)
				}
			}
			return stats.Summarize(v)
		}
		var extra []string
		units := map[string]bool{}
		for _, r := range g.Runs {
			for u := range r {
				units[u] = true
			}
		}
		for _, u := range slices.Sorted(maps.Keys(units)) {
			if u == "ns/op" || u == "allocs/op" || u == "B/op" {
				continue
			}
			extra = append(extra, fmt.Sprintf("%s %s", rate(col(u).Median), u))
		}
		allocs, bytes := col("allocs/op"), col("B/op")
		nsop := col("ns/op")
		perCore := "-"
		if nsop.Runs > 0 && nsop.Median > 0 {
			perCore = rate(1e9 / nsop.Median)
		}
		fmt.Fprintf(b, "| %s | %s | %d | %s | %s | %s | %s | %s |\n", strings.TrimPrefix(g.Package, "smith/"), g.Name,
			len(g.Runs), nsMMM(nsop), perCore, cmp.Or(strings.Join(extra, ", "), "-"),
			fmtMedian(allocs), fmtMedian(bytes))
	}
}

// pipelineLoad is the pipeline's climb of rates into kfake and its chart
// (no steps: nothing).
func pipelineLoad(b *strings.Builder, steps []results.RateStep) []Chart {
	if len(steps) == 0 {
		return nil
	}
	var charts []Chart
	b.WriteString("\nThe whole pipeline: a Go producer fills a ring in a shared file at an " +
		"offered rate, `smith-agent` reads it in its kernel-free mode, decodes, enriches, " +
		"encodes JSON and ships to a kfake broker (a real Kafka protocol implementation, " +
		"github.com/twmb/franz-go/pkg/kfake) on loopback; delivered counts the agent's events the broker " +
		"holds, each sequence number once (one that came again is a duplicate), dropped what the ring " +
		"and the agent counted. Rates rise until the first drop. " +
		"Stalled is how long the producer itself did not run (the host took its CPU away): " +
		"the events of that time are not offered later in a burst, so achieved falls below offered.\n\n")
	b.WriteString("| offered /s | achieved /s | delivered /s | sent | delivered | dropped | duplicates | seconds | stalled ms |\n|---|---|---|---|---|---|---|---|---|\n")
	var xs, ys []float64
	for _, s := range steps {
		fmt.Fprintf(b, "| %s | %s | %s | %d | %d | %d | %d | %.1f | %.0f |\n", rate(s.Offered), rate(s.Achieved), rate(s.Carried), s.Sent, s.Received, s.Dropped, s.Duplicates, s.Seconds, s.Stalled*1000)
		xs, ys = append(xs, s.Achieved), append(ys, s.Carried)
	}
	charts = append(charts, Chart{File: "bench-pipeline-load.png", Chart: chart.Chart{
		Title:  "Pipeline into kfake: events delivered vs offered (host)",
		XLabel: "offered events/s (log)", YLabel: "delivered events/s (log)",
		LogX: true, LogY: true, Diagonal: true,
		Series: []chart.Series{{Name: "smith-agent -> kfake", X: xs, Y: ys}},
	}})
	// The step's offered rate, not what it carried: a lossless step at
	// 300 k/s carries 299,99x events/s (the step's clock runs a little
	// past its last event), and events the producer did not offer (stalled)
	// are not lost.
	var best *results.RateStep
	for i, st := range steps {
		if st.Dropped == 0 && st.Received >= st.Sent && (best == nil || st.Offered > best.Offered) {
			best = &steps[i]
		}
	}
	if best != nil {
		verdict := "met"
		if best.Offered < targetPipelineRate {
			verdict = fmt.Sprintf("missed: %.0f%% of it", 100*best.Offered/targetPipelineRate)
		}
		fmt.Fprintf(b, "\nHighest offered rate delivered with nothing lost: **%s events/s** (%s delivered; target >= %s on 2 cores: %s; "+
			"the last step above is where the first drop came, or where the climb ended).\n",
			rate(best.Offered), rate(best.Carried), rate(targetPipelineRate), verdict)
	}
	b.WriteString("\n![pipeline load](bench-pipeline-load.png)\n")
	return charts
}

// steadyCost is the agent's CPU and memory at a steady rate.
func steadyCost(b *strings.Builder, s *results.Steady) {
	fmt.Fprintf(b, "\nAgent cost at a steady %s events/s for %.0f s (from /proc/PID/stat and status; CPU in %% of one core, RSS the peak VmHWM):\n\n", rate(s.Rate), s.Seconds)
	b.WriteString("| runs | CPU %: min / median / max | peak RSS MiB: min / median / max | delivered | dropped |\n|---|---|---|---|---|\n")
	c, r := stats.Summarize(s.CPUPercent), stats.Summarize(s.RSSMiB)
	var del, drop uint64
	for i := range s.Delivered {
		del += s.Delivered[i]
	}
	for i := range s.Dropped {
		drop += s.Dropped[i]
	}
	fmt.Fprintf(b, "| %d | %.1f / %.1f / %.1f | %.1f / %.1f / %.1f | %d | %d |\n", c.Runs, c.Min, c.Median, c.Max, r.Min, r.Median, r.Max, del, drop)
	verdict := func(v, limit float64) string {
		if v <= limit {
			return "met"
		}
		return fmt.Sprintf("missed by %.0f%%", 100*(v/limit-1))
	}
	fmt.Fprintf(b, "\nTargets (medians): CPU under %.0f%% of a core: %s; RSS under %.0f MiB: %s.\n",
		targetSteadyCPU, verdict(c.Median, targetSteadyCPU), targetSteadyRSS, verdict(r.Median, targetSteadyRSS))
}

func fmtMedian(s stats.Summary) string {
	if s.Runs == 0 {
		return "-"
	}
	return fmt.Sprintf("%g", s.Median)
}

// clockInstructions is results.VM.Clock when the guest clock counted
// executed instructions (QEMU -icount shift=0,sleep=off).
const clockInstructions = "instructions"

// agentSinkText says where configuration (e)'s agent wrote its events in
// the runs vms.
func agentSinkText(vms []results.VM) string {
	sinks := map[string]bool{}
	for _, vm := range vms {
		sinks[vm.AgentSink] = true
	}
	switch {
	case len(sinks) > 1:
		return "its events to its standard output (sent to /dev/null) on some kernels, to a file on others (`-agent-sink`)"
	case sinks["file"]:
		return "its events written to a file in the guest's tmpfs (`-agent-sink file`)"
	case sinks["stdout"]:
		return "its events to its standard output (its default sink), sent to /dev/null (`-agent-sink stdout`)"
	}
	return "its events written to a file" // runs from before the runner recorded the sink
}

// Targets of the instruction-count headline: ratio of the mean op to (a),
// and instructions inside the hook (execve: plus the argv copy).
var instructionTargets = []struct {
	op, config string
	max, goal  float64
}{
	{"connect", results.ConfigAgent, 1.03, 1.015},
	{"exec", results.ConfigAgent, 1.01, 1.005},
	{"connect", results.ConfigShm, 1.02, 1.01},
}

const (
	targetHookConnect = 1200
	targetHookExecve  = 3000
)

// instructionHeadline is the table of the runs whose guest clock counted
// instructions, one vCPU: a loop's mean op is then the whole machine's
// instructions per operation, reader included.
func instructionHeadline(vms []results.VM) string {
	var icount []results.VM
	for _, vm := range vms {
		if vm.Clock == clockInstructions {
			icount = append(icount, vm)
		}
	}
	if len(icount) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n### Instructions per operation (headline)\n\n" +
		"QEMU TCG with `-icount shift=0,sleep=off` and one virtual CPU: the guest clock " +
		"advances one ns per executed instruction and skips idle time, so a loop's elapsed " +
		"time / iterations is the whole machine's instructions per operation, the reader's " +
		"(or the agent's) included, which is what a server pays. Most rounds repeat within a " +
		"fraction of a percent, unlike wall-clock TCG. Ratios are to (a) in the same round; " +
		"min / median / max over rounds. (e) is the real smith-agent on its default " +
		"configuration, " + agentSinkText(icount) + ". Records the reader had not consumed " +
		"when a loop ended (at most one wake-up timeout's worth) are read after the timed " +
		"loop: the pending column says how many bytes that was, per run (median), and the " +
		"reader's share of (c) and (e) is low by up to that fraction of the run's records. " +
		"The agent's column counts its threads' own instructions from the loop's start until " +
		"the ring is drained, divided by the records of the loop, those read after it included. " +
		"Each configuration first runs a few untimed iterations of each loop and waits until " +
		"its reader is idle, so that what a reader does once (the agent hashes the loop's " +
		"executable the first time it sees it) is not spread over the timed loop.\n\n")
	b.WriteString("| kernel | loop | configuration | instructions per op: min / median / max | ratio to (a) | pending bytes | agent instructions per record |\n|---|---|---|---|---|---|---|\n")
	for _, vm := range icount {
		for _, op := range []string{"connect", "exec"} {
			for _, c := range results.Configs {
				s, runs := loopSummary(vm, c, op, meanOp)
				if s.Runs == 0 {
					continue
				}
				var pend, per []float64
				for _, r := range runs {
					pend = append(pend, float64(r.PendingBytes))
					if r.ReaderNs > 0 && r.Records > 0 {
						per = append(per, float64(r.ReaderNs)/float64(r.Records))
					}
				}
				agent := "-"
				if len(per) > 0 {
					agent = fmt.Sprintf("%.0f", stats.Summarize(per).Median)
				}
				fmt.Fprintf(&b, "| %s | %s (n=%d) | %s | %.0f / %.0f / %.0f | %s | %.0f | %s |\n", kernelShort(vm.Machine.Kernel),
					op, runs[0].N, configLabel[c], s.Min, s.Median, s.Max, ratioMMM(roundRatio(vm, c, op, meanOp)), stats.Summarize(pend).Median, agent)
			}
		}
	}
	instructionTargetTable(&b, icount)
	return b.String()
}

// instructionTargetTable writes the headline's targets: each ratio and
// in-hook median of the instruction-counting runs against its target.
func instructionTargetTable(b *strings.Builder, icount []results.VM) {
	b.WriteString("\nTargets (benchmark figures, never gates), median over rounds:\n\n")
	b.WriteString("| kernel | figure | measured | target | goal | verdict |\n|---|---|---|---|---|---|\n")
	verdict := func(v, max, goal float64) string {
		switch {
		case math.IsNaN(v):
			return "not measured"
		case v <= goal:
			return "met (goal too)"
		case v <= max:
			return "met"
		}
		return "missed"
	}
	for _, vm := range icount {
		k := kernelShort(vm.Machine.Kernel)
		for _, t := range instructionTargets {
			r := roundRatio(vm, t.config, t.op, meanOp)
			v := math.NaN()
			if r.Runs > 0 {
				v = r.Median
			}
			m := "n/a"
			if !math.IsNaN(v) {
				m = fmt.Sprintf("x%.3f", v)
			}
			fmt.Fprintf(b, "| %s | %s loop, %s / (a) | %s | x%.3f | x%.3f | %s |\n", k, t.op, configLabel[t.config],
				m, t.max, t.goal, verdict(v, t.max, t.goal))
		}
		for _, h := range []struct {
			hook   string
			target float64
		}{{"connect", targetHookConnect}, {"execve", targetHookExecve}} {
			med, _ := latencySummary(vm, results.ConfigShm, h.hook, func(l results.HookLatency) uint64 { return l.MedianNs })
			v := math.NaN()
			if med.Runs > 0 {
				v = med.Median
			}
			what := "instructions"
			if h.hook == "execve" {
				what = "instructions, argv copy included"
			}
			fmt.Fprintf(b, "| %s | in the %s hook (shm, median) | %.0f | %.0f | - | %s |\n", k, h.hook, v, h.target,
				verdict(v, h.target, h.target)+" ("+what+")")
		}
		for _, w := range vm.Idle {
			fmt.Fprintf(b, "| %s | idle wake-ups per second, %s | %.1f | - | 10 | %s |\n", k, idleLabel[w.Reader], w.PerSecond,
				verdict(w.PerSecond, 10, 10))
		}
	}
}

// stepTable breaks the in-hook cost down by builder step (SMITH_STEPS=1
// module): per record of each hook, the step's mean cost.
func stepTable(vm results.VM) string {
	if len(vm.Steps) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\nIn-hook cost by step (a module built with `SMITH_STEPS=1`, one pass of the loops, " +
		"shm with the counting reader; each step timed with the latency clock, whose own reads " +
		"are included; per record = step total / records built by the hook; the hook's whole " +
		"median from the same pass for comparison):\n\n")
	b.WriteString("| hook | step | calls | per call | per record |\n|---|---|---|---|---|\n")
	for _, hook := range []string{"connect", "execve"} {
		var records uint64
		for _, st := range vm.Steps {
			if st.Hook == hook && st.Step == "begin" {
				records = st.Calls
			}
		}
		var sum float64
		for _, st := range vm.Steps {
			if st.Hook != hook || st.Calls == 0 || records == 0 {
				continue
			}
			per := float64(st.TotalNs) / float64(records)
			sum += per
			fmt.Fprintf(&b, "| %s | %s | %d | %.0f | %.0f |\n", hook, st.Step, st.Calls, float64(st.TotalNs)/float64(st.Calls), per)
		}
		if records == 0 {
			continue
		}
		med, _ := latencySummary(vm, "steps", hook, func(l results.HookLatency) uint64 { return l.MedianNs })
		fmt.Fprintf(&b, "| %s | all steps | %d | - | %.0f |\n", hook, records, sum)
		if med.Runs > 0 {
			fmt.Fprintf(&b, "| %s | whole hook (median) | - | - | %.0f |\n", hook, med.Median)
		}
	}
	return b.String()
}

var idleLabel = map[string]string{
	"shm":   "shm reader (sleeps ended)",
	"agent": "smith-agent (voluntary context switches, all threads)",
}
