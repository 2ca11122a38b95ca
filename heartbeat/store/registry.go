// Package store is the console's host registry: every host that ever sent
// a heartbeat, its latest state and task results, whether it is online, and
// which tasks are due on it. The registry lives in memory and is written
// behind to a bbolt file (DB) so it survives a restart.
//
// Write-behind, not write-through: every host repeats its state each
// interval, so a crash loses at most the last flush period of last-seen
// times, which the next heartbeat restores; in exchange a heartbeat costs
// no fsync and a thousand of them share one transaction.
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"smith/heartbeat/api"
)

// Record is what the registry keeps about one host; it is stored as JSON.
type Record struct {
	HostID     string    `json:"host_id"`
	FirstSeen  time.Time `json:"first_seen"`
	LastSeen   time.Time `json:"last_seen"` // console clock
	RemoteAddr string    `json:"remote_addr"`
	EventRate  float64   `json:"event_rate"`
	// Last is the latest heartbeat, without its task results.
	Last api.Heartbeat `json:"last"`
	// Tasks holds the latest result per kind; Issued when each kind was
	// last handed out.
	Tasks  map[api.TaskKind]api.TaskResult `json:"tasks,omitempty"`
	Issued map[api.TaskKind]time.Time      `json:"issued,omitempty"`
}

// Policy is what the registry decides with.
type Policy struct {
	// OfflineAfter is how long a host may be silent and still be online.
	OfflineAfter time.Duration
	// TaskIntervals says how often each kind is due; a kind missing or
	// at 0 is never handed out.
	TaskIntervals map[api.TaskKind]time.Duration
}

// Registry is safe for concurrent use.
type Registry struct {
	policy Policy
	db     *DB

	mu      sync.Mutex
	hosts   map[string]*Record
	dirty   map[string]struct{}
	offline map[string]bool // last state Sweep reported
}

// Open loads the registry from the bbolt file at path.
func Open(path string, p Policy) (*Registry, error) {
	if p.OfflineAfter <= 0 {
		return nil, fmt.Errorf("registry policy: offline timeout %v must be positive", p.OfflineAfter)
	}
	db, err := OpenDB(path)
	if err != nil {
		return nil, err
	}
	records, err := db.Load()
	if err != nil {
		db.Close()
		return nil, err
	}
	r := &Registry{
		policy:  p,
		db:      db,
		hosts:   make(map[string]*Record, len(records)),
		dirty:   make(map[string]struct{}),
		offline: make(map[string]bool),
	}
	for _, rec := range records {
		r.hosts[rec.HostID] = rec
	}
	return r, nil
}

// Heartbeat records an accepted, validated heartbeat received at now from
// remote, and returns the tasks due on that host (handing them out).
func (r *Registry) Heartbeat(hb *api.Heartbeat, remote string, now time.Time) []api.Task {
	r.mu.Lock()
	defer r.mu.Unlock()

	rec := r.hosts[hb.HostID]
	if rec == nil {
		rec = &Record{HostID: hb.HostID, FirstSeen: now}
		r.hosts[hb.HostID] = rec
	} else {
		rec.EventRate = eventRate(rec, hb, now)
	}
	rec.LastSeen = now
	rec.RemoteAddr = remote
	rec.Last = *hb
	rec.Last.TaskResults = nil
	for _, res := range hb.TaskResults {
		// Only kinds this console knows are kept: that bounds a
		// record's size whatever an agent sends.
		if !res.Kind.Known() {
			continue
		}
		if rec.Tasks == nil {
			rec.Tasks = make(map[api.TaskKind]api.TaskResult)
		}
		rec.Tasks[res.Kind] = res
	}
	delete(r.offline, hb.HostID)

	var due []api.Task
	for _, kind := range api.TaskKinds {
		every := r.policy.TaskIntervals[kind]
		if every <= 0 {
			continue
		}
		if last, ok := rec.Issued[kind]; ok && now.Sub(last) < every {
			continue
		}
		if rec.Issued == nil {
			rec.Issued = make(map[api.TaskKind]time.Time)
		}
		rec.Issued[kind] = now
		due = append(due, api.Task{ID: fmt.Sprintf("%s-%d", kind, now.Unix()), Kind: kind})
	}
	r.dirty[hb.HostID] = struct{}{}
	return due
}

// eventRate is events read per second since the previous heartbeat of the
// same agent run; after an agent restart the counters start again from 0,
// so the rate is the new total over the agent's uptime.
func eventRate(prev *Record, hb *api.Heartbeat, now time.Time) float64 {
	restarted := hb.AgentUptimeSeconds < prev.Last.AgentUptimeSeconds ||
		hb.Counters.EventsRead < prev.Last.Counters.EventsRead
	if restarted {
		if hb.AgentUptimeSeconds <= 0 {
			return 0
		}
		return float64(hb.Counters.EventsRead) / float64(hb.AgentUptimeSeconds)
	}
	dt := now.Sub(prev.LastSeen).Seconds()
	if dt <= 0 {
		return prev.EventRate
	}
	return float64(hb.Counters.EventsRead-prev.Last.Counters.EventsRead) / dt
}

// List returns fleet counts and the hosts whose name or one of whose IPs
// starts with prefix (case-insensitive), sorted by name then id.
func (r *Registry) List(prefix string, now time.Time) api.HostList {
	prefix = strings.ToLower(prefix)
	r.mu.Lock()
	defer r.mu.Unlock()
	out := api.HostList{Hosts: []api.Host{}}
	for _, rec := range r.hosts {
		h := r.view(rec, now, false)
		out.Counts.Add(h.Online)
		if matches(rec, prefix) {
			out.Hosts = append(out.Hosts, h)
		}
	}
	sort.Slice(out.Hosts, func(i, j int) bool {
		a, b := out.Hosts[i], out.Hosts[j]
		if a.Hostname != b.Hostname {
			return a.Hostname < b.Hostname
		}
		return a.HostID < b.HostID
	})
	return out
}

func matches(rec *Record, prefix string) bool {
	if prefix == "" || strings.HasPrefix(strings.ToLower(rec.Last.Hostname), prefix) {
		return true
	}
	for _, ip := range rec.Last.IPs {
		if strings.HasPrefix(strings.ToLower(ip), prefix) {
			return true
		}
	}
	return false
}

// Count returns fleet counts.
func (r *Registry) Count(now time.Time) api.Counts {
	r.mu.Lock()
	defer r.mu.Unlock()
	var c api.Counts
	for _, rec := range r.hosts {
		c.Add(r.online(rec, now))
	}
	return c
}

// Lookup finds one host by id, then by name (case-insensitive), then by
// IP; when several hosts share a name or IP the most recently seen wins.
// The view includes the latest task results.
func (r *Registry) Lookup(key string, now time.Time) (api.Host, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rec, ok := r.hosts[key]; ok {
		return r.view(rec, now, true), true
	}
	var best *Record
	better := func(rec *Record) {
		if best == nil || rec.LastSeen.After(best.LastSeen) {
			best = rec
		}
	}
	for _, rec := range r.hosts {
		if strings.EqualFold(rec.Last.Hostname, key) {
			better(rec)
		}
	}
	if best == nil {
		for _, rec := range r.hosts {
			for _, ip := range rec.Last.IPs {
				if ip == key {
					better(rec)
				}
			}
		}
	}
	if best == nil {
		return api.Host{}, false
	}
	return r.view(best, now, true), true
}

// Sweep returns the hosts that went offline since the previous Sweep, so
// the caller can log each transition once.
func (r *Registry) Sweep(now time.Time) []api.Host {
	r.mu.Lock()
	defer r.mu.Unlock()
	var gone []api.Host
	for id, rec := range r.hosts {
		if r.online(rec, now) || r.offline[id] {
			continue
		}
		r.offline[id] = true
		gone = append(gone, r.view(rec, now, false))
	}
	return gone
}

// Flush writes the hosts changed since the previous Flush.
func (r *Registry) Flush() error {
	r.mu.Lock()
	batch := make([]encoded, 0, len(r.dirty))
	var encErr error
	for id := range r.dirty {
		e, err := encode(r.hosts[id])
		if err != nil {
			encErr = errors.Join(encErr, err)
			continue
		}
		batch = append(batch, e)
	}
	clear(r.dirty)
	r.mu.Unlock()

	if err := r.db.save(batch); err != nil {
		r.mu.Lock()
		for _, e := range batch {
			r.dirty[string(e.key)] = struct{}{}
		}
		r.mu.Unlock()
		return errors.Join(encErr, err)
	}
	return encErr
}

// ScheduleChanges records the task intervals in force and returns, per
// kind, "old -> new" where they differ from those the registry recorded
// last time (empty on the first start), so the caller can audit them.
func (r *Registry) ScheduleChanges() (map[string]string, error) {
	now := make(map[string]string, len(api.TaskKinds))
	for _, k := range api.TaskKinds {
		now[string(k)] = r.policy.TaskIntervals[k].String()
	}
	raw, err := json.Marshal(now)
	if err != nil {
		return nil, fmt.Errorf("task schedule: %w", err)
	}
	oldRaw, err := r.db.swapMeta("task_schedule", raw)
	if err != nil || oldRaw == nil {
		return nil, err
	}
	var old map[string]string
	if err := json.Unmarshal(oldRaw, &old); err != nil {
		return nil, fmt.Errorf("task schedule stored: %w", err)
	}
	changes := map[string]string{}
	for k, v := range now {
		if prev, ok := old[k]; !ok || prev != v {
			if !ok {
				prev = "unset"
			}
			changes[k] = prev + " -> " + v
		}
	}
	return changes, nil
}

// Close flushes and closes the file.
func (r *Registry) Close() error {
	return errors.Join(r.Flush(), r.db.Close())
}

func (r *Registry) online(rec *Record, now time.Time) bool {
	return now.Sub(rec.LastSeen) <= r.policy.OfflineAfter
}

func (r *Registry) view(rec *Record, now time.Time, withTasks bool) api.Host {
	hb := &rec.Last
	h := api.Host{
		HostID:             rec.HostID,
		Hostname:           hb.Hostname,
		IPs:                hb.IPs,
		Online:             r.online(rec, now),
		FirstSeen:          rec.FirstSeen,
		LastSeen:           rec.LastSeen,
		RemoteAddr:         rec.RemoteAddr,
		AgentVersion:       hb.AgentVersion,
		ModuleVersion:      hb.ModuleVersion,
		ABIVersion:         hb.ABIVersion,
		Transport:          hb.Transport,
		Kernel:             hb.Kernel,
		UptimeSeconds:      hb.UptimeSeconds,
		AgentUptimeSeconds: hb.AgentUptimeSeconds,
		IntervalSeconds:    hb.IntervalSeconds,
		EventRate:          rec.EventRate,
		Counters:           hb.Counters,
		LastError:          hb.LastError,
	}
	if h.IPs == nil {
		h.IPs = []string{}
	}
	for _, n := range hb.Counters.Drops {
		h.DropsTotal += n
	}
	if withTasks {
		for _, kind := range api.TaskKinds {
			if res, ok := rec.Tasks[kind]; ok {
				h.Tasks = append(h.Tasks, res)
			}
		}
	}
	return h
}
