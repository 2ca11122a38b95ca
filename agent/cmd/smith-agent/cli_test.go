package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smith/agent/config"
	"smith/internal/harness"
)

func TestConfigErrorsExitTwoWithOneLine(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		args []string
		cfg  string
		code int
		out  string
	}{
		"unknown key":             {cfg: "[agent]\nformatt = \"ecs\"\n", code: 2, out: "unknown key(s) agent.formatt"},
		"bad value":               {cfg: "[kafka]\nacks = \"maybe\"\n", code: 2, out: `kafka.acks = "maybe"`},
		"unreadable":              {args: []string{"-config", "/nonexistent/agent.toml"}, code: 2, out: "/nonexistent/agent.toml"},
		"bad flag":                {args: []string{"-nope"}, code: 2, out: "flag provided but not defined"},
		"check ok":                {args: []string{"-check-config"}, cfg: "[agent]\nformat = \"ecs\"\n", code: 0, out: "configuration OK"},
		"check bad":               {args: []string{"-check-config"}, cfg: "[output]\nsinks = [\"tape\"]\n", code: 2, out: "output.sinks"},
		"version":                 {args: []string{"-version"}, code: 0, out: "smith-agent "},
		"help":                    {args: []string{"-help"}, code: 0, out: "-check-config"},
		"stray arg":               {args: []string{"run"}, code: 2, out: "unexpected argument"},
		"check kafka.version":     {args: []string{"-check-config"}, cfg: "[output]\nsinks = [\"kafka\"]\n[kafka]\nbrokers = [\"127.0.0.1:1\"]\nversion = \"0.0.1\"\n", code: 2, out: "kafka.version"},
		"check kafka CA":          {args: []string{"-check-config"}, cfg: "[output]\nsinks = [\"kafka\"]\n[kafka]\nbrokers = [\"127.0.0.1:1\"]\n[kafka.tls]\nenabled = true\nca_file = \"/nonexistent/ca.pem\"\n", code: 2, out: "/nonexistent/ca.pem"},
		"check SASL password":     {args: []string{"-check-config"}, cfg: "[output]\nsinks = [\"kafka\"]\n[kafka]\nbrokers = [\"127.0.0.1:1\"]\n[kafka.sasl]\nmechanism = \"PLAIN\"\nuser = \"u\"\npassword_file = \"/nonexistent/pw\"\n", code: 2, out: "/nonexistent/pw"},
		"check heartbeat token":   {args: []string{"-check-config"}, cfg: "[heartbeat]\nurl = \"https://127.0.0.1:1\"\ntoken_file = \"/nonexistent/token\"\n", code: 2, out: "/nonexistent/token"},
		"pid file directory made": {cfg: "[agent]\npid_file = \"" + dir + "/run/smith/agent.pid\"\nstate_dir = \"" + dir + "\"\n[source]\nkind = \"file\"\nfile = \"/nonexistent/ring\"\n[metrics]\nlisten = \"\"\n", code: 1, out: "/nonexistent/ring"},
		"missing ring":            {cfg: "[agent]\npid_file = \"\"\nstate_dir = \"" + dir + "\"\n[source]\nkind = \"file\"\nfile = \"/nonexistent/ring\"\n[metrics]\nlisten = \"\"\n", code: 1, out: "/nonexistent/ring"},
	} {
		args := tc.args
		if tc.cfg != "" {
			p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".toml")
			os.WriteFile(p, []byte(tc.cfg), 0o600)
			args = append(args, "-config", p)
		}
		cmd := exec.Command(agentBin, args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		text := out.String()
		if code != tc.code || !strings.Contains(text, tc.out) {
			t.Errorf("%s: exit %d, output %q; want exit %d and %q", name, code, text, tc.code, tc.out)
		}
		if tc.code == 2 && tc.out != "flag provided but not defined" && strings.Count(strings.TrimSpace(text), "\n") > 0 {
			t.Errorf("%s: error is not one line: %q", name, text)
		}
	}
}

// The default sink: JSON lines on stdout; SIGTERM delivers everything read
// before the agent exits, and the ring is committed.
func TestStdoutAndGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	r := newRing(t)
	cfg := testConfig(dir, r)
	cfg.Agent.PidFile = filepath.Join(dir, "smith.pid")
	cfg.Agent.Format = "ecs"
	cfg.Source.PollInterval = config.Duration(2 * time.Millisecond)
	var stdout bytes.Buffer
	a, err := harness.StartAgent(agentBin, filepath.Join(dir, "agent.toml"), cfg, &stdout, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Kill)
	cmd := a.Cmd
	r.exec(t, 2000)
	deadline := time.Now().Add(20 * time.Second)
	for r.fr.Ring.ConsumerPos() != r.fr.Ring.ProducerPos() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	pid, err := os.ReadFile(filepath.Join(dir, "smith.pid"))
	if err != nil || strings.TrimSpace(string(pid)) != fmt.Sprint(cmd.Process.Pid) {
		t.Fatalf("pid file %q, %v", pid, err)
	}
	if err := a.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 2000 {
		t.Fatalf("%d lines on stdout, want 2000", len(lines))
	}
	for i, l := range lines {
		var ev struct {
			Event struct {
				Sequence int `json:"sequence"`
			} `json:"event"`
			Process struct {
				Args []string `json:"args"`
			} `json:"process"`
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if ev.Event.Sequence != i+1 || ev.Process.Args[2] != fmt.Sprintf("token-%d", i) {
			t.Fatalf("line %d: sequence %d args %v", i, ev.Event.Sequence, ev.Process.Args)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "smith.pid")); !os.IsNotExist(err) {
		t.Fatal("pid file left behind")
	}
}
