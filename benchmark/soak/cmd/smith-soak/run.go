package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"smith/agent/config"
	"smith/benchmark/soak"
	"smith/internal/harness"
	"smith/internal/kmodtest"
)

// Report is what a run writes (and prints between markers in the VM).
type Report struct {
	Kernel   string  `json:"kernel"`
	Started  string  `json:"started"`
	Duration float64 `json:"duration_s"` // load running
	// Settings.
	RingBytes  uint64  `json:"ring_bytes"`
	SpoolBytes string  `json:"spool_max_bytes"`
	ExecRate   float64 `json:"exec_rate"`
	ConnRate   float64 `json:"connect_rate"`
	ModRate    float64 `json:"module_rate"`
	// Figures.
	EventsPerSec float64           `json:"tagged_events_per_s"`
	Faults       []Fault           `json:"faults"`
	FaultCounts  map[string]int    `json:"fault_counts"`
	Module       map[string]uint64 `json:"module_stats"`
	AgentRuns    []AgentRun        `json:"agent_runs"`
	Result       *soak.Result      `json:"result"`
	Problems     []string          `json:"problems"` // the run's own (crashes, timeouts)
	Pass         bool              `json:"pass"`
}

// AgentRun is one run of the agent: how it ended and its counters then.
type AgentRun struct {
	Start   float64 `json:"start_s"`
	End     float64 `json:"end_s"`
	Stop    string  `json:"stop"`
	Scraped bool    `json:"scraped_at_stop"` // false: counters of the last periodic scrape
	// The agent's drop counters then: totals over every run so far (the
	// agent keeps them in its state directory).
	SpoolFull float64 `json:"spool_full"`
	TooLarge  float64 `json:"message_too_large"`
	Read      float64 `json:"read"`
}

// Fault is one fault injected, with its time window.
type Fault struct {
	Kind   string  `json:"kind"`
	Start  float64 `json:"start_s"` // since the load started
	End    float64 `json:"end_s"`
	Detail string  `json:"detail,omitempty"`
}

type runner struct {
	dir        string
	ko, testKo string
	ringBytes  uint64
	spoolBytes string
	port       int
	metrics    string
	gap        time.Duration
	out        io.Writer

	agent, broker *proc
	agentCfg      string
	agentLog      string
	load          *loader
	t0            time.Time
	faults        []Fault
	problems      []string

	mu       sync.Mutex
	last     promSample   // the running agent's last counters
	finished []promSample // counters of agents that stopped
	runs     []AgentRun
	started  float64
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.out, "soak: %6.1fs %s\n", time.Since(r.t0).Seconds(), fmt.Sprintf(format, args...))
}

func runCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("smith-soak run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	duration := fs.Duration("duration", 90*time.Second, "how long the load runs; the fault cycle repeats until then (at least one whole cycle runs)")
	gap := fs.Duration("gap", 3*time.Second, "steady load between two faults")
	dir := fs.String("dir", "/tmp/soak", "working directory (broker data, agent state, spool, logs)")
	ko := fs.String("module", "/smith.ko", "smith.ko to load")
	testKo := fs.String("test-module", "/smith_hooktest.ko", "the module the load loads and unloads")
	ring := fs.Uint64("ring-size", 512<<10, "module ring_size in bytes (small, so that a paused reader saturates it soon)")
	spool := fs.String("spool-max", "1MiB", "agent spool.max_bytes (small, so that an outage fills it soon)")
	execRate := fs.Float64("exec-rate", 40, "execs per second")
	connRate := fs.Float64("connect-rate", 200, "connects per second")
	modRate := fs.Float64("module-rate", 1, "module loads per second")
	port := fs.Int("broker-port", 9092, "broker port on 127.0.0.1")
	out := fs.String("o", "/tmp/soak/result.json", "result file")
	printResult := fs.Bool("print-result", false, "print the result on stdout for the host too, in the VM result channel's block (smith-soak report -console reads it)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	r := &runner{dir: *dir, ko: *ko, testKo: *testKo, ringBytes: *ring, spoolBytes: *spool, port: *port,
		gap: *gap, out: stdout, t0: time.Now()}
	rep := &Report{Started: time.Now().UTC().Format(time.RFC3339), RingBytes: *ring, SpoolBytes: *spool,
		ExecRate: *execRate, ConnRate: *connRate, ModRate: *modRate}
	var u unix.Utsname
	unix.Uname(&u)
	rep.Kernel = unix.ByteSliceToString(u.Release[:])

	err := r.run(rep, *duration, *execRate, *connRate, *modRate)
	if err != nil {
		r.problems = append(r.problems, err.Error())
	}
	rep.Problems = r.problems
	rep.Faults = r.faults
	rep.AgentRuns = r.runs
	rep.Pass = len(rep.Problems) == 0 && rep.Result != nil && rep.Result.OK()
	raw, _ := json.MarshalIndent(rep, "", "  ")
	if werr := os.WriteFile(*out, append(raw, '\n'), 0o644); werr != nil {
		fmt.Fprintf(stderr, "smith-soak: %v\n", werr)
		return 1
	}
	printSummary(stdout, rep)
	if *printResult {
		if err := harness.EncodeResult(stdout, harness.ResultSoak, rep); err != nil {
			fmt.Fprintf(stderr, "smith-soak: %v\n", err)
			return 1
		}
	}
	if !rep.Pass {
		return 1
	}
	return 0
}

func (r *runner) run(rep *Report, duration time.Duration, execRate, connRate, modRate float64) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := r.loadModule(); err != nil {
		return err
	}
	defer func() {
		if err := kmodtest.Unload(); err != nil {
			r.problems = append(r.problems, fmt.Sprintf("unload smith at the end: %v", err))
		}
	}()
	if err := r.prepare(); err != nil {
		return err
	}
	if err := r.startBroker(ctx); err != nil {
		return err
	}
	defer func() {
		if err := r.broker.stop(syscall.SIGTERM, 30*time.Second); err != nil && !strings.Contains(err.Error(), "not running") {
			r.problems = append(r.problems, err.Error())
		}
	}()
	if err := r.startAgent(ctx); err != nil {
		return err
	}
	go r.sample(ctx)

	if err := r.newLoader(ctx, execRate, connRate, modRate); err != nil {
		return err
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	r.t0 = time.Now()
	r.logf("load starts at %d ns", r.t0.UnixNano())
	wg := r.load.run(loadCtx)
	r.logf("load running: %g exec/s, %g connect/s, %g module loads/s", execRate, connRate, modRate)

	ferr := r.faultCycles(ctx, duration)
	stopLoad()
	wg.Wait()
	rep.Duration = time.Since(r.t0).Seconds()
	if ferr != nil {
		return ferr
	}
	if p := r.load.err.Load(); p != nil {
		return fmt.Errorf("load generator: %w", *p)
	}
	// One more op after everything: a "lost N" the ring still owes is
	// written before its record, and the agent's last drops lie between
	// two delivered sequence numbers, where the reconciler sees them.  It
	// waits for a spool the last fault filled to be replayed: an op the
	// agent drops as well would leave the stream's end open, and its
	// drops counted but not placed.
	if err := r.spoolReplayed(ctx); err != nil {
		return err
	}
	r.load.setPhase(soak.PhaseFinal)
	r.load.exec()
	rep.EventsPerSec = float64(len(r.load.ops)) / rep.Duration
	r.logf("load stopped: %d tagged syscalls (%.0f/s)", len(r.load.ops), rep.EventsPerSec)

	if err := r.drain(ctx); err != nil {
		return err
	}
	if err := r.stopAgent(syscall.SIGTERM); err != nil {
		return err
	}
	return r.reconcile(ctx, rep)
}

// loadModule loads smith.ko with the run's ring size, in a fresh working
// directory (a module left loaded is unloaded first).
func (r *runner) loadModule() error {
	if err := os.RemoveAll(r.dir); err != nil {
		return err
	}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return err
	}
	if kmodtest.Loaded() {
		if err := kmodtest.Unload(); err != nil {
			return fmt.Errorf("unload the module left loaded: %w", err)
		}
	}
	return kmodtest.LoadFile(r.ko, fmt.Sprintf("ring_size=%d", r.ringBytes))
}

// prepare writes the agent's configuration and sets up the broker and
// agent processes (not started).
func (r *runner) prepare() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	agentBin, err := exec.LookPath("smith-agent")
	if err != nil {
		return fmt.Errorf("smith-agent: %w", err)
	}
	r.broker = &proc{name: "broker", log: filepath.Join(r.dir, "broker.log"),
		argv: []string{self, "broker", "-port", fmt.Sprint(r.port), "-data", filepath.Join(r.dir, "kafka")}}
	cfg, err := r.agentConfig()
	if err != nil {
		return err
	}
	r.agentCfg = filepath.Join(r.dir, "agent.toml")
	r.agentLog = cfg.Log.File
	r.metrics = harness.MetricsURL(cfg.Metrics.Listen)
	if err := harness.WriteConfig(r.agentCfg, cfg); err != nil {
		return err
	}
	r.agent = &proc{name: "smith-agent", log: filepath.Join(r.dir, "agent.out"), argv: []string{agentBin, "-config", r.agentCfg}}
	return nil
}

// agentConfig: the agent ships to the run's broker through a small spool
// (-spool-max), retrying soon, its metrics on a fixed port.
func (r *runner) agentConfig() (config.Config, error) {
	cfg := harness.AgentConfig(r.dir)
	cfg.Output.Sinks = []string{"kafka"}
	cfg.Kafka.Brokers = []string{fmt.Sprintf("127.0.0.1:%d", r.port)}
	cfg.Kafka.RetryInterval = config.Duration(500 * time.Millisecond)
	cfg.Kafka.Timeout = config.Duration(2 * time.Second)
	if err := cfg.Spool.MaxBytes.UnmarshalText([]byte(r.spoolBytes)); err != nil {
		return cfg, fmt.Errorf("-spool-max: %w", err)
	}
	cfg.Spool.SegmentBytes = 64 << 10
	cfg.Metrics.Listen = "127.0.0.1:9465"
	return cfg, nil
}

// newLoader sets up the tagged load: execs, connects to a listener and to
// a port that refuses, loads of the test module.
func (r *runner) newLoader(ctx context.Context, execRate, connRate, modRate float64) error {
	image, err := os.ReadFile(r.testKo)
	if err != nil {
		return err
	}
	lport, err := listen(ctx)
	if err != nil {
		return err
	}
	rport, err := harness.FreePort()
	if err != nil {
		return err
	}
	r.load = &loader{prefix: fmt.Sprintf("soak-%d-", time.Now().Unix()), execPath: "/bin/true", modPath: r.testKo,
		modImage: image, port: lport, refused: rport, execRate: execRate, connRate: connRate, modRate: modRate}
	r.load.setPhase(soak.PhaseSteady)
	return nil
}

// reconcile reads the module's counters and every record of the topic and
// accounts for every tagged syscall of the load.
func (r *runner) reconcile(ctx context.Context, rep *Report) error {
	if raw, err := os.ReadFile(r.agentLog); err == nil && (strings.Contains(string(raw), "does not match the ring") || strings.Contains(string(raw), "state file corrupt")) {
		r.problems = append(r.problems, "the agent lost its sequence state (a new stream, or numbering continued at the high-water mark)")
	}
	stats, err := moduleStats()
	if err != nil {
		return err
	}
	rep.Module = stats
	tr, err := harness.NewTopicReader("", fmt.Sprintf("127.0.0.1:%d", r.port))
	if err != nil {
		return err
	}
	defer tr.Close()
	records, err := tr.ReadAll(ctx, 5*time.Minute)
	if err != nil {
		return err
	}
	r.logf("read %d records from Kafka", len(records))
	c := soak.Counters{RingDroppedFull: stats["dropped_full"], RingDroppedTooLarge: stats["dropped_too_large"],
		RingDroppedFault: stats["dropped_fault"], HookMissed: stats["hook_missed"], RingLostRecords: stats["lost_records"]}
	// The agent's drop counters are totals over its runs (kept in its
	// state directory, so a SIGKILL loses none): the largest seen is the
	// run's total (the last, clean stop's).
	for _, s := range r.finished {
		c.AgentSpoolFull = max(c.AgentSpoolFull, uint64(s.SpoolFull))
		c.AgentSpoolError = max(c.AgentSpoolError, uint64(s.SpoolErr))
		c.AgentTooLarge = max(c.AgentTooLarge, uint64(s.TooLarge))
		c.AgentDecode = max(c.AgentDecode, uint64(s.Decode))
		c.AgentSink = max(c.AgentSink, uint64(s.SinkErr))
	}
	if c.AgentDecode+c.AgentSink > 0 {
		r.problems = append(r.problems, fmt.Sprintf("the agent dropped %d events unnumbered (decode_error %d, sink_error %d)",
			c.AgentDecode+c.AgentSink, c.AgentDecode, c.AgentSink))
	}
	rep.Result = soak.Reconcile(r.load.ops, records, c, soak.Options{TagPrefix: r.load.prefix, SlackNs: int64(time.Second)})
	rep.FaultCounts = map[string]int{}
	for _, f := range r.faults {
		rep.FaultCounts[f.Kind]++
	}
	r.problems = append(r.problems, r.broker.crashed()...)
	r.problems = append(r.problems, r.agent.crashed()...)
	return nil
}

func (r *runner) startBroker(ctx context.Context) error {
	if err := r.broker.start(); err != nil {
		return err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", r.port)
	return waitFor(ctx, 60*time.Second, "broker listening on "+addr, func() (bool, error) { return tcpUp(addr) })
}

func (r *runner) startAgent(ctx context.Context) error {
	logPath := r.agentLog
	before, _ := os.ReadFile(logPath)
	if err := r.agent.start(); err != nil {
		return err
	}
	r.mu.Lock()
	r.started = r.since()
	r.mu.Unlock()
	err := waitFor(ctx, 60*time.Second, "smith-agent start", func() (bool, error) {
		raw, err := os.ReadFile(logPath)
		return len(raw) > len(before) && strings.Contains(string(raw[len(before):]), harness.ReadyLine), err
	})
	if err != nil {
		return err
	}
	// Its metrics answer: from now on the sampler sees this agent.
	return waitFor(ctx, 30*time.Second, "smith-agent metrics", func() (bool, error) {
		s, err := scrape(r.metrics)
		if err == nil {
			r.mu.Lock()
			r.last = s
			r.mu.Unlock()
		}
		return err == nil, err
	})
}

// stopAgent ends the agent with sig after a last look at its counters.
// A SIGKILL needs no care: the agent keeps its drop counters on disk, and
// the next run reports them.
func (r *runner) stopAgent(sig syscall.Signal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, serr := scrape(r.metrics)
	if serr == nil {
		r.last = s
	}
	err := r.agent.stop(sig, 60*time.Second)
	r.finished = append(r.finished, r.last)
	r.runs = append(r.runs, AgentRun{Start: r.started, End: r.since(), Stop: sig.String(), Scraped: serr == nil,
		SpoolFull: r.last.SpoolFull, TooLarge: r.last.TooLarge, Read: r.last.Read})
	r.last = promSample{}
	return err
}

// sample keeps the running agent's last counters.
func (r *runner) sample(ctx context.Context) {
	for ctx.Err() == nil {
		r.mu.Lock()
		if r.agent.running() {
			if s, err := scrape(r.metrics); err == nil {
				r.last = s
			}
		}
		r.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (r *runner) current() promSample {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

func (r *runner) since() float64 { return time.Since(r.t0).Seconds() }

// fault runs one fault: phase name, then the action.
func (r *runner) fault(ctx context.Context, kind string, act func() (string, error)) error {
	if err := sleepCtx(ctx, r.gap); err != nil {
		return err
	}
	r.load.setPhase(kind)
	f := Fault{Kind: kind, Start: r.since()}
	r.logf("fault %s", kind)
	detail, err := act()
	f.End, f.Detail = r.since(), detail
	r.faults = append(r.faults, f)
	r.load.setPhase(soak.PhaseSteady)
	if err != nil {
		return fmt.Errorf("fault %s: %w", kind, err)
	}
	if detail != "" {
		r.logf("fault %s done: %s", kind, detail)
	}
	if crashes := append(r.broker.crashed(), r.agent.crashed()...); len(crashes) > 0 {
		return errors.New(strings.Join(crashes, "; "))
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// faultCycles injects the faults in turn, cycle after cycle, until the
// duration is over (one whole cycle at least).
func (r *runner) faultCycles(ctx context.Context, duration time.Duration) error {
	for cycle := 1; ; cycle++ {
		if err := r.cycle(ctx); err != nil {
			return err
		}
		if p := r.load.err.Load(); p != nil {
			return fmt.Errorf("load generator: %w", *p)
		}
		if time.Since(r.t0) >= duration {
			r.logf("%d fault cycles done", cycle)
			return sleepCtx(ctx, r.gap)
		}
	}
}

func (r *runner) cycle(ctx context.Context) error {
	steps := []struct {
		kind string
		act  func() (string, error)
	}{
		{"broker-restart", func() (string, error) {
			if err := r.broker.stop(syscall.SIGTERM, 30*time.Second); err != nil {
				return "", err
			}
			if err := sleepCtx(ctx, 3*time.Second); err != nil {
				return "", err
			}
			return "", r.startBroker(ctx)
		}},
		{"agent-sigkill", func() (string, error) { return "", r.restartAgent(ctx, syscall.SIGKILL) }},
		{"spool-full", func() (string, error) {
			before, err := r.fillSpool(ctx)
			if err != nil {
				return "", err
			}
			if err := sleepCtx(ctx, time.Second); err != nil {
				return "", err
			}
			dropped := r.current().SpoolFull - before
			if err := r.startBroker(ctx); err != nil {
				return "", err
			}
			err = r.spoolReplayed(ctx)
			return fmt.Sprintf("spool_full drops while full: %.0f", dropped), err
		}},
		{"agent-sigkill-while-spool-full", func() (string, error) {
			// The kill falls among drops: the counts must survive it.
			if _, err := r.fillSpool(ctx); err != nil {
				return "", err
			}
			if err := r.killAndRestart(ctx); err != nil {
				return "", err
			}
			err := r.spoolReplayed(ctx)
			return fmt.Sprintf("spool_full drops (all runs) after the restart: %.0f", r.current().SpoolFull), err
		}},
		{"ring-saturation", func() (string, error) {
			st, err := moduleStats()
			if err != nil {
				return "", err
			}
			before := st["dropped_full"]
			if err := r.agent.kill(syscall.SIGSTOP); err != nil {
				return "", err
			}
			r.load.burst.Store(true)
			err = waitFor(ctx, 120*time.Second, "ring full (dropped_full)", func() (bool, error) {
				st, err := moduleStats()
				return err == nil && st["dropped_full"] > before, err
			})
			if err == nil {
				err = sleepCtx(ctx, 500*time.Millisecond)
			}
			r.load.burst.Store(false)
			if cerr := r.agent.kill(syscall.SIGCONT); cerr != nil && err == nil {
				err = cerr
			}
			st, _ = moduleStats()
			return fmt.Sprintf("ring records dropped while the reader was paused: %d", st["dropped_full"]-before), err
		}},
		{"reader-detach", func() (string, error) { return "", r.restartAgent(ctx, syscall.SIGTERM) }},
		{"agent-sigkill-during-broker-outage", func() (string, error) {
			if err := r.broker.stop(syscall.SIGTERM, 30*time.Second); err != nil {
				return "", err
			}
			if err := sleepCtx(ctx, time.Second); err != nil {
				return "", err
			}
			return "", r.killAndRestart(ctx)
		}},
	}
	for _, s := range steps {
		if err := r.fault(ctx, s.kind, s.act); err != nil {
			return err
		}
	}
	return nil
}

// restartAgent stops the agent with sig and starts it again two seconds
// later.
func (r *runner) restartAgent(ctx context.Context, sig syscall.Signal) error {
	if err := r.stopAgent(sig); err != nil {
		return err
	}
	if err := sleepCtx(ctx, 2*time.Second); err != nil {
		return err
	}
	return r.startAgent(ctx)
}

// fillSpool stops the broker and waits until the agent drops events for
// a full spool; it returns the spool_full count before.
func (r *runner) fillSpool(ctx context.Context) (float64, error) {
	before := r.current().SpoolFull
	if err := r.broker.stop(syscall.SIGTERM, 30*time.Second); err != nil {
		return before, err
	}
	return before, waitFor(ctx, 120*time.Second, "spool full (spool_full drops)", func() (bool, error) {
		return r.current().SpoolFull > before, nil
	})
}

// spoolReplayed waits until the agent's spool is empty again.
func (r *runner) spoolReplayed(ctx context.Context) error {
	return waitFor(ctx, 120*time.Second, "spool replayed", func() (bool, error) {
		s := r.current()
		return s.SpoolEvents == 0 && s.Read > 0, nil
	})
}

// killAndRestart SIGKILLs the agent while the broker is down, starts it
// again a second later (spool from before) and the broker a second after.
func (r *runner) killAndRestart(ctx context.Context) error {
	if err := r.stopAgent(syscall.SIGKILL); err != nil {
		return err
	}
	if err := sleepCtx(ctx, time.Second); err != nil {
		return err
	}
	if err := r.startAgent(ctx); err != nil {
		return err
	}
	if err := sleepCtx(ctx, time.Second); err != nil {
		return err
	}
	return r.startBroker(ctx)
}

// drain waits until the agent has read the whole ring and its spool is
// empty, and its sent counter stands still.
func (r *runner) drain(ctx context.Context) error {
	var lastSent float64
	stable := 0
	return waitFor(ctx, 180*time.Second, "agent drained (ring read, spool empty)", func() (bool, error) {
		st, err := moduleStats()
		if err != nil {
			return false, err
		}
		s, err := scrape(r.metrics)
		if err != nil {
			return false, err
		}
		if st["producer_pos"] == st["consumer_pos"] && s.SpoolEvents == 0 && s.Sent == lastSent {
			stable++
		} else {
			stable = 0
		}
		lastSent = s.Sent
		return stable >= 20, nil // about a second
	})
}

func printSummary(w io.Writer, rep *Report) {
	fmt.Fprintf(w, "soak: kernel %s, load %.0f s at %.0f tagged syscalls/s\n", rep.Kernel, rep.Duration, rep.EventsPerSec)
	kinds := make([]string, 0, len(rep.FaultCounts))
	for k := range rep.FaultCounts {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(w, "soak: fault %-36s x%d\n", k, rep.FaultCounts[k])
	}
	if res := rep.Result; res != nil {
		fmt.Fprintf(w, "soak: tagged %d, delivered %d, missing %d (ring drops %d, ring drops whose lost record the agent dropped %d, agent drops %d, hook misses %d), unexplained %d\n",
			res.Ops, res.Delivered, res.Missing, res.ExplainedRing, res.ExplainedHidden, res.ExplainedAgent, res.ExplainedHookMiss, res.Unexplained)
		fmt.Fprintf(w, "soak: Kafka records %d, events %d, duplicates %d, restarted calls %d, lost records %d (N sum %d), sequence gaps %d\n",
			res.Records, res.Events, res.Duplicates, res.Restarted, res.LostRecords, res.LostTotal, res.SeqGaps)
		if len(res.DuplicatesByFault) > 0 {
			var by []string
			for _, f := range slices.Sorted(maps.Keys(res.DuplicatesByFault)) {
				by = append(by, fmt.Sprintf("%s %d", f, res.DuplicatesByFault[f]))
			}
			fmt.Fprintf(w, "soak: duplicates by the fault that made them (the call's, or the next after it): %s\n", strings.Join(by, ", "))
		}
		if !rep.Pass {
			for _, l := range res.Lost {
				fmt.Fprintf(w, "soak: lost record seq %d: %d records, after an event of time %d\n", l.Seq, l.N, l.PrevNs)
			}
		}
		for _, p := range res.Problems {
			fmt.Fprintf(w, "soak: FAIL: %s\n", p)
		}
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "soak: FAIL: %s\n", p)
	}
	if rep.Pass {
		fmt.Fprintln(w, "soak: PASS")
	} else {
		fmt.Fprintln(w, "soak: FAIL")
	}
}
