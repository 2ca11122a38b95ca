// SPDX-License-Identifier: GPL-2.0

package harness

import (
	"errors"
	"testing"
	"time"
)

// What Pace offers is the rate times the ticks it ran, whatever the
// machine's speed: the count is checked against the ticks, not the clock.
func TestPaceOffersTheRatePerTick(t *testing.T) {
	var total, calls int
	took, err := Pace(2500, 50*time.Millisecond, 10*time.Millisecond, func(n int) error {
		total += n
		calls++
		return nil
	})
	if err != nil || took < 50*time.Millisecond {
		t.Fatalf("took %v, %v", took, err)
	}
	// 25 items a tick, carried over exactly: 25 per call.
	if calls == 0 || total != 25*calls {
		t.Fatalf("%d items in %d calls, want 25 a call", total, calls)
	}
	// A fraction per tick carries over: 0.4 a tick gives 2 every 5 ticks.
	total, calls = 0, 0
	Pace(40, 100*time.Millisecond, 10*time.Millisecond, func(n int) error { total += n; calls++; return nil })
	if calls == 0 || total != calls {
		t.Fatalf("%d items in %d calls, want one a call", total, calls)
	}
	boom := errors.New("boom")
	if _, err := Pace(1000, time.Second, time.Millisecond, func(int) error { return boom }); err != boom {
		t.Fatalf("error %v", err)
	}
}
