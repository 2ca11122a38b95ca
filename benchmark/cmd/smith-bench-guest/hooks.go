//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"smith/benchmark/internal/results"
	"smith/shm"
)

// consumer is a reader of the module's records that this program runs
// while the loops do: the shm ring reader or the netlink socket.
type consumer interface {
	received() uint64    // records of any type so far
	testRecords() uint64 // SMITH_REC_TEST records so far
	// status describes the consumer's state, for a note when records
	// did not arrive.
	status() string
	Close() error
}

// statsDev is where a session reads the module's counters and latency:
// the device's ioctls, or debugfs when smith-agent holds the device.
type statsDev interface {
	Stats() (shm.Stats, error)
	ResetLatency() error
	Latency(hook uint32) (shm.Latency, error)
}

// session is a loaded module with its consumer attached (shm, netlink,
// agent) or none (loaded).
type session struct {
	dev   statsDev // nil for "loaded": opening the device attaches a reader
	close func() error
	cons  consumer
}

func (s *session) Close() error {
	var err error
	if s.cons != nil {
		err = s.cons.Close()
	}
	if s.close != nil {
		if cerr := s.close(); err == nil {
			err = cerr
		}
	}
	return err
}

// start brings up a configuration: the module in the right mode and its
// consumer attached.
func (b *bench) start(config string) (*session, error) {
	if !slices.Contains(results.Configs, config) {
		return nil, fmt.Errorf("unknown configuration %q", config)
	}
	if config == results.ConfigNone {
		return &session{}, b.m.unload()
	}
	transport := shm.TransportSHM
	if config == results.ConfigNetlink {
		transport = shm.TransportNetlink
	}
	if err := b.m.load(transport, false); err != nil {
		return nil, err
	}
	switch config {
	case results.ConfigShm:
		r, err := openShmConsumer()
		if err != nil {
			return nil, err
		}
		if b.res.Module == "" {
			if in, err := r.dev.Info(); err == nil {
				b.res.Module = string(bytes.TrimRight(in.Version[:], "\x00"))
			}
		}
		return &session{dev: r.dev, cons: r}, nil
	case results.ConfigAgent:
		a, err := startAgent(b.o.agent, b.o.agentSink)
		if err != nil {
			return nil, err
		}
		return &session{dev: debugfsDev{}, cons: a}, nil
	case results.ConfigNetlink:
		nl, err := openNetlink()
		if err != nil {
			return nil, err
		}
		// With netlink the device only answers ioctls: opening it does
		// not attach a reader.
		dev, err := shm.OpenControl(shm.DevicePath)
		if err != nil {
			nl.Close()
			return nil, err
		}
		return &session{dev: dev, close: dev.Close, cons: nl}, nil
	}
	return &session{}, nil // ConfigLoaded: no reader ever attached
}

// hookCost runs every configuration once per round, in an order that
// alternates between rounds, and the latency pass for the transports.
func (b *bench) hookCost() error {
	// Warm-up, untimed: the first runs after boot fault in the programs
	// and the page cache, which would count against round 1's first
	// configuration.
	for _, op := range []string{"exec", "connect"} {
		if _, _, err := b.loop(op, max(1, b.n(op)/4), false); err != nil {
			return fmt.Errorf("hook cost, warm-up: %w", err)
		}
	}
	for round := 1; round <= b.o.rounds; round++ {
		// Alternate the order: a load that drifts within a round then
		// favours no configuration.
		order := slices.Clone(results.Configs)
		if round%2 == 0 {
			slices.Reverse(order)
		}
		for _, config := range order {
			if config == results.ConfigAgent && b.o.agent == "" {
				continue
			}
			fmt.Fprintf(os.Stderr, "smith-bench-guest: hook cost round %d/%d: %s\n", round, b.o.rounds, config)
			if err := b.hookRound(round, config); err != nil {
				return fmt.Errorf("hook cost, round %d, %s: %w", round, config, err)
			}
		}
		b.checkpoint()
	}
	return b.m.unload()
}

func (b *bench) hookRound(round int, config string) error {
	s, err := b.start(config)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := b.settle(s); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	last := round == b.o.rounds
	for _, op := range []string{"exec", "connect"} {
		var before shm.Stats
		if s.dev != nil {
			if before, err = s.dev.Stats(); err != nil {
				return err
			}
		}
		cpu0, timed := readerCPU(s.cons)
		run, samples, err := b.loop(op, b.n(op), last)
		if err != nil {
			return err
		}
		run.Config, run.Round = config, round
		if s.dev != nil {
			after, err := s.dev.Stats()
			if err != nil {
				return err
			}
			run.Records = produced(after) - produced(before)
			run.Dropped = dropped(after) - dropped(before)
			// Records the reader had not consumed when the loop ended:
			// their reading cost falls outside the timed loop.
			if after.ProducerPos > after.ConsumerPos && after.NetlinkSent == 0 {
				run.PendingBytes = after.ProducerPos - after.ConsumerPos
			}
			if err := drain(s.dev); err != nil {
				b.note("%s round %d %s: %v", config, round, op, err)
			} else if cpu1, ok := readerCPU(s.cons); ok && timed {
				run.ReaderNs = cpu1 - cpu0
			}
		}
		b.res.Loops = append(b.res.Loops, run)
		if samples != nil {
			b.res.Samples = append(b.res.Samples, results.Samples{Config: config, Op: op, Ns: samples})
		}
	}
	if s.dev == nil {
		return nil
	}
	return b.latencyPass(s.dev, config, round)
}

// Untimed iterations of each loop after a configuration starts.
const settleN = 8

// settle runs a few untimed iterations of each loop in a configuration
// that has just started, lets the reader consume them and waits until its
// threads are idle.  What a consumer does once (the agent hashes the
// loop's executable the first time it sees it, grows its batches, learns
// the process) is then not spread over the timed loop: the loops measure
// the cost of each further call.
func (b *bench) settle(s *session) error {
	for _, op := range []string{"exec", "connect"} {
		if _, _, err := b.loop(op, settleN, false); err != nil {
			return err
		}
	}
	return quiesce(s)
}

// quiesce lets the reader consume what the ring holds and waits until its
// threads are idle (nothing to do without a device).
func quiesce(s *session) error {
	if s.dev == nil {
		return nil
	}
	if err := drain(s.dev); err != nil {
		return err
	}
	return idle(s.cons)
}

// idle waits (bounded) until a consumer's threads use less than a tenth
// of a CPU over 100 ms: the agent's hash of a new executable runs apart
// from its reading of the ring.
func idle(c consumer) error {
	prev, ok := readerCPU(c)
	if !ok {
		return nil
	}
	const window = 100 * time.Millisecond
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		time.Sleep(window)
		now, ok := readerCPU(c)
		if !ok {
			return nil
		}
		if now-prev < uint64(window/10) {
			return nil
		}
		prev = now
	}
	return fmt.Errorf("the reader was still busy after 30 s")
}

// cpuTimer is a consumer whose threads' on-CPU time can be read.
type cpuTimer interface {
	cpuNs() (uint64, error)
}

// readerCPU is the consumer's on-CPU time so far; false when it has no
// threads of its own to read (it runs in this process) or they cannot be
// read.
func readerCPU(c consumer) (uint64, bool) {
	t, ok := c.(cpuTimer)
	if !ok {
		return 0, false
	}
	ns, err := t.cpuNs()
	return ns, err == nil
}

// drain waits (bounded) until the reader has committed everything the
// module wrote, so one loop's records do not spill into the next.
func drain(dev statsDev) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := dev.Stats()
		if err != nil {
			return err
		}
		if st.NetlinkSent != 0 || st.ConsumerPos == st.ProducerPos {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("reader did not catch up within 20 s: %d bytes unconsumed", st.ProducerPos-st.ConsumerPos)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// latencyPass runs the loops again with the module timing its hooks, and
// reads the histograms.
func (b *bench) latencyPass(dev statsDev, config string, round int) error {
	if err := b.m.setLatency(true); err != nil {
		b.note("no hook latency for %s, round %d: %v", config, round, err)
		return nil
	}
	defer func() { _ = b.m.setLatency(false) }()
	return b.timedLoops(dev, config, round)
}

// timedLoops resets the module's latency histograms, runs the loops
// (latency-n iterations) and records the histograms of execve and connect
// under config.
func (b *bench) timedLoops(dev statsDev, config string, round int) error {
	if err := dev.ResetLatency(); err != nil {
		return err
	}
	for _, op := range []string{"exec", "connect"} {
		n := b.o.latencyN
		if n < 0 {
			n = b.n(op)
		}
		if _, _, err := b.loop(op, n, false); err != nil {
			return err
		}
	}
	for _, h := range []struct {
		name string
		bit  uint32
	}{{"execve", 0}, {"connect", 2}} {
		l, err := dev.Latency(h.bit)
		if err != nil {
			return err
		}
		b.res.Latency = append(b.res.Latency, results.HookLatency{
			Config: config, Hook: h.name, Round: round, Count: l.Count,
			MedianNs: l.MedianNs, P95Ns: l.P95Ns, P99Ns: l.P99Ns, MaxNs: l.MaxNs,
		})
	}
	return nil
}

func (b *bench) n(op string) int {
	if op == "exec" {
		return b.o.execN
	}
	return b.o.connectN
}

// loop runs hookloop once; with keep, it returns the per-iteration times.
func (b *bench) loop(op string, n int, keep bool) (results.LoopRun, []float64, error) {
	args := []string{op, strconv.Itoa(n)}
	if op == "exec" {
		args = append(args, b.o.noop)
	}
	var samplePath string
	if keep {
		samplePath = filepath.Join(os.TempDir(), "hookloop-samples")
		args = append(args, samplePath)
	}
	var run results.LoopRun
	out, err := exec.Command(b.o.hookloop, args...).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			err = fmt.Errorf("%w: %s", err, bytes.TrimSpace(ee.Stderr))
		}
		return run, nil, fmt.Errorf("%s %v: %w", b.o.hookloop, args, err)
	}
	if err := json.Unmarshal(out, &run); err != nil {
		return run, nil, fmt.Errorf("hookloop output %q: %w", out, err)
	}
	if !keep {
		return run, nil, nil
	}
	samples, err := readSamples(samplePath)
	return run, samples, err
}

func readSamples(path string) ([]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read loop samples: %w", err)
	}
	defer f.Close()
	defer os.Remove(path)
	var v []float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		x, err := strconv.ParseFloat(sc.Text(), 64)
		if err != nil {
			return nil, fmt.Errorf("loop samples %s: %w", path, err)
		}
		v = append(v, x)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read loop samples %s: %w", path, err)
	}
	return v, nil
}
