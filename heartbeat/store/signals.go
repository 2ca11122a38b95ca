package store

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"smith/heartbeat/api"
)

// DropSample is the drops, by reason, that one heartbeat added.
type DropSample struct {
	At    time.Time         `json:"at"`
	Drops map[string]uint64 `json:"drops"`
}

// DefaultDropWindow is how far back drop rates and the drops alert look.
const DefaultDropWindow = 5 * time.Minute

// recordDrops appends what hb adds to the host's drop totals, before
// rec.Last is replaced. After an agent restart (or on a host's first
// heartbeat, when the agent started within the window) the totals are
// all new; an older agent's totals on a first heartbeat cannot be dated
// and are not counted as recent.
func (r *Registry) recordDrops(rec *Record, hb *api.Heartbeat, now time.Time, first bool) (changed bool) {
	base := rec.Last.Counters.Drops
	switch {
	case first && time.Duration(hb.AgentUptimeSeconds)*time.Second > r.policy.DropWindow:
		base = hb.Counters.Drops // cannot be dated: none counted as recent
	case first || hb.AgentUptimeSeconds < rec.Last.AgentUptimeSeconds:
		base = nil // the agent (re)started: all since then
	}
	var delta map[string]uint64
	for reason, n := range hb.Counters.Drops {
		before := base[reason]
		if n < before { // that counter restarted
			before = 0
		}
		if n > before {
			if delta == nil {
				delta = make(map[string]uint64)
			}
			delta[reason] = n - before
		}
	}
	keep := rec.DropSamples[:0]
	for _, s := range rec.DropSamples {
		if now.Sub(s.At) < r.policy.DropWindow {
			keep = append(keep, s)
		}
	}
	changed = len(keep) != len(rec.DropSamples)
	rec.DropSamples = keep
	if delta != nil {
		rec.DropSamples = append(rec.DropSamples, DropSample{At: now, Drops: delta})
		changed = true
	}
	if hb.ModuleVersion != "" && !rec.ModuleSeen {
		rec.ModuleSeen = true
		changed = true
	}
	return changed
}

// recentDrops sums the drop samples within the window before now.
func (r *Registry) recentDrops(rec *Record, now time.Time) (map[string]uint64, uint64) {
	out := map[string]uint64{}
	var total uint64
	for _, s := range rec.DropSamples {
		if now.Sub(s.At) >= r.policy.DropWindow {
			continue
		}
		for reason, n := range s.Drops {
			out[reason] += n
			total += n
		}
	}
	return out, total
}

// Evaluate updates every host's alerts at now and returns the alerts that
// started or ended, so the caller logs them and posts them to the
// webhook. It also refreshes the fleet's most common versions.
func (r *Registry) Evaluate(now time.Time) []api.AlertEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refreshVersionsLocked()
	var events []api.AlertEvent
	for id, rec := range r.hosts {
		want := r.conditions(rec, now)
		for kind, detail := range want {
			if a, firing := rec.Alerts[kind]; firing {
				a.Detail = detail
				rec.Alerts[kind] = a
				continue
			}
			if rec.Alerts == nil {
				rec.Alerts = make(map[string]api.Alert)
			}
			a := api.Alert{Kind: kind, HostID: id, Hostname: rec.Last.Hostname, Since: now, Detail: detail}
			rec.Alerts[kind] = a
			events = append(events, api.AlertEvent{State: "firing", At: now, Alert: a})
			r.dirty[id] = struct{}{}
		}
		for kind, a := range rec.Alerts {
			if _, still := want[kind]; !still {
				delete(rec.Alerts, kind)
				events = append(events, api.AlertEvent{State: "resolved", At: now, Alert: a})
				r.dirty[id] = struct{}{}
			}
		}
	}
	sort.Slice(events, func(i, j int) bool {
		if events[i].HostID != events[j].HostID {
			return events[i].HostID < events[j].HostID
		}
		return events[i].Kind < events[j].Kind
	})
	return events
}

// RefreshVersions recomputes the fleet's most common versions only: what
// a replica that does not lead does instead of Evaluate (the leader's
// alerts arrive with its records).
func (r *Registry) RefreshVersions() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refreshVersionsLocked()
}

func (r *Registry) refreshVersionsLocked() {
	agents, modules := map[string]int{}, map[string]int{}
	for _, rec := range r.hosts {
		if !rec.LastSeen.IsZero() {
			agents[rec.Last.AgentVersion]++
			if rec.Last.ModuleVersion != "" {
				modules[rec.Last.ModuleVersion]++
			}
		}
	}
	r.agentMode, r.moduleMode = mode(agents), mode(modules)
}

// conditions are the alerts that should fire on rec at now, with their
// details.
func (r *Registry) conditions(rec *Record, now time.Time) map[string]string {
	out := map[string]string{}
	if rec.LastSeen.IsZero() {
		return out
	}
	online := r.online(rec, now)
	if !online {
		out[api.AlertOffline] = fmt.Sprintf("no heartbeat since %s", rec.LastSeen.UTC().Format(time.RFC3339))
	}
	if drops, total := r.recentDrops(rec, now); total > 0 {
		out[api.AlertDrops] = fmt.Sprintf("%d events dropped in the last %s (%s)", total, r.policy.DropWindow, reasons(drops))
	}
	if online && rec.ModuleSeen && rec.Last.ModuleVersion == "" {
		out[api.AlertModuleUnloaded] = "the smith module is not loaded any more: the host's events are not seen"
	}
	return out
}

func reasons(drops map[string]uint64) string {
	parts := make([]string, 0, len(drops))
	for reason, n := range drops {
		parts = append(parts, fmt.Sprintf("%s %d", reason, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// mode is the most common key (the smallest among ties); "" when none.
func mode(counts map[string]int) string {
	best, n := "", 0
	for k, c := range counts {
		if c > n || (c == n && k < best) {
			best, n = k, c
		}
	}
	return best
}

// alertsLocked lists every firing alert, oldest first.
func (r *Registry) alertsLocked() []api.Alert {
	out := []api.Alert{}
	for _, rec := range r.hosts {
		for _, a := range rec.Alerts {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Since.Equal(out[j].Since) {
			return out[i].Since.Before(out[j].Since)
		}
		if out[i].Hostname != out[j].Hostname {
			return out[i].Hostname < out[j].Hostname
		}
		return out[i].Kind < out[j].Kind
	})
	return out
}

func (r *Registry) signals(rec *Record, h *api.Host, now time.Time) {
	h.DropsRecent, h.DropsRecentTotal = r.recentDrops(rec, now)
	h.DropWindowSeconds = int(r.policy.DropWindow / time.Second)
	h.SpoolFillPct = -1
	if c := rec.Last.Counters; c.SpoolMaxBytes > 0 {
		h.SpoolFillPct = 100 * float64(c.SpoolBytes) / float64(c.SpoolMaxBytes)
	}
	h.ModuleLoaded = rec.Last.ModuleVersion != ""
	h.VersionDrift = !rec.LastSeen.IsZero() && r.agentMode != "" && (rec.Last.AgentVersion != r.agentMode ||
		(rec.Last.ModuleVersion != "" && r.moduleMode != "" && rec.Last.ModuleVersion != r.moduleMode))
	h.Alerts = []api.Alert{}
	for _, kind := range []string{api.AlertOffline, api.AlertModuleUnloaded, api.AlertDrops} {
		if a, ok := rec.Alerts[kind]; ok {
			h.Alerts = append(h.Alerts, a)
		}
	}
}
