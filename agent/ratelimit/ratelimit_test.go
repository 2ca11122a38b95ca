// SPDX-License-Identifier: GPL-2.0

package ratelimit

import (
	"context"
	"testing"
	"time"
)

// A fake clock: Sleep advances it, so the test measures the time the
// limiter asked for, not the machine's speed.
func fake(b *Bytes) *time.Duration {
	var slept time.Duration
	t0 := time.Unix(1000, 0)
	now := t0
	b.Now = func() time.Time { return now }
	b.Sleep = func(_ context.Context, d time.Duration) error {
		slept += d
		now = now.Add(d)
		return nil
	}
	return &slept
}

func TestBytesRate(t *testing.T) {
	b := New(1<<20, 64<<10) // 1 MiB/s, 64 KiB burst
	slept := fake(b)
	ctx := context.Background()
	// 10 MiB in 64 KiB reads: the burst is free, the rest takes its time.
	for i := 0; i < 160; i++ {
		if err := b.Wait(ctx, 64<<10); err != nil {
			t.Fatal(err)
		}
	}
	want := time.Duration(float64(10<<20-64<<10) / float64(1<<20) * float64(time.Second))
	if d := *slept - want; d > time.Millisecond || d < -time.Millisecond {
		t.Fatalf("slept %v for 10 MiB at 1 MiB/s, want %v", *slept, want)
	}
}

func TestBytesUnlimitedAndCancel(t *testing.T) {
	b := New(0, 0)
	slept := fake(b)
	if err := b.Wait(context.Background(), 1<<30); err != nil || *slept != 0 {
		t.Fatalf("unlimited: err %v slept %v", err, *slept)
	}
	b = New(1, 0)
	b.Sleep = sleep
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Wait(ctx, 1<<30); err == nil {
		t.Fatal("Wait on a cancelled context returned nil")
	}
}
