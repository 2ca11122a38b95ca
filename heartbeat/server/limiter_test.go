package server

import (
	"fmt"
	"testing"
	"time"
)

// A full limiter with nothing stale forgets the address whose last
// failure is the oldest, and keeps the others.
func TestLimiterFullForgetsTheOldestAddress(t *testing.T) {
	l := newLimiter(3, time.Minute)
	t0 := time.Unix(1000, 0)
	for i := range maxTracked {
		l.fail(fmt.Sprintf("10.0.%d.%d", i/256, i%256), t0.Add(time.Duration(i+1)*time.Millisecond))
	}
	now := t0.Add(time.Second)
	l.fail("192.0.2.1", now)
	if len(l.addrs) != maxTracked {
		t.Fatalf("%d addresses tracked, want %d", len(l.addrs), maxTracked)
	}
	if l.addrs["10.0.0.0"] != nil {
		t.Error("the address seen longest ago is still tracked")
	}
	for _, a := range []string{"10.0.0.1", "192.0.2.1"} {
		if l.addrs[a] == nil {
			t.Errorf("%s is no longer tracked", a)
		}
	}
}

// Full sessions with none expired drop the one that expires first.
func TestSessionsFullDropTheOneExpiringFirst(t *testing.T) {
	s := newSessions(time.Hour)
	t0 := time.Unix(1000, 0)
	first, _, err := s.Start(t0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < maxSessions; i++ {
		if _, _, err := s.Start(t0.Add(time.Duration(i) * time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	now := t0.Add(time.Duration(maxSessions) * time.Second)
	id, _, err := s.Start(now)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.expires) != maxSessions || s.Valid(first, now) || !s.Valid(id, now) {
		t.Fatalf("%d sessions, first valid %v, newest valid %v: want %d, the first dropped", len(s.expires), s.Valid(first, now), s.Valid(id, now), maxSessions)
	}
}
