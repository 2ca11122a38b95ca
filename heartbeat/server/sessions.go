package server

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"
)

const sessionCookie = "smith_session"

// maxSessions bounds memory whatever happens at the login endpoint; the
// oldest session is dropped to make room.
const maxSessions = 1024

// sessions are console logins, kept in memory: a console restart logs
// everybody out, which is cheaper than storing secrets on disk.
type sessions struct {
	ttl time.Duration

	mu      sync.Mutex
	expires map[string]time.Time
}

func newSessions(ttl time.Duration) *sessions {
	return &sessions{ttl: ttl, expires: make(map[string]time.Time)}
}

func (s *sessions) start(now time.Time) (string, time.Time, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", time.Time{}, fmt.Errorf("session id: %w", err)
	}
	id := hex.EncodeToString(b[:])
	exp := now.Add(s.ttl)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.expires) >= maxSessions {
		s.pruneLocked(now)
	}
	if len(s.expires) >= maxSessions {
		oldest, first := "", time.Time{}
		for k, e := range s.expires {
			if oldest == "" || e.Before(first) {
				oldest, first = k, e
			}
		}
		delete(s.expires, oldest)
	}
	s.expires[id] = exp
	return id, exp, nil
}

func (s *sessions) valid(id string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.expires[id]
	if ok && !now.Before(exp) {
		delete(s.expires, id)
		return false
	}
	return ok
}

func (s *sessions) end(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.expires, id)
}

func (s *sessions) prune(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked(now)
}

func (s *sessions) pruneLocked(now time.Time) {
	for id, exp := range s.expires {
		if !now.Before(exp) {
			delete(s.expires, id)
		}
	}
}
