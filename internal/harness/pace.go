// SPDX-License-Identifier: GPL-2.0

package harness

import "time"

// Pace offers rate items per second for d: every tick it calls emit with
// the whole number of items owed since the last call (fractions carry
// over), then sleeps to the next tick; a tick that ran late is not made up
// by sleeping less later, only by the larger count owed.  It returns how
// long the offering took, or emit's first error.
func Pace(rate float64, d, tick time.Duration, emit func(n int) error) (time.Duration, error) {
	perTick := rate * tick.Seconds()
	var owed float64
	t0 := time.Now()
	for next := t0; time.Since(t0) < d; {
		owed += perTick
		if n := int(owed); n > 0 {
			owed -= float64(n)
			if err := emit(n); err != nil {
				return time.Since(t0), err
			}
		}
		next = next.Add(tick)
		if wait := time.Until(next); wait > 0 {
			time.Sleep(wait)
		}
	}
	return time.Since(t0), nil
}
