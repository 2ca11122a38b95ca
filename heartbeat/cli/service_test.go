package cli

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"smith/internal/harness"
)

// repoRoot is the repository's top directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// The console's install script puts a binary, the hardened unit, the
// config template and fresh secrets (0600) in place; the template with
// those secrets is a valid configuration; uninstall --purge leaves
// nothing behind.
func TestInstallConsoleAsAService(t *testing.T) {
	dest := t.TempDir()
	fake := filepath.Join(t.TempDir(), "smith-console")
	os.WriteFile(fake, []byte("#!/bin/sh\n"), 0o755)
	run := func(script string, args ...string) string {
		t.Helper()
		return harness.RunScript(t, script, []string{"SMITH_CONSOLE_BIN=" + fake}, args...)
	}
	run("install-console.sh", "--root", dest)
	for path, mode := range map[string]os.FileMode{
		"usr/local/bin/smith-console":              0o755,
		"etc/systemd/system/smith-console.service": 0o644,
		"etc/smith/smith-console.toml":             0o644,
		"etc/smith/smith-console.env":              0o600,
		"usr/local/share/doc/smith/CONSOLE.md":     0o644,
	} {
		st, err := os.Stat(filepath.Join(dest, path))
		if err != nil || st.Mode().Perm() != mode {
			t.Errorf("%s: %v %v, want mode %o", path, st, err, mode)
		}
	}
	secrets := map[string]string{}
	f, _ := os.Open(filepath.Join(dest, "etc/smith/smith-console.env"))
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && !strings.HasPrefix(k, "#") {
			secrets[k] = v
		}
	}
	f.Close()
	if len(secrets["SMITH_FLEET_TOKEN"]) != 64 || len(secrets["SMITH_CONSOLE_PASSWORD"]) != 64 ||
		secrets["SMITH_FLEET_TOKEN"] == secrets["SMITH_CONSOLE_PASSWORD"] {
		t.Errorf("generated secrets: %v", secrets)
	}
	cfg, err := LoadConfig(filepath.Join(dest, "etc/smith/smith-console.toml"), env(secrets))
	if err == nil {
		err = cfg.Check()
	}
	if err != nil || !cfg.TLSSelfSigned || cfg.DB != "/var/lib/smith-console/console.db" {
		t.Errorf("installed template: %v %+v", err, cfg)
	}
	// A second install keeps the configuration and the secrets.
	before, _ := os.ReadFile(filepath.Join(dest, "etc/smith/smith-console.env"))
	if out := run("install-console.sh", "--root", dest); !strings.Contains(out, "keeping the existing /etc/smith/smith-console.env") {
		t.Errorf("second install: %s", out)
	}
	if after, _ := os.ReadFile(filepath.Join(dest, "etc/smith/smith-console.env")); string(after) != string(before) {
		t.Error("second install replaced the secrets")
	}
	run("uninstall-console.sh", "--root", dest, "--purge")
	filepath.Walk(dest, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			t.Errorf("left after uninstall --purge: %s", p)
		}
		return nil
	})
}

// The units' hardening, scored by systemd itself: the console at most
// 2.0 of 10 ("OK"), the agent, which must stay root for /dev/smith and
// /proc, at most 3.5.
func TestSystemdUnitsAreHardened(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze not found: install Debian's systemd (scripts/deps.sh)")
	}
	for unit, threshold := range map[string]string{"smith-console.service": "20", "smith-agent.service": "35"} {
		path := filepath.Join(repoRoot(t), "scripts", "systemd", unit)
		out, err := exec.Command(analyze, "security", "--offline=yes", "--threshold="+threshold, path).CombinedOutput()
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if err != nil {
			t.Errorf("%s: %v: %s", unit, err, lines[len(lines)-1])
		} else {
			t.Logf("%s: %s", unit, lines[len(lines)-1])
		}
	}
	unit, _ := os.ReadFile(filepath.Join(repoRoot(t), "scripts", "systemd", "smith-console.service"))
	for _, want := range []string{"DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes", "StateDirectory=smith-console"} {
		if !strings.Contains(string(unit), want+"\n") {
			t.Errorf("console unit lacks %s", want)
		}
	}
}
