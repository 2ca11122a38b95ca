// SPDX-License-Identifier: GPL-2.0

package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRepoRootHoldsTheScripts(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "scripts", "install.sh")); err != nil {
		t.Errorf("no scripts/install.sh under %s: %v", root, err)
	}
}

// The script runs with the environment it is given and its args; a
// failing one fails the test with its output.
func TestRunScript(t *testing.T) {
	out := RunScript(t, "install.sh", []string{"SMITH_AGENT_BIN=/nonexistent/smith-agent"}, "--help")
	if !strings.Contains(out, "--root") {
		t.Errorf("install.sh --help: %s", out)
	}
	r := &fatalRecorder{}
	RunScript(r, "install.sh", []string{"SMITH_AGENT_BIN=/nonexistent/smith-agent"}, "--root", t.TempDir())
	if !strings.Contains(r.fatal, "install.sh [--root") || !strings.Contains(r.fatal, "/nonexistent/smith-agent") {
		t.Errorf("a failed script failed the test with %q", r.fatal)
	}
}

type fatalRecorder struct{ fatal string }

func (r *fatalRecorder) Helper() {}
func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
}
