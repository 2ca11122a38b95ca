// SPDX-License-Identifier: GPL-2.0

package harness

import "time"

// Pace offers rate items per second for d: every tick it calls emit with
// the whole number of items owed since the last call (fractions carry
// over), then sleeps to the next tick; ticks that ran late are made up by
// not sleeping until the schedule is met again.  It returns how long the
// offering took, or emit's first error.
func Pace(rate float64, d, tick time.Duration, emit func(n int) error) (time.Duration, error) {
	took, _, err := PaceLive(rate, d, tick, 0, emit)
	return took, err
}

// PaceLive is Pace for a producer that stands for live activity: when the
// schedule is more than maxLate behind the clock (the process did not run:
// a host that took the CPU away), the ticks missed are not made up in one
// burst, as activity that never happened while the host stood still; the
// schedule starts again from now, and the time skipped so is returned.
// maxLate 0 makes up every tick, as Pace.
func PaceLive(rate float64, d, tick, maxLate time.Duration, emit func(n int) error) (took, skipped time.Duration, err error) {
	perTick := rate * tick.Seconds()
	var owed float64
	t0 := time.Now()
	for next := t0; time.Since(t0) < d; {
		owed += perTick
		if n := int(owed); n > 0 {
			owed -= float64(n)
			if err := emit(n); err != nil {
				return time.Since(t0), skipped, err
			}
		}
		next = next.Add(tick)
		wait := time.Until(next)
		if maxLate > 0 && -wait > maxLate {
			skipped += -wait
			next, wait = time.Now(), 0
		}
		if wait > 0 {
			time.Sleep(wait)
		}
	}
	return time.Since(t0), skipped, nil
}
