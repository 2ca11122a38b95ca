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

// Sessions keep console logins: in memory for one console (New's
// default), in Redis (store.RedisSessions) for replicas.
type Sessions interface {
	Start(now time.Time) (id string, expires time.Time, err error)
	Valid(id string, now time.Time) bool
	End(id string)
	Prune(now time.Time)
}

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

func (s *sessions) Start(now time.Time) (string, time.Time, error) {
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
		dropOldest(s.expires, func(exp time.Time) time.Time { return exp })
	}
	s.expires[id] = exp
	return id, exp, nil
}

func (s *sessions) Valid(id string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.expires[id]
	if ok && !now.Before(exp) {
		delete(s.expires, id)
		return false
	}
	return ok
}

func (s *sessions) End(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.expires, id)
}

func (s *sessions) Prune(now time.Time) {
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
