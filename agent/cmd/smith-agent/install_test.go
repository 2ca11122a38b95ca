package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"smith/internal/harness"
)

// install.sh and uninstall.sh with --root: the files land where the units
// and docs say, a configuration is never overwritten, and uninstall
// removes what install put there.
func TestInstallScriptsIntoARoot(t *testing.T) {
	root := t.TempDir()
	run := func(script string, args ...string) string {
		t.Helper()
		return harness.RunScript(t, script, []string{"SMITH_AGENT_BIN=" + agentBin}, args...)
	}
	run("install.sh", "--root", root)
	for _, p := range []string{
		"usr/local/bin/smith-agent", "etc/smith/smith-agent.toml",
		"etc/systemd/system/smith-agent.service", "etc/systemd/system/smith-module.service",
		"usr/local/share/doc/smith/AGENT.md", "usr/local/share/doc/smith/EVENTS.md",
	} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("not installed: %s", p)
		}
	}
	unit, _ := os.ReadFile(filepath.Join(root, "etc/systemd/system/smith-agent.service"))
	for _, want := range []string{"Requires=smith-module.service", "After=smith-module.service", "ExecStart=/usr/local/bin/smith-agent -config /etc/smith/smith-agent.toml"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("agent unit lacks %q", want)
		}
	}
	// The installed example configuration is valid.
	if out, err := exec.Command(filepath.Join(root, "usr/local/bin/smith-agent"), "-check-config", "-config", filepath.Join(root, "etc/smith/smith-agent.toml")).CombinedOutput(); err != nil {
		t.Fatalf("installed configuration: %v: %s", err, out)
	}
	os.WriteFile(filepath.Join(root, "etc/smith/smith-agent.toml"), []byte("# mine\n"), 0o600)
	if out := run("install.sh", "--root", root); !strings.Contains(out, "keeping the existing") {
		t.Errorf("reinstall output: %s", out)
	}
	if raw, _ := os.ReadFile(filepath.Join(root, "etc/smith/smith-agent.toml")); string(raw) != "# mine\n" {
		t.Error("reinstall overwrote the configuration")
	}
	run("uninstall.sh", "--root", root)
	if _, err := os.Stat(filepath.Join(root, "usr/local/bin/smith-agent")); !os.IsNotExist(err) {
		t.Error("binary left after uninstall")
	}
	if _, err := os.Stat(filepath.Join(root, "etc/smith/smith-agent.toml")); err != nil {
		t.Error("uninstall without --purge removed the configuration")
	}
	run("uninstall.sh", "--root", root, "--purge")
	if _, err := os.Stat(filepath.Join(root, "etc/smith")); !os.IsNotExist(err) {
		t.Error("--purge left /etc/smith")
	}
}

// install.sh refuses a binary built for another architecture (an amd64
// bin/ copied to an arm64 server, or the other way round) instead of
// installing an agent that cannot start.
func TestInstallScriptRefusesAForeignBinary(t *testing.T) {
	root := t.TempDir()
	// The ELF identification and e_machine of the other architecture:
	// 62 is x86_64, 183 AArch64.
	machine := byte(183)
	if runtime.GOARCH == "arm64" {
		machine = 62
	}
	elf := make([]byte, 64)
	copy(elf, "\x7fELF\x02\x01\x01")
	elf[16], elf[18] = 2, machine // ET_EXEC, e_machine (little-endian)
	foreign := filepath.Join(t.TempDir(), "smith-agent")
	if err := os.WriteFile(foreign, elf, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd, err := harness.Script("install.sh", []string{"SMITH_AGENT_BIN=" + foreign}, "--root", root)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("install.sh installed a binary for another architecture:\n%s", out)
	}
	if !strings.Contains(string(out), "is not an executable for") {
		t.Errorf("install.sh output does not say why: %s", out)
	}
	if _, err := os.Stat(filepath.Join(root, "usr/local/bin/smith-agent")); !os.IsNotExist(err) {
		t.Error("the foreign binary was installed")
	}
}
