// SPDX-License-Identifier: GPL-2.0

package harness

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeAgent is a stand-in for smith-agent: a script that logs the ready
// line (or not) and exits on SIGTERM with status code.
func fakeAgent(t *testing.T, dir, log string, ready bool, code int) string {
	t.Helper()
	say := ""
	if ready {
		say = "echo 'level=info msg=\"... " + ReadyLine + " 1\"' >>" + log + "\n"
	}
	script := "#!/bin/sh\n" + say + "trap 'exit " + string(rune('0'+code)) + "' TERM\nwhile :; do sleep 0.05; done\n"
	p := filepath.Join(dir, "fake-agent")
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAgentReadyAndStop(t *testing.T) {
	dir := t.TempDir()
	cfg := AgentConfig(dir)
	a, err := StartAgent(fakeAgent(t, dir, cfg.Log.File, true, 0), filepath.Join(dir, "agent.toml"), cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Kill)
	if err := a.Ready(t.Context(), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := a.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// A second run is ready only on its own ready line, not the first run's;
// an unclean exit after SIGTERM is an error.
func TestAgentReadyLooksAtThisRun(t *testing.T) {
	dir := t.TempDir()
	cfg := AgentConfig(dir)
	os.WriteFile(cfg.Log.File, []byte("earlier run: "+ReadyLine+" 1\n"), 0o600)
	a, err := StartAgent(fakeAgent(t, dir, cfg.Log.File, false, 3), filepath.Join(dir, "agent.toml"), cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Kill)
	if err := a.Ready(t.Context(), 300*time.Millisecond); err == nil || !strings.Contains(err.Error(), "not ready") {
		t.Fatalf("ready: %v", err)
	}
	if err := a.Stop(10 * time.Second); err == nil {
		t.Fatal("exit status 3 after SIGTERM is no error")
	}
}

func TestAgentThatExitsIsNotReady(t *testing.T) {
	dir := t.TempDir()
	cfg := AgentConfig(dir)
	a, err := StartAgent("/bin/false", filepath.Join(dir, "agent.toml"), cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Ready(t.Context(), 10*time.Second); err == nil || !strings.Contains(err.Error(), "exited at start") {
		t.Fatalf("ready: %v", err)
	}
}
