// Package api defines the heartbeat protocol between smith-agent and
// smith-console: the versioned JSON an agent posts, the answer it gets
// (the tasks due for its host), the short task results it reports back,
// and the read-only host views the web console and the CLI fetch.
// docs/HEARTBEAT.md describes the same protocol for people.
//
// Compatibility rule: a minor version only adds optional fields, so both
// sides ignore fields they do not know; a different major version is
// refused by the console with 400 and error code "unsupported_version".
package api

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Protocol version spoken by this package, "MAJOR.MINOR".
const (
	VersionMajor = 1
	VersionMinor = 1
)

// Version is the value agents put in Heartbeat.Version.
var Version = fmt.Sprintf("%d.%d", VersionMajor, VersionMinor)

// HTTP surface of the console.
const (
	// HeartbeatPath takes a POSTed Heartbeat, answers a Response; the
	// bearer is the host's own credential.
	HeartbeatPath = "/api/v1/heartbeat"
	// EnrolPath takes a POSTed EnrolRequest with the fleet enrolment
	// secret as bearer and answers an Enrolment: the host's credential.
	EnrolPath = "/api/v1/enrol"
	// HostsPath lists hosts (GET, optional ?prefix=); HostsPath + "/" + key
	// returns one host by id, name or IP.
	HostsPath = "/api/v1/hosts"
	// CountPath returns Counts (GET).
	CountPath = "/api/v1/count"
	// LoginPath takes a POSTed Login and sets the session cookie;
	// LogoutPath ends the session.
	LoginPath  = "/api/v1/login"
	LogoutPath = "/api/v1/logout"
	// MetricsPath serves the console's own Prometheus series (console
	// credential).
	MetricsPath = "/metrics"
	// HealthPath answers 200 "ok" without credentials, for load balancers.
	HealthPath = "/healthz"
)

// Limits the console enforces on a heartbeat. A heartbeat that breaks one
// is refused with 400 (413 for the body size) and changes nothing.
const (
	MaxBodyBytes      = 256 << 10 // whole request body
	MaxIDLen          = 128       // host_id
	MaxNameLen        = 255       // hostname (a DNS name fits)
	MaxIPs            = 64        // addresses per host
	MaxStringLen      = 256       // versions, kernel, transport
	MaxErrorLen       = 1024      // last_error and a task result's error
	MaxDropReasons    = 32        // keys of Counters.Drops
	MaxTaskResults    = 32        // results per heartbeat
	MaxSummaryLen     = 1024      // TaskResult.Summary
	MaxFacts          = 32        // TaskResult.Facts entries
	MaxFactLen        = 256       // a fact's key or value
	MaxTaskKindLength = 64
)

// Heartbeat is what an agent POSTs to HeartbeatPath every interval, with
// the header "Authorization: Bearer <fleet token>".
type Heartbeat struct {
	// Version is the protocol version, "MAJOR.MINOR" (Version).
	Version string `json:"version"`

	// Identity. HostID is stable across reboots and renames (the agent
	// uses /etc/machine-id); the console keys its registry on it.
	HostID   string   `json:"host_id"`
	Hostname string   `json:"hostname"`
	IPs      []string `json:"ips,omitempty"`

	// SentAt is the agent's clock when it sent the heartbeat; Seq counts
	// heartbeats since the agent started (1, 2, ...).
	SentAt time.Time `json:"sent_at"`
	Seq    uint64    `json:"seq"`
	// RunID is random per agent start (since 1.1): a run that was
	// replaced by another and heartbeats again is a second agent with
	// the same identity, which the console refuses and shows.
	RunID string `json:"run_id,omitempty"`

	// Versions: the agent's build, the loaded module's version string
	// (empty when no module is loaded) and the ring ABI "MAJOR.MINOR".
	AgentVersion  string `json:"agent_version"`
	ModuleVersion string `json:"module_version,omitempty"`
	ABIVersion    string `json:"abi_version,omitempty"`
	// Transport is how records reach the agent: "shm", "netlink", or ""
	// when the agent runs without the module.
	Transport string `json:"transport,omitempty"`

	// Kernel is the release string (uname -r). UptimeSeconds is the
	// host's uptime, AgentUptimeSeconds the agent process's.
	Kernel             string `json:"kernel"`
	UptimeSeconds      int64  `json:"uptime_s"`
	AgentUptimeSeconds int64  `json:"agent_uptime_s"`

	// IntervalSeconds is the agent's current heartbeat interval.
	IntervalSeconds int `json:"interval_s"`

	Counters Counters `json:"counters"`

	// LastError is the agent's most recent error, empty when healthy.
	LastError string `json:"last_error,omitempty"`

	// TaskResults summarise the tasks the agent finished since its
	// previous heartbeat (the full results went out as events).
	TaskResults []TaskResult `json:"task_results,omitempty"`
}

// Counters are totals since the agent started; they reset when it
// restarts (AgentUptimeSeconds goes down). The console derives the event
// rate from two consecutive heartbeats.
type Counters struct {
	EventsRead uint64 `json:"events_read"` // records decoded from the ring
	EventsSent uint64 `json:"events_sent"` // events acknowledged by a sink

	// Drops counts lost events by reason. Known reasons (others are
	// shown as they come): ring_full, ring_too_large, ring_fault,
	// hook_missed, queue_full, spool_full, encode_error.
	Drops map[string]uint64 `json:"drops,omitempty"`

	SpoolBytes  uint64 `json:"spool_bytes"`  // bytes waiting in the disk spool
	SpoolEvents uint64 `json:"spool_events"` // events waiting in the disk spool
	// SpoolMaxBytes is the spool's bound (since 1.1; 0: no spool or
	// unknown), so the console shows the spool's fill in percent.
	SpoolMaxBytes uint64 `json:"spool_max_bytes,omitempty"`

	// RingFill is the ring's fill level at send time, 0..1.
	RingFill float64 `json:"ring_fill"`
}

// EnrolRequest is what an agent without a credential POSTs to EnrolPath.
type EnrolRequest struct {
	Version  string `json:"version"`
	HostID   string `json:"host_id"`
	Hostname string `json:"hostname"`
}

// Enrolment answers an accepted EnrolRequest: the host's own credential,
// the bearer of its heartbeats from now on. The console keeps only its
// SHA-256; the agent stores it (mode 0600) and never sends it elsewhere.
type Enrolment struct {
	HostID     string `json:"host_id"`
	Credential string `json:"credential"`
}

// Validate checks an enrolment request's identity fields.
func (e *EnrolRequest) Validate() error {
	if major, _, err := ParseVersion(e.Version); err != nil || major != VersionMajor {
		return &VersionError{Got: e.Version}
	}
	return checkIdentity(e.HostID, e.Hostname)
}

// Response answers an accepted heartbeat (HTTP 200).
type Response struct {
	Version    string    `json:"version"`
	ServerTime time.Time `json:"server_time"`
	// IntervalSeconds is the interval the console expects; an agent
	// adopts it so the console's offline timeout matches.
	IntervalSeconds int `json:"interval_s"`
	// Tasks are due now on this host; empty most of the time.
	Tasks []Task `json:"tasks"`
}

// TaskKind names what a task collects.
type TaskKind string

// The task kinds: the seed's asset collection plus module and agent
// status. An agent answers a kind it does not know with a TaskResult
// whose Error says so.
const (
	TaskListeningSockets TaskKind = "listening_sockets" // /proc/net/{tcp,tcp6,udp,udp6} in LISTEN/bound state, with owning process
	TaskUsers            TaskKind = "users"             // /etc/passwd (and shadow's account state when readable)
	TaskCrontabs         TaskKind = "crontabs"          // /etc/crontab, /etc/cron.d/*, /var/spool/cron/**
	TaskPackages         TaskKind = "packages"          // installed packages (dpkg or rpm query: the one allowed external command)
	TaskModuleStatus     TaskKind = "module_status"     // smith.ko loaded?, version, ABI, ring stats, hooks attached
	TaskAgentStatus      TaskKind = "agent_status"      // agent config digest, sinks, queue and spool state
	TaskFileIntegrity    TaskKind = "file_integrity"    // packages' files against dpkg's md5sums or rpm -Va (the seed's FileSystemIntegrityCheck)
)

// TaskKinds lists every kind, in display order.
var TaskKinds = []TaskKind{
	TaskListeningSockets, TaskUsers, TaskCrontabs, TaskPackages,
	TaskModuleStatus, TaskAgentStatus, TaskFileIntegrity,
}

// Known reports whether k is one of TaskKinds.
func (k TaskKind) Known() bool {
	for _, known := range TaskKinds {
		if k == known {
			return true
		}
	}
	return false
}

// Task asks the agent to run one collection now. The agent ships the full
// result as events with data_type "detection_module" (one event per item,
// each carrying task_id and task_kind) and reports a TaskResult in its
// next heartbeat.
type Task struct {
	ID   string   `json:"id"`
	Kind TaskKind `json:"kind"`
}

// TaskResult is the short summary of one finished task, carried in the
// next heartbeat's TaskResults. The console keeps the latest per kind.
type TaskResult struct {
	ID         string    `json:"id"`
	Kind       TaskKind  `json:"kind"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	// Error is empty when the task succeeded.
	Error string `json:"error,omitempty"`
	// Items is how many events the task shipped (sockets, users, ...).
	Items int `json:"items"`
	// Summary is one human line, for example "tcp 0.0.0.0:22 sshd,
	// tcp 127.0.0.1:5432 postgres".
	Summary string `json:"summary,omitempty"`
	// Facts are a few key/value pairs worth a glance, for example
	// module_status: {"loaded": "true", "abi": "1.0"}.
	Facts map[string]string `json:"facts,omitempty"`
}

// ParseVersion splits "MAJOR.MINOR" ("1" alone means "1.0").
func ParseVersion(v string) (major, minor int, err error) {
	majorText, minorText, hasMinor := strings.Cut(v, ".")
	major, err = strconv.Atoi(majorText)
	if err != nil || major < 0 {
		return 0, 0, fmt.Errorf("protocol version %q: want MAJOR.MINOR", v)
	}
	if hasMinor {
		minor, err = strconv.Atoi(minorText)
		if err != nil || minor < 0 {
			return 0, 0, fmt.Errorf("protocol version %q: want MAJOR.MINOR", v)
		}
	}
	return major, minor, nil
}

// Error is the body of every 4xx/5xx answer from the console.
type Error struct {
	// Code is a stable machine-readable name: unauthorized,
	// bad_request, malformed_json, body_too_large,
	// unsupported_version, invalid_heartbeat, not_found, internal.
	Code    string `json:"code"`
	Message string `json:"error"`
}
