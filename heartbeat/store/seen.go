package store

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"smith/heartbeat/api"
)

// Seen is what a routine heartbeat changes: when and from where, the
// counters, the event rate. When nothing else changed (same identity,
// versions and error, no task result, no task handed out, no new drops)
// only this is written, not the whole record with its task results.
type Seen struct {
	HostID             string       `json:"host_id"`
	LastSeen           time.Time    `json:"last_seen"`
	RemoteAddr         string       `json:"remote_addr"`
	EventRate          float64      `json:"event_rate"`
	SentAt             time.Time    `json:"sent_at"`
	Seq                uint64       `json:"seq"`
	UptimeSeconds      int64        `json:"uptime_s"`
	AgentUptimeSeconds int64        `json:"agent_uptime_s"`
	Counters           api.Counters `json:"counters"`
}

func seenOf(rec *Record) Seen {
	return Seen{
		HostID: rec.HostID, LastSeen: rec.LastSeen, RemoteAddr: rec.RemoteAddr, EventRate: rec.EventRate,
		SentAt: rec.Last.SentAt, Seq: rec.Last.Seq, UptimeSeconds: rec.Last.UptimeSeconds,
		AgentUptimeSeconds: rec.Last.AgentUptimeSeconds, Counters: rec.Last.Counters,
	}
}

// merge applies s to rec when it is newer than what rec holds.
func (s *Seen) merge(rec *Record) {
	if !s.LastSeen.After(rec.LastSeen) {
		return
	}
	rec.LastSeen, rec.RemoteAddr, rec.EventRate = s.LastSeen, s.RemoteAddr, s.EventRate
	rec.Last.SentAt, rec.Last.Seq = s.SentAt, s.Seq
	rec.Last.UptimeSeconds, rec.Last.AgentUptimeSeconds = s.UptimeSeconds, s.AgentUptimeSeconds
	rec.Last.Counters = s.Counters
}

func encodeSeen(rec *Record) (Encoded, error) {
	v, err := json.Marshal(seenOf(rec))
	if err != nil {
		return Encoded{}, fmt.Errorf("encode host %q: %w", rec.HostID, err)
	}
	return Encoded{Key: []byte(rec.HostID), Value: v}, nil
}

// mergeSeen applies stored Seen entries (JSON) to their records.
func mergeSeen(records []*Record, seen map[string][]byte) error {
	for _, rec := range records {
		raw, ok := seen[rec.HostID]
		if !ok {
			continue
		}
		var s Seen
		if err := json.Unmarshal(raw, &s); err != nil {
			return fmt.Errorf("host %q: last seen: %w", rec.HostID, err)
		}
		s.merge(rec)
	}
	return nil
}

// routine reports whether hb changes nothing in rec but its Seen part
// (checked before rec takes hb).
func routine(rec *Record, hb *api.Heartbeat, remote string) bool {
	p := &rec.Last
	return !rec.FirstSeen.IsZero() && len(hb.TaskResults) == 0 && rec.RemoteAddr == remote &&
		p.Hostname == hb.Hostname && slices.Equal(p.IPs, hb.IPs) && p.AgentVersion == hb.AgentVersion &&
		p.ModuleVersion == hb.ModuleVersion && p.ABIVersion == hb.ABIVersion && p.Transport == hb.Transport &&
		p.Kernel == hb.Kernel && p.IntervalSeconds == hb.IntervalSeconds && p.LastError == hb.LastError &&
		p.RunID == hb.RunID && p.Version == hb.Version
}
