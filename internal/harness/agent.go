// SPDX-License-Identifier: GPL-2.0

package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"smith/agent/config"
)

// ReadyLine is what smith-agent logs once it reads its source: the line
// that says which sequence number comes first.
const ReadyLine = "first sequence number"

// Agent is a running smith-agent.
type Agent struct {
	Cmd    *exec.Cmd
	Config config.Config
	// logStart is the size of the log at the start: Ready looks at what
	// this run wrote.
	logStart int
	done     chan struct{}
	err      error
}

// StartAgent writes c to cfgPath and starts bin on it, its stdout and
// stderr to the writers given (nil: discarded).
func StartAgent(bin, cfgPath string, c config.Config, stdout, stderr io.Writer) (*Agent, error) {
	if err := WriteConfig(cfgPath, c); err != nil {
		return nil, err
	}
	a := &Agent{Config: c, done: make(chan struct{})}
	if c.Log.File != "" {
		before, _ := os.ReadFile(c.Log.File)
		a.logStart = len(before)
	}
	a.Cmd = exec.Command(bin, "-config", cfgPath)
	a.Cmd.Stdout, a.Cmd.Stderr = stdout, stderr
	if err := a.Cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		a.err = a.Cmd.Wait()
		close(a.done)
	}()
	return a, nil
}

// Pid is the agent's process id.
func (a *Agent) Pid() int { return a.Cmd.Process.Pid }

// MetricsURL is the agent's /metrics ("" without a listener).
func (a *Agent) MetricsURL() string {
	if a.Config.Metrics.Listen == "" {
		return ""
	}
	return MetricsURL(a.Config.Metrics.Listen)
}

// Scrape reads the agent's metrics.
func (a *Agent) Scrape(ctx context.Context) (Metrics, error) {
	if a.Config.Metrics.Listen == "" {
		return Metrics{}, errors.New("scrape: the agent has no metrics.listen")
	}
	return Scrape(ctx, a.MetricsURL())
}

// Ready waits until the agent has logged ReadyLine (when it logs to a
// file) and its metrics answer (when it serves them).  An agent that exits
// meanwhile is an error, with the end of its log.
func (a *Agent) Ready(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		ok, why := a.ready(ctx)
		if ok {
			return nil
		}
		select {
		case <-a.done:
			return fmt.Errorf("smith-agent exited at start (%v)%s", a.err, a.logTail())
		case <-ctx.Done():
			return fmt.Errorf("smith-agent not ready within %s (%s)%s", timeout, why, a.logTail())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (a *Agent) ready(ctx context.Context) (bool, string) {
	if a.Config.Log.File != "" {
		raw, _ := os.ReadFile(a.Config.Log.File)
		if len(raw) < a.logStart || !strings.Contains(string(raw[a.logStart:]), ReadyLine) {
			return false, fmt.Sprintf("no %q in %s", ReadyLine, a.Config.Log.File)
		}
	}
	if a.Config.Metrics.Listen != "" {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if _, err := a.Scrape(sctx); err != nil {
			return false, err.Error()
		}
	}
	return true, ""
}

// logTail is the end of the agent's log, for an error message.
func (a *Agent) logTail() string {
	if a.Config.Log.File == "" {
		return ""
	}
	raw, _ := os.ReadFile(a.Config.Log.File)
	if len(raw) > 4000 {
		raw = raw[len(raw)-4000:]
	}
	return fmt.Sprintf("; %s:\n%s", a.Config.Log.File, raw)
}

// Stop ends the agent with SIGTERM and waits for it: it must exit with
// status 0 within timeout (it is killed after).  Stopping an agent that
// has exited returns how it exited.
func (a *Agent) Stop(timeout time.Duration) error {
	select {
	case <-a.done:
		return a.exitError("before SIGTERM")
	default:
	}
	if err := a.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		<-a.done
		return a.exitError("before SIGTERM")
	}
	select {
	case <-a.done:
		return a.exitError("after SIGTERM")
	case <-time.After(timeout):
		a.Cmd.Process.Kill()
		<-a.done
		return fmt.Errorf("smith-agent did not stop within %s of SIGTERM", timeout)
	}
}

func (a *Agent) exitError(when string) error {
	if a.err != nil {
		return fmt.Errorf("smith-agent exit %s: %w", when, a.err)
	}
	return nil
}

// Kill ends the agent with SIGKILL and waits for it.
func (a *Agent) Kill() {
	a.Cmd.Process.Kill()
	<-a.done
}
