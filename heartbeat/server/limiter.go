package server

import (
	"sync"
	"time"
)

// maxTracked bounds the addresses the login limiter remembers whatever
// arrives; past it the entry seen longest ago is forgotten.
const maxTracked = 10000

// limiter counts failed password attempts per client address and locks
// an address out for a while after too many: a guess per second becomes
// maxFailures guesses per lockout period.
type limiter struct {
	maxFailures int
	lockout     time.Duration

	mu    sync.Mutex
	addrs map[string]*attempts
}

type attempts struct {
	failures int
	last     time.Time // latest failure
	until    time.Time // locked out before this time
}

func newLimiter(maxFailures int, lockout time.Duration) *limiter {
	return &limiter{maxFailures: maxFailures, lockout: lockout, addrs: make(map[string]*attempts)}
}

// locked reports until when addr is locked out (zero when it is not).
func (l *limiter) locked(addr string, now time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.addrs[addr]
	if a == nil || !now.Before(a.until) {
		return time.Time{}
	}
	return a.until
}

// fail counts a wrong password from addr and returns when the lockout it
// started ends (zero when this failure did not start one). Failures older
// than the lockout period are forgotten.
func (l *limiter) fail(addr string, now time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.addrs[addr]
	if a == nil {
		if len(l.addrs) >= maxTracked {
			l.evictLocked(now)
		}
		a = &attempts{}
		l.addrs[addr] = a
	}
	if now.Sub(a.last) > l.lockout {
		a.failures = 0
	}
	a.failures++
	a.last = now
	if a.failures >= l.maxFailures {
		a.failures = 0
		a.until = now.Add(l.lockout)
		return a.until
	}
	return time.Time{}
}

// succeed forgets addr's failures.
func (l *limiter) succeed(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.addrs, addr)
}

func (l *limiter) prune(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for addr, a := range l.addrs {
		if l.staleLocked(a, now) {
			delete(l.addrs, addr)
		}
	}
}

func (l *limiter) staleLocked(a *attempts, now time.Time) bool {
	return !now.Before(a.until) && now.Sub(a.last) > l.lockout
}

func (l *limiter) evictLocked(now time.Time) {
	for addr, a := range l.addrs {
		if l.staleLocked(a, now) {
			delete(l.addrs, addr)
			return
		}
	}
	dropOldest(l.addrs, func(a *attempts) time.Time { return a.last })
}

// dropOldest deletes the entry of m whose time (at) is the earliest: the
// one a full table of the limiter or of the sessions gives up.
func dropOldest[V any](m map[string]V, at func(V) time.Time) {
	oldest, first := "", time.Time{}
	for k, v := range m {
		if t := at(v); oldest == "" || t.Before(first) {
			oldest, first = k, t
		}
	}
	delete(m, oldest)
}

// bucket is a token bucket: rate tokens a second, at most burst saved.
// It bounds how fast new hosts can enrol, whoever holds the secret.
type bucket struct {
	rate  float64
	burst float64

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

func newBucket(rate float64, burst int) *bucket {
	return &bucket{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

// take spends one token, or returns how long until one is there.
func (b *bucket) take(now time.Time) (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() && now.After(b.last) {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	if b.last.IsZero() || now.After(b.last) {
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}
