// SPDX-License-Identifier: GPL-2.0

package consoletest

import (
	"testing"
	"time"
)

func TestClockAdvances(t *testing.T) {
	t0 := time.Unix(1000, 0)
	c := NewClock(t0)
	c.Advance(90 * time.Second)
	if got := c.Now(); !got.Equal(t0.Add(90 * time.Second)) {
		t.Fatalf("now %v", got)
	}
}
