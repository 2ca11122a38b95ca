// SPDX-License-Identifier: GPL-2.0

// Package tick runs a function every period until a context ends: the
// agent's host identity refresh and the console's maintenance loop.
package tick

import (
	"context"
	"time"
)

// Every calls f every period (the first call one period from now) until
// ctx ends; a call that outlasts a period delays the next one, never
// doubles it.
func Every(ctx context.Context, period time.Duration, f func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}
