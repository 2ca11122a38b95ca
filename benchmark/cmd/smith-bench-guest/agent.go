//go:build linux

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"smith/benchmark/internal/results"
	"smith/internal/harness"
	"smith/shm"
)

// agentConsumer is the real smith-agent consuming the ring: its default
// configuration except where the guest has no room for it (state and log
// under a temporary directory, no metrics listener).  Its events go to
// its standard output (the default sink), which StartAgent sends to
// /dev/null, or with -agent-sink file to a file in that directory.
type agentConsumer struct {
	*harness.Agent
	dir    string
	events string // the event file; "" with the stdout sink
}

func startAgent(bin, sink string) (*agentConsumer, error) {
	if sink != "file" && sink != "stdout" {
		return nil, fmt.Errorf("-agent-sink %q: want file or stdout", sink)
	}
	dir, err := os.MkdirTemp("", "bench-agent")
	if err != nil {
		return nil, fmt.Errorf("agent directory: %w", err)
	}
	a := &agentConsumer{dir: dir}
	cfg := harness.AgentConfig(dir)
	// stdout: the events go to the agent's standard output, which
	// StartAgent discards (received then counts nothing).
	cfg.Output.Sinks = []string{sink}
	if sink == "file" {
		a.events = filepath.Join(dir, "events.json")
		cfg.Output.File.Path = a.events
	}
	if a.Agent, err = harness.StartAgent(bin, filepath.Join(dir, "agent.toml"), cfg, nil, nil); err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	// Started once it has opened the ring and logged its first sequence
	// number.
	if err := a.Ready(context.Background(), 60*time.Second); err != nil {
		return nil, errors.Join(err, a.Close())
	}
	return a, nil
}

// received is the number of events the agent wrote to its file so far (0
// with the stdout sink: that output is not kept).
func (a *agentConsumer) received() uint64 {
	if a.events == "" {
		return 0
	}
	f, err := os.Open(a.events)
	if err != nil {
		return 0
	}
	defer f.Close()
	var n uint64
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		n++
	}
	return n
}

func (a *agentConsumer) testRecords() uint64 { return 0 }

func (a *agentConsumer) status() string {
	raw, _ := os.ReadFile(a.Config.Log.File)
	if len(raw) > 2000 {
		raw = raw[len(raw)-2000:]
	}
	written := "events to stdout, not counted"
	if a.events != "" {
		written = fmt.Sprintf("%d events written", a.received())
	}
	return fmt.Sprintf("smith-agent: %s; log tail:\n%s", written, raw)
}

// cpuNs sums the on-CPU time of every thread of the agent
// (schedstat's first field, ns; under icount, instructions).
func (a *agentConsumer) cpuNs() (uint64, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", a.Pid()))
	if err != nil || len(tasks) == 0 {
		return 0, fmt.Errorf("agent threads: %d found: %v", len(tasks), err)
	}
	var sum uint64
	for _, t := range tasks {
		raw, err := os.ReadFile(t)
		if err != nil {
			continue // a thread that just exited
		}
		f := strings.Fields(string(raw))
		if len(f) == 0 {
			return 0, fmt.Errorf("%s: empty", t)
		}
		ns, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", t, err)
		}
		sum += ns
	}
	return sum, nil
}

// contextSwitches sums the voluntary context switches of every thread of
// the agent: each is one sleep that ended in a wake-up.
func (a *agentConsumer) contextSwitches() (uint64, error) { return harness.ProcWakeups(a.Pid()) }

// Close stops the agent with SIGTERM (it commits and exits) and removes its
// files.
func (a *agentConsumer) Close() error {
	return errors.Join(a.Stop(30*time.Second), os.RemoveAll(a.dir))
}

// debugfsDev answers what hookRound asks of a device from the module's
// debugfs files, for when the agent holds the device (one opener at a
// time).
type debugfsDev struct{}

const debugfsDir = "/sys/kernel/debug/smith"

func (debugfsDev) Stats() (shm.Stats, error) {
	raw, err := os.ReadFile(debugfsDir + "/stats")
	if err != nil {
		return shm.Stats{}, fmt.Errorf("module stats: %w", err)
	}
	var st shm.Stats
	fields := map[string]*uint64{
		"written": &st.Written, "dropped_full": &st.DroppedFull, "dropped_too_large": &st.DroppedTooLarge,
		"dropped_fault": &st.DroppedFault, "netlink_sent": &st.NetlinkSent, "netlink_failed": &st.NetlinkFailed,
		"producer_pos": &st.ProducerPos, "consumer_pos": &st.ConsumerPos,
	}
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if p := fields[k]; ok && p != nil {
			if *p, err = strconv.ParseUint(v, 10, 64); err != nil {
				return shm.Stats{}, fmt.Errorf("module stats %q: %w", line, err)
			}
		}
	}
	return st, nil
}

func (debugfsDev) ResetLatency() error {
	if err := os.WriteFile(debugfsDir+"/latency", []byte("1"), 0); err != nil {
		return fmt.Errorf("reset latency: %w", err)
	}
	return nil
}

var hookNames = map[uint32]string{0: "execve", 1: "execveat", 2: "connect", 3: "init_module", 4: "finit_module"}

func (debugfsDev) Latency(hook uint32) (shm.Latency, error) {
	l := shm.Latency{Hook: hook}
	raw, err := os.ReadFile(debugfsDir + "/latency")
	if err != nil {
		return l, fmt.Errorf("module latency: %w", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) == 6 && f[0] == hookNames[hook] {
			v := make([]uint64, 5)
			for i := range v {
				if v[i], err = strconv.ParseUint(f[i+1], 10, 64); err != nil {
					return l, fmt.Errorf("module latency %q: %w", line, err)
				}
			}
			l.Count, l.MedianNs, l.P95Ns, l.P99Ns, l.MaxNs = v[0], v[1], v[2], v[3], v[4]
			return l, nil
		}
	}
	return l, fmt.Errorf("module latency: no line for hook %q", hookNames[hook])
}

// idleWakeups counts how often the shm reader and the agent wake up per
// second while nothing happens: the price of the bounded latency.
func (b *bench) idleWakeups() error {
	d := time.Duration(b.o.idleSeconds * float64(time.Second))
	if err := b.m.load(shm.TransportSHM, false); err != nil {
		return err
	}
	// The reader's whole life is the idle period: its sleeps that ended
	// are counted once it has stopped (Stats is not safe meanwhile), the
	// first one, before it turns to its long idle sleep, included.
	t0 := time.Now()
	c, err := openShmConsumer()
	if err != nil {
		return err
	}
	time.Sleep(d)
	if err := c.Close(); err != nil {
		return err
	}
	secs := time.Since(t0).Seconds()
	w := c.rd.Stats().Wakeups
	b.res.Idle = append(b.res.Idle, results.IdleWakeups{Reader: "shm", Seconds: secs, Wakeups: w, PerSecond: float64(w) / secs})
	if b.o.agent == "" {
		return b.m.unload()
	}
	a, err := startAgent(b.o.agent, b.o.agentSink)
	if err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	s0, err := a.contextSwitches()
	t0 = time.Now()
	if err == nil {
		time.Sleep(d)
		var s1 uint64
		s1, err = a.contextSwitches()
		secs = time.Since(t0).Seconds()
		b.res.Idle = append(b.res.Idle, results.IdleWakeups{Reader: "agent", Seconds: secs, Wakeups: s1 - s0, PerSecond: float64(s1-s0) / secs})
	}
	if cerr := a.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return b.m.unload()
}

// stepsPass loads the module built with SMITH_STEPS=1 (-steps-module),
// runs the loops with the shm counting reader and latency measurement on,
// and reads the builder's per-step sums from debugfs smith/steps.
func (b *bench) stepsPass() error {
	m := &module{path: b.o.stepsModule, transportParam: b.o.transportParam, latencyParam: b.o.latencyParam}
	defer func() { _ = m.unload() }()
	if err := b.m.unload(); err != nil {
		return err
	}
	if err := m.load(shm.TransportSHM, true); err != nil {
		return err
	}
	c, err := openShmConsumer()
	if err != nil {
		return err
	}
	defer c.Close()
	if err := os.WriteFile(debugfsDir+"/steps", []byte("1"), 0); err != nil {
		return fmt.Errorf("reset steps (is %s built with SMITH_STEPS=1?): %w", b.o.stepsModule, err)
	}
	if err := b.timedLoops(c.dev, "steps", 1); err != nil {
		return err
	}
	raw, err := os.ReadFile(debugfsDir + "/steps")
	if err != nil {
		return fmt.Errorf("read steps: %w", err)
	}
	for _, line := range strings.Split(string(raw), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) != 4 {
			continue
		}
		calls, err1 := strconv.ParseUint(f[2], 10, 64)
		total, err2 := strconv.ParseUint(f[3], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("steps line %q: %w", line, err)
		}
		b.res.Steps = append(b.res.Steps, results.StepCost{Hook: f[0], Step: f[1], Calls: calls, TotalNs: total})
	}
	return nil
}
