// SPDX-License-Identifier: GPL-2.0

package harness

import "time"

// WaitFor polls cond every 2 ms until it holds, and fails t, naming what
// was awaited, if it does not within timeout.  The timeout only guards
// against a hang: a passing test returns as soon as cond holds.
func WaitFor(t TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
			return
		}
	}
}
