// SPDX-License-Identifier: GPL-2.0

package kmodtest

import (
	"fmt"
	"os"
	"os/exec"
)

// EnvStep makes a test binary run one step in a child process instead of
// its tests (as another user, in a new namespace, for a hooked call the
// test must see from outside): the step's name is its value. The binary's
// TestMain runs Step() when it is set.
const EnvStep = "SMITH_TEST_STEP"

// Step is the step this process was started to run, "" in the test run
// itself.
func Step() string { return os.Getenv(EnvStep) }

// StepCommand is this test binary started again to run step.
func StepCommand(step string) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("step %s: the test binary: %w", step, err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), EnvStep+"="+step)
	return cmd, nil
}

// Must returns what f returns, failing the test on its error (the
// control handle's ioctls, in a test that only needs their answer).
func Must[T any](t TB, f func() (T, error)) T {
	t.Helper()
	v, err := f()
	if err != nil {
		t.Fatalf("%v", err)
	}
	return v
}
