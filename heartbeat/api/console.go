package api

import "time"

// Host is the console's view of one host, as GET HostsPath returns it (the
// web console and the CLI read these with the console credential).
type Host struct {
	HostID   string   `json:"host_id"`
	Hostname string   `json:"hostname"`
	IPs      []string `json:"ips"`

	// Online is false once the host has been silent longer than the
	// console's offline timeout; offline hosts stay listed.
	Online    bool      `json:"online"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// RemoteAddr is the address the last heartbeat came from.
	RemoteAddr string `json:"remote_addr"`
	// EnrolledAt and EnrolledFrom: when and from which address the host
	// received its credential (zero for a host registered before
	// enrolment existed, which enrols at its agent's next start).
	EnrolledAt   time.Time `json:"enrolled_at"`
	EnrolledFrom string    `json:"enrolled_from,omitempty"`
	// Conflicts counts refused claims on this host's identity: an
	// enrolment for its host id, a heartbeat for it with another host's
	// credential, or a second agent heartbeating with its credential
	// (a cloned machine). LastConflict is the latest.
	Conflicts    int       `json:"conflicts"`
	LastConflict *Conflict `json:"last_conflict,omitempty"`

	AgentVersion       string `json:"agent_version"`
	ModuleVersion      string `json:"module_version"`
	ABIVersion         string `json:"abi_version"`
	Transport          string `json:"transport"`
	Kernel             string `json:"kernel"`
	UptimeSeconds      int64  `json:"uptime_s"`
	AgentUptimeSeconds int64  `json:"agent_uptime_s"`
	IntervalSeconds    int    `json:"interval_s"`

	// EventRate is events read per second between the last two
	// heartbeats (0 until there are two).
	EventRate  float64  `json:"event_rate"`
	Counters   Counters `json:"counters"`
	DropsTotal uint64   `json:"drops_total"`
	LastError  string   `json:"last_error,omitempty"`

	// Fleet signals. DropsRecent are the events dropped, by reason, in
	// the last DropWindowSeconds (not totals since the agent started),
	// DropsRecentTotal their sum. SpoolFillPct is the spool's fill in
	// percent (-1 when the agent does not report its bound).
	// ModuleLoaded tells whether the smith module is loaded; VersionDrift
	// whether the agent or module version differs from the fleet's most
	// common one. Alerts are the alerts firing on this host.
	DropsRecent       map[string]uint64 `json:"drops_recent"`
	DropsRecentTotal  uint64            `json:"drops_recent_total"`
	DropWindowSeconds int               `json:"drop_window_s"`
	SpoolFillPct      float64           `json:"spool_fill_pct"`
	ModuleLoaded      bool              `json:"module_loaded"`
	VersionDrift      bool              `json:"version_drift"`
	Alerts            []Alert           `json:"alerts"`

	// Tasks holds the latest result of each task kind, in TaskKinds
	// order; only the single-host view fills it.
	Tasks []TaskResult `json:"tasks,omitempty"`
}

// Conflict is one refused claim on a host's identity.
type Conflict struct {
	At       time.Time `json:"at"`
	Remote   string    `json:"remote"`
	Hostname string    `json:"hostname,omitempty"` // the name the claimant gave
	Reason   string    `json:"reason"`
}

// Alert kinds.
const (
	AlertDrops          = "drops"           // the host dropped events within the drop window
	AlertModuleUnloaded = "module_unloaded" // the smith module was loaded on the host and is not any more
	AlertOffline        = "offline"         // the host is silent past the offline timeout
)

// Alert is one alert firing on a host.
type Alert struct {
	Kind     string    `json:"kind"`
	HostID   string    `json:"host_id"`
	Hostname string    `json:"hostname"`
	Since    time.Time `json:"since"`
	Detail   string    `json:"detail"`
}

// AlertEvent is an alert starting ("firing") or ending ("resolved"): what
// the console logs and posts to the alert webhook.
type AlertEvent struct {
	State string    `json:"state"`
	At    time.Time `json:"at"`
	Alert
}

// Counts are fleet totals.
type Counts struct {
	Total   int `json:"total"`
	Online  int `json:"online"`
	Offline int `json:"offline"`
}

// HostList answers GET HostsPath: fleet-wide Counts and the hosts whose
// name or one of whose IPs starts with the prefix, sorted by name.
type HostList struct {
	Counts Counts `json:"counts"`
	Hosts  []Host `json:"hosts"`
	// Alerts are every alert firing in the fleet (whatever the prefix),
	// oldest first.
	Alerts []Alert `json:"alerts"`
	// AgentVersion and ModuleVersion are the fleet's most common ones,
	// against which VersionDrift is judged.
	AgentVersion  string `json:"agent_version"`
	ModuleVersion string `json:"module_version"`
}

// Login is the body of POST LoginPath.
type Login struct {
	Password string `json:"password"`
}

// Add counts one host.
func (c *Counts) Add(online bool) {
	c.Total++
	if online {
		c.Online++
	} else {
		c.Offline++
	}
}
