// SPDX-License-Identifier: GPL-2.0

package tick

import (
	"context"
	"testing"
	"time"
)

// Every calls f until the context ends and returns then.
func TestEveryCallsUntilTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	done := make(chan struct{})
	go func() {
		Every(ctx, time.Millisecond, func() {
			calls++
			if calls == 3 {
				cancel()
			}
		})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Every did not return after the context ended")
	}
	if calls != 3 {
		t.Errorf("%d calls, want 3 (the last one ended the context)", calls)
	}
}
