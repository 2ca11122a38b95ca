// SPDX-License-Identifier: GPL-2.0

// Package consoletest holds the fixtures the console's tests share (and
// the agent's test against the console): the fleet secret and console
// password they run with, a settable clock, a logger that prints nothing.
// It imports nothing of the console, so that the server's own tests can
// use it.
package consoletest

import (
	"io"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// The secrets a test console runs with.
const (
	FleetToken      = "fleet-secret"
	ConsolePassword = "console-secret"
)

// Clock is a time source a test sets and advances.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock starts at now.
func NewClock(now time.Time) *Clock { return &Clock{now: now} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// QuietLog is a logger whose output is discarded.
func QuietLog() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}
