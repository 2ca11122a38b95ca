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
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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

	// Enrolment: when and from where the host received its credential,
	// and the credential's SHA-256 (the credential itself is never
	// kept). Empty for a host registered before enrolment existed.
	EnrolledAt       time.Time `json:"enrolled_at"`
	EnrolledFrom     string    `json:"enrolled_from,omitempty"`
	CredentialSHA256 string    `json:"credential_sha256,omitempty"`
	// RunID is the agent run heartbeating now; PastRuns the runs it
	// replaced, newest last (at most maxPastRuns): one of those that
	// heartbeats again is a second agent with this host's identity.
	RunID    string   `json:"run_id,omitempty"`
	PastRuns []string `json:"past_runs,omitempty"`
	// Conflicts counts refused claims on this identity.
	Conflicts    int           `json:"conflicts,omitempty"`
	LastConflict *api.Conflict `json:"last_conflict,omitempty"`

	// DropSamples are the drops the heartbeats within the drop window
	// added (newest last); ModuleSeen that a module was loaded once;
	// Alerts the alerts firing, by kind.
	DropSamples []DropSample         `json:"drop_samples,omitempty"`
	ModuleSeen  bool                 `json:"module_seen,omitempty"`
	Alerts      map[string]api.Alert `json:"alerts,omitempty"`
}

// maxPastRuns bounds the agent runs remembered per host.
const maxPastRuns = 8

// Errors of Enrol and HeartbeatAs; the server turns each into its answer.
var (
	ErrAlreadyEnrolled   = errors.New("this host id is enrolled already: a second machine with the same machine-id? decommission the host on the console to enrol it again")
	ErrRegistryFull      = errors.New("the registry holds its maximum number of hosts")
	ErrUnknownCredential = errors.New("not the credential of an enrolled host (decommissioned, or never enrolled)")
	ErrWrongHost         = errors.New("this credential belongs to another host: a host can only speak for itself")
	ErrIdentityConflict  = errors.New("another agent heartbeats with this host's identity and credential (a cloned machine?): refused; see the host on the console")
)

// Policy is what the registry decides with.
type Policy struct {
	// OfflineAfter is how long a host may be silent and still be online.
	OfflineAfter time.Duration
	// TaskIntervals says how often each kind is due; a kind missing or
	// at 0 is never handed out.
	TaskIntervals map[api.TaskKind]time.Duration
	// MaxHosts bounds the registry (0: DefaultMaxHosts); enrolments
	// beyond it are refused.
	MaxHosts int
	// DropWindow is how far back drop rates and the drops alert look
	// (0: DefaultDropWindow).
	DropWindow time.Duration
}

// DefaultMaxHosts is the registry's size when the policy gives none.
const DefaultMaxHosts = 200000

// Backend is where a Registry keeps its records: a bbolt file (DB, one
// console) or Redis (Redis, several console replicas sharing a fleet).
type Backend interface {
	// Load returns every stored record.
	Load() ([]*Record, error)
	// Save writes at once the whole records, the Seen parts of the
	// hosts that only heartbeat (seen), and deletes the hosts in gone.
	Save(records, seen []Encoded, gone [][]byte) error
	// SwapMeta stores value under key and returns the previous value.
	SwapMeta(key string, value []byte) ([]byte, error)
	Close() error
}

// Registry is safe for concurrent use.
type Registry struct {
	policy Policy
	db     Backend

	mu      sync.Mutex
	hosts   map[string]*Record
	creds   map[string]string // credential SHA-256 -> host id
	dirty   map[string]struct{}
	touched map[string]struct{} // only their Seen part changed
	deleted map[string]struct{} // decommissioned since the last Flush
	offline map[string]bool     // last state Sweep reported
	// The fleet's most common agent and module versions, as of the last
	// Evaluate.
	agentMode, moduleMode string
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
	return OpenWith(db, p)
}

// OpenWith loads the registry from backend db, which it closes on failure
// and in Close.
func OpenWith(db Backend, p Policy) (*Registry, error) {
	if p.OfflineAfter <= 0 {
		db.Close()
		return nil, fmt.Errorf("registry policy: offline timeout %v must be positive", p.OfflineAfter)
	}
	if p.MaxHosts <= 0 {
		p.MaxHosts = DefaultMaxHosts
	}
	if p.DropWindow <= 0 {
		p.DropWindow = DefaultDropWindow
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
		creds:   make(map[string]string, len(records)),
		dirty:   make(map[string]struct{}),
		touched: make(map[string]struct{}),
		deleted: make(map[string]struct{}),
		offline: make(map[string]bool),
	}
	for _, rec := range records {
		r.hosts[rec.HostID] = rec
		if rec.CredentialSHA256 != "" {
			r.creds[rec.CredentialSHA256] = rec.HostID
		}
	}
	return r, nil
}

// credentialPrefix marks a host credential (so a leaked one is
// recognisable in a log or a repository).
const credentialPrefix = "smithhost1_"

func credentialHash(cred string) string {
	sum := sha256.Sum256([]byte(cred))
	return hex.EncodeToString(sum[:])
}

// Enrol gives hostID (named hostname, asking from remote) its own
// credential. A host id that has one already is refused with
// ErrAlreadyEnrolled and the claim is recorded on that host as a
// conflict; a full registry refuses new ids with ErrRegistryFull.
func (r *Registry) Enrol(hostID, hostname, remote string, now time.Time) (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("host credential: %w", err)
	}
	cred := credentialPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	if err := r.enrol(cred, hostID, hostname, remote, now); err != nil {
		return "", err
	}
	// A shared backend gets the new host at once, not at the next flush:
	// the agent's next request may reach another replica. On failure the
	// flush tries again.
	if _, shared := r.db.(*Redis); shared {
		r.mu.Lock()
		e, err := encode(r.hosts[hostID])
		r.mu.Unlock()
		if err == nil {
			r.db.Save([]Encoded{e}, nil, nil)
		}
	}
	return cred, nil
}

func (r *Registry) enrol(cred, hostID, hostname, remote string, now time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.hosts[hostID]
	switch {
	case rec != nil && rec.CredentialSHA256 != "":
		r.conflictLocked(rec, now, remote, hostname, "enrolment for this enrolled host id")
		return ErrAlreadyEnrolled
	case rec == nil && len(r.hosts) >= r.policy.MaxHosts:
		return ErrRegistryFull
	case rec == nil:
		rec = &Record{HostID: hostID, Last: api.Heartbeat{HostID: hostID, Hostname: hostname}}
		r.hosts[hostID] = rec
		delete(r.deleted, hostID)
	}
	rec.EnrolledAt, rec.EnrolledFrom = now, remote
	rec.CredentialSHA256 = credentialHash(cred)
	r.creds[rec.CredentialSHA256] = hostID
	r.dirty[hostID] = struct{}{}
	return nil
}

func (r *Registry) conflictLocked(rec *Record, now time.Time, remote, hostname, reason string) {
	rec.Conflicts++
	rec.LastConflict = &api.Conflict{At: now, Remote: remote, Hostname: hostname, Reason: reason}
	r.dirty[rec.HostID] = struct{}{}
}

// Authenticate returns the host id whose credential cred is.
func (r *Registry) Authenticate(cred string) (string, bool) {
	if cred == "" {
		return "", false
	}
	return r.owner(credentialHash(cred))
}

// owner is the host id of the credential with SHA-256 h. With a shared
// backend, a credential this replica does not know yet (the host enrolled
// on another replica a moment ago) is looked up there.
func (r *Registry) owner(h string) (string, bool) {
	r.mu.Lock()
	id, ok := r.creds[h]
	r.mu.Unlock()
	if ok {
		return id, true
	}
	rd, shared := r.db.(*Redis)
	if !shared {
		return "", false
	}
	rec, err := rd.byCredential(h)
	if err != nil || rec == nil {
		return "", false
	}
	r.applyRemote(rec.HostID, rec)
	return rec.HostID, true
}

// HeartbeatAs records a validated heartbeat that came with credential
// cred: it must be the credential of the host the heartbeat is about
// (ErrUnknownCredential, ErrWrongHost), from the agent run that heartbeats
// for that host now or a new one, not one a newer run replaced
// (ErrIdentityConflict). Refused claims are recorded on the claimed host.
func (r *Registry) HeartbeatAs(cred string, hb *api.Heartbeat, remote string, now time.Time) ([]api.Task, error) {
	h := credentialHash(cred)
	if _, ok := r.owner(h); !ok {
		return nil, ErrUnknownCredential
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	owner, ok := r.creds[h]
	if !ok {
		return nil, ErrUnknownCredential
	}
	if owner != hb.HostID {
		if claimed := r.hosts[hb.HostID]; claimed != nil {
			r.conflictLocked(claimed, now, remote, hb.Hostname,
				fmt.Sprintf("heartbeat for this host with the credential of %s (%s)", r.hosts[owner].Last.Hostname, owner))
		}
		return nil, ErrWrongHost
	}
	rec := r.hosts[owner]
	if hb.RunID != "" && hb.RunID != rec.RunID {
		if slices.Contains(rec.PastRuns, hb.RunID) {
			r.conflictLocked(rec, now, remote, hb.Hostname,
				fmt.Sprintf("two agents heartbeat with this host's credential: run %s came back after run %s replaced it", hb.RunID, rec.RunID))
			return nil, ErrIdentityConflict
		}
		if rec.RunID != "" {
			rec.PastRuns = append(rec.PastRuns, rec.RunID)
			if n := len(rec.PastRuns); n > maxPastRuns {
				rec.PastRuns = rec.PastRuns[n-maxPastRuns:]
			}
		}
		rec.RunID = hb.RunID
		r.dirty[owner] = struct{}{}
	}
	return r.heartbeatLocked(hb, remote, now), nil
}

// Decommission forgets the host with exactly this id and revokes its
// credential; its agent's heartbeats are refused from now on (it may
// enrol again). It returns the host as it was.
func (r *Registry) Decommission(hostID string, now time.Time) (api.Host, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.hosts[hostID]
	if rec == nil {
		return api.Host{}, false
	}
	h := r.view(rec, now, false)
	delete(r.hosts, hostID)
	delete(r.creds, rec.CredentialSHA256)
	delete(r.offline, hostID)
	delete(r.dirty, hostID)
	delete(r.touched, hostID)
	r.deleted[hostID] = struct{}{}
	return h, true
}

// heartbeat records a heartbeat without any credential check (the
// package's tests use it; the server goes through HeartbeatAs).
func (r *Registry) heartbeat(hb *api.Heartbeat, remote string, now time.Time) []api.Task {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.heartbeatLocked(hb, remote, now)
}

func (r *Registry) heartbeatLocked(hb *api.Heartbeat, remote string, now time.Time) []api.Task {
	rec := r.hosts[hb.HostID]
	if rec == nil {
		rec = &Record{HostID: hb.HostID}
		r.hosts[hb.HostID] = rec
		delete(r.deleted, hb.HostID)
	}
	hot := routine(rec, hb, remote)
	first := rec.FirstSeen.IsZero()
	if first {
		rec.FirstSeen = now
	} else {
		rec.EventRate = eventRate(rec, hb, now)
	}
	if r.recordDrops(rec, hb, now, first) {
		hot = false
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
	if hot && len(due) == 0 {
		r.touched[hb.HostID] = struct{}{}
	} else {
		r.dirty[hb.HostID] = struct{}{}
	}
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
	out := api.HostList{Hosts: []api.Host{}, Alerts: r.alertsLocked(), AgentVersion: r.agentMode, ModuleVersion: r.moduleMode}
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
		if rec.LastSeen.IsZero() || r.online(rec, now) || r.offline[id] {
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
	var encErr error
	seen := make([]Encoded, 0, len(r.touched))
	for id := range r.touched {
		if _, whole := r.dirty[id]; whole {
			continue
		}
		if rec := r.hosts[id]; rec != nil {
			e, err := encodeSeen(rec)
			if err != nil {
				encErr = errors.Join(encErr, err)
				continue
			}
			seen = append(seen, e)
		}
	}
	clear(r.touched)
	batch := make([]Encoded, 0, len(r.dirty))
	for id := range r.dirty {
		e, err := encode(r.hosts[id])
		if err != nil {
			encErr = errors.Join(encErr, err)
			continue
		}
		batch = append(batch, e)
	}
	clear(r.dirty)
	gone := make([][]byte, 0, len(r.deleted))
	for id := range r.deleted {
		gone = append(gone, []byte(id))
	}
	clear(r.deleted)
	r.mu.Unlock()

	if err := r.db.Save(batch, seen, gone); err != nil {
		r.mu.Lock()
		for _, e := range batch {
			if _, ok := r.hosts[string(e.Key)]; ok {
				r.dirty[string(e.Key)] = struct{}{}
			}
		}
		for _, e := range seen {
			if _, ok := r.hosts[string(e.Key)]; ok {
				r.touched[string(e.Key)] = struct{}{}
			}
		}
		for _, id := range gone {
			if _, back := r.hosts[string(id)]; !back {
				r.deleted[string(id)] = struct{}{}
			}
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
	oldRaw, err := r.db.SwapMeta("task_schedule", raw)
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
		EnrolledAt:         rec.EnrolledAt,
		EnrolledFrom:       rec.EnrolledFrom,
		Conflicts:          rec.Conflicts,
		LastConflict:       rec.LastConflict,
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
	r.signals(rec, &h, now)
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

// Follow applies, until ctx ends, the changes other console replicas make
// to a shared backend (Redis); fail receives errors reading them. With a
// backend of one console (bbolt) it returns at once.
func (r *Registry) Follow(ctx context.Context, fail func(error)) {
	rd, ok := r.db.(*Redis)
	if !ok {
		return
	}
	for {
		rd.follow(ctx, r.applyRemote, r.applySeen, fail)
		// The subscription ended (Redis restarted or unreachable):
		// subscribe again, which reloads everything.
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// applyRemote takes another replica's version of a host (nil: removed).
// A local version with newer, unsaved changes wins until it is saved.
func (r *Registry) applyRemote(id string, rec *Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.hosts[id]
	if old != nil {
		if _, mine := r.dirty[id]; mine && rec != nil && old.LastSeen.After(rec.LastSeen) {
			return
		}
		delete(r.creds, old.CredentialSHA256)
	}
	if rec == nil {
		delete(r.hosts, id)
		delete(r.dirty, id)
		delete(r.touched, id)
		delete(r.offline, id)
		return
	}
	r.hosts[id] = rec
	delete(r.dirty, id)
	delete(r.touched, id)
	if rec.CredentialSHA256 != "" {
		r.creds[rec.CredentialSHA256] = id
	}
}

// Leads reports whether this console is the one that evaluates alerts:
// always with bbolt; with Redis, the replica holding the leader lock,
// taken or extended here for ttl.
func (r *Registry) Leads(ttl time.Duration) bool {
	if rd, ok := r.db.(*Redis); ok {
		return rd.lead(ttl)
	}
	return true
}

// applySeen takes another replica's Seen part of a host.
func (r *Registry) applySeen(s *Seen) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rec := r.hosts[s.HostID]; rec != nil {
		s.merge(rec)
	}
}
