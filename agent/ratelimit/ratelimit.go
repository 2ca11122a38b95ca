// SPDX-License-Identifier: GPL-2.0

// Package ratelimit bounds how many bytes per second a background job
// reads (the executable hasher, the file integrity check), so that it
// cannot take a host's disk or CPU.
package ratelimit

import (
	"context"
	"time"
)

// Bytes is a token bucket of bytes: Wait(n) returns once n bytes fit in
// the rate.  Not safe for concurrent use: each job owns one.
type Bytes struct {
	rate  float64 // bytes per second; <= 0: unlimited
	burst float64
	avail float64
	last  time.Time

	// Now and Sleep are the clock (tests replace them).
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// New returns a limiter of rate bytes per second (0: unlimited) that lets
// up to burst bytes through at once (at least 64 KiB).
func New(rate, burst int64) *Bytes {
	b := &Bytes{rate: float64(rate), burst: float64(max(burst, 64<<10)), Now: time.Now, Sleep: sleep}
	b.avail = b.burst
	return b
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Wait takes n bytes from the bucket, sleeping until they are there.  It
// returns ctx's error when ctx ends first.
func (b *Bytes) Wait(ctx context.Context, n int) error {
	if b.rate <= 0 {
		return ctx.Err()
	}
	now := b.Now()
	if !b.last.IsZero() {
		b.avail = min(b.burst, b.avail+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	b.avail -= float64(n)
	if b.avail >= 0 {
		return ctx.Err()
	}
	d := time.Duration(-b.avail / b.rate * float64(time.Second))
	if err := b.Sleep(ctx, d); err != nil {
		return err
	}
	// The sleep paid the debt: the bucket is empty at its end.
	b.last = b.last.Add(d)
	b.avail = 0
	return nil
}
