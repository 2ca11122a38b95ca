// SPDX-License-Identifier: GPL-2.0

package harness

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// fakeTB records what a test would have been failed with.
type fakeTB struct{ failed string }

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
}

func TestWaitForReturnsOnceTheConditionHolds(t *testing.T) {
	var tb fakeTB
	n := 0
	WaitFor(&tb, time.Minute, "three polls", func() bool { n++; return n == 3 })
	if tb.failed != "" || n != 3 {
		t.Fatalf("failed %q after %d polls; want no failure after 3", tb.failed, n)
	}
}

func TestWaitForFailsNamingWhatItAwaited(t *testing.T) {
	var tb fakeTB
	start := time.Now()
	WaitFor(&tb, 20*time.Millisecond, "the impossible", func() bool { return false })
	if !strings.Contains(tb.failed, "the impossible") || !strings.Contains(tb.failed, "20ms") {
		t.Fatalf("failed with %q; want it to name what was awaited and the timeout", tb.failed)
	}
	if time.Since(start) < 20*time.Millisecond {
		t.Fatal("gave up before its timeout")
	}
}
