package server

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// Audit records who did what on the console: logins (accepted, refused,
// locked out), logouts, task schedule changes and decommissions. Each
// entry is one JSON line in the audit file (when there is one) and an
// info line in the console's log with field audit=<event>.
type Audit struct {
	mu  sync.Mutex
	out io.Writer // nil: the log only
	log logrus.FieldLogger
}

// NewAudit writes entries to out (nil for none) and to log.
func NewAudit(out io.Writer, log logrus.FieldLogger) *Audit {
	return &Audit{out: out, log: log}
}

// AuditEntry is one line of the audit file.
type AuditEntry struct {
	Time   time.Time         `json:"time"`
	Event  string            `json:"event"`
	Remote string            `json:"remote,omitempty"`
	Fields map[string]string `json:"fields,omitempty"`
}

// Record writes one entry; a write that fails is logged as an error (the
// action itself has happened).
func (a *Audit) Record(now time.Time, event, remote string, fields map[string]string) {
	if a == nil {
		return
	}
	lf := logrus.Fields{"audit": event}
	if remote != "" {
		lf["remote"] = remote
	}
	for k, v := range fields {
		lf[k] = v
	}
	a.log.WithFields(lf).Info("audit: " + event)
	if a.out == nil {
		return
	}
	line, err := json.Marshal(AuditEntry{Time: now.UTC(), Event: event, Remote: remote, Fields: fields})
	if err == nil {
		a.mu.Lock()
		_, err = fmt.Fprintf(a.out, "%s\n", line)
		a.mu.Unlock()
	}
	if err != nil {
		a.log.WithError(err).WithField("audit", event).Error("audit entry not written")
	}
}
