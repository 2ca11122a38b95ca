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

// A producer that stood still longer than maxLate does not make up the
// ticks it missed: the time is skipped, not offered in a burst.  Pace
// makes them up, back to back.
func TestPaceLiveSkipsAStall(t *testing.T) {
	// The longest run of emits that came right after one another: ticks
	// made up.  A late wake-up makes up one or two at a time.
	longestRun := func(pace func(emit func(int) error)) int {
		calls, run, longest := 0, 0, 0
		last := time.Now()
		pace(func(int) error {
			calls++
			if calls == 10 {
				time.Sleep(50 * time.Millisecond)
			}
			if time.Since(last) < 200*time.Microsecond {
				run++
				longest = max(longest, run)
			} else {
				run = 0
			}
			last = time.Now()
			return nil
		})
		return longest
	}
	var took, skipped time.Duration
	live := longestRun(func(emit func(int) error) {
		var err error
		if took, skipped, err = PaceLive(1000, 120*time.Millisecond, time.Millisecond, 5*time.Millisecond, emit); err != nil {
			t.Error(err)
		}
	})
	if skipped < 40*time.Millisecond || skipped > took {
		t.Errorf("skipped %v of %v after a 50 ms stall, want about 50 ms", skipped, took)
	}
	if live > 6 { // at most maxLate's worth, made up before a skip
		t.Errorf("PaceLive made up %d ticks back to back after a stall", live)
	}
	made := longestRun(func(emit func(int) error) { Pace(1000, 120*time.Millisecond, time.Millisecond, emit) })
	if made < 20 {
		t.Errorf("Pace made up %d ticks back to back after a 50 ms stall, want about 50", made)
	}
}
