package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"smith/agent/metrics"
	"smith/internal/harness"
)

// proc is a child process the run starts, stops and watches: an exit it
// did not ask for is a crash.
type proc struct {
	name string
	argv []string
	log  string

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
	expected bool // the run stopped it
	crashes  []string
}

func (p *proc) start() error {
	f, err := os.OpenFile(p.log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("%s log: %w", p.name, err)
	}
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.done, p.expected = cmd, done, false
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		f.Close()
		p.mu.Lock()
		if !p.expected {
			p.crashes = append(p.crashes, fmt.Sprintf("%s (pid %d) exited on its own: %v", p.name, cmd.Process.Pid, err))
		}
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// signal sends sig and, for a stopping signal, waits for the exit.  A
// SIGTERM must end the process cleanly (exit status 0).
func (p *proc) stop(sig syscall.Signal, timeout time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.expected = true
	p.mu.Unlock()
	if cmd == nil {
		return fmt.Errorf("%s not running", p.name)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %s: %w", p.name, err)
	}
	select {
	case <-done:
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s did not stop within %s of %v", p.name, timeout, sig)
	}
	if sig == syscall.SIGTERM && !cmd.ProcessState.Success() {
		return fmt.Errorf("%s stopped by SIGTERM with %v", p.name, cmd.ProcessState)
	}
	p.mu.Lock()
	p.cmd = nil
	p.mu.Unlock()
	return nil
}

// kill signals without waiting (SIGSTOP, SIGCONT).
func (p *proc) kill(sig syscall.Signal) error {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd == nil {
		return fmt.Errorf("%s not running", p.name)
	}
	return cmd.Process.Signal(sig)
}

// running says whether the process was started and not stopped.
func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil
}

func (p *proc) crashed() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.crashes...)
}

// waitFor polls cond every 50 ms until it holds, ctx ends or timeout.
func waitFor(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("%s: not within %s: %w", what, timeout, err)
			}
			return fmt.Errorf("%s: not within %s", what, timeout)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func tcpUp(addr string) (bool, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false, err
	}
	c.Close()
	return true, nil
}

// promSample is the agent's counters of interest from /metrics.
type promSample struct {
	SpoolFull, SpoolErr, TooLarge, Decode, SinkErr float64
	SpoolEvents, Read, Sent                        float64
}

func scrape(url string) (promSample, error) {
	var s promSample
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	m, err := harness.Scrape(ctx, url)
	if err != nil {
		return s, err
	}
	drop := func(d metrics.Drop) func() (float64, bool) {
		return func() (float64, bool) { return m.Dropped(d.String()) }
	}
	value := func(name string) func() (float64, bool) {
		return func() (float64, bool) { return m.Value(name) }
	}
	for _, w := range []struct {
		p   *float64
		get func() (float64, bool)
	}{
		{&s.SpoolFull, drop(metrics.DropSpoolFull)},
		{&s.SpoolErr, drop(metrics.DropSpoolError)},
		{&s.TooLarge, drop(metrics.DropTooLarge)},
		{&s.Decode, drop(metrics.DropDecode)},
		{&s.SinkErr, drop(metrics.DropSink)},
		{&s.SpoolEvents, value(metrics.NameSpoolEvents)},
		{&s.Read, value(metrics.NameRead)},
		{&s.Sent, value(metrics.NameSent)},
	} {
		v, ok := w.get()
		if !ok {
			return s, errors.New("scrape: metrics missing from /metrics")
		}
		*w.p = v
	}
	return s, nil
}

// moduleStats reads the module's debugfs counters ("name value" lines).
func moduleStats() (map[string]uint64, error) {
	f, err := os.Open("/sys/kernel/debug/smith/stats")
	if err != nil {
		return nil, fmt.Errorf("module stats: %w", err)
	}
	defer f.Close()
	m := map[string]uint64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 2 {
			continue
		}
		if v, err := strconv.ParseUint(fields[1], 10, 64); err == nil {
			m[fields[0]] = v
		}
	}
	return m, sc.Err()
}
