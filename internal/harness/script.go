// SPDX-License-Identifier: GPL-2.0

package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// RepoRoot is the repository's top directory: the nearest directory
// above the working directory (a test's is its package's) that holds
// go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", errors.New("repository root: no go.mod above the working directory")
		}
		dir = up
	}
}

// Script is the command that runs the repository's scripts/NAME (bash)
// with args, env added to this process's environment.
func Script(name string, env []string, args ...string) (*exec.Cmd, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("bash", append([]string{filepath.Join(root, "scripts", name)}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	return cmd, nil
}

// TB is the part of testing.TB that RunScript uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// RunScript runs scripts/NAME as Script does and returns its output; a
// script that fails fails the test, with its output.
func RunScript(t TB, name string, env []string, args ...string) string {
	t.Helper()
	cmd, err := Script(name, env, args...)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
		return ""
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}
