package api

import (
	"fmt"
	"net/netip"
)

// Validate checks a heartbeat against the protocol's rules and limits. The
// console refuses one that fails (400, code "invalid_heartbeat" or
// "unsupported_version"); an agent may call it before sending.
func (h *Heartbeat) Validate() error {
	major, _, err := ParseVersion(h.Version)
	if err != nil {
		return &VersionError{Got: h.Version}
	}
	if major != VersionMajor {
		return &VersionError{Got: h.Version}
	}
	if err := checkIdentity(h.HostID, h.Hostname); err != nil {
		return err
	}
	if err := checkLen("run_id", h.RunID, MaxIDLen); err != nil {
		return err
	}
	if len(h.IPs) > MaxIPs {
		return fmt.Errorf("ips: %d addresses, at most %d", len(h.IPs), MaxIPs)
	}
	for _, ip := range h.IPs {
		if _, err := netip.ParseAddr(ip); err != nil {
			return fmt.Errorf("ips: %q is not an IP address", ip)
		}
	}
	for name, v := range map[string]string{
		"agent_version":  h.AgentVersion,
		"module_version": h.ModuleVersion,
		"abi_version":    h.ABIVersion,
		"transport":      h.Transport,
		"kernel":         h.Kernel,
	} {
		if err := checkLen(name, v, MaxStringLen); err != nil {
			return err
		}
	}
	if err := checkLen("last_error", h.LastError, MaxErrorLen); err != nil {
		return err
	}
	if h.UptimeSeconds < 0 || h.AgentUptimeSeconds < 0 || h.IntervalSeconds < 0 {
		return fmt.Errorf("uptime_s, agent_uptime_s and interval_s must not be negative")
	}
	if len(h.Counters.Drops) > MaxDropReasons {
		return fmt.Errorf("counters.drops: %d reasons, at most %d", len(h.Counters.Drops), MaxDropReasons)
	}
	for reason := range h.Counters.Drops {
		if reason == "" {
			return fmt.Errorf("counters.drops: empty reason")
		}
		if err := checkLen("counters.drops reason", reason, MaxTaskKindLength); err != nil {
			return err
		}
	}
	if f := h.Counters.RingFill; f < 0 || f > 1 || f != f {
		return fmt.Errorf("counters.ring_fill %v is outside 0..1", f)
	}
	if len(h.TaskResults) > MaxTaskResults {
		return fmt.Errorf("task_results: %d results, at most %d", len(h.TaskResults), MaxTaskResults)
	}
	for i := range h.TaskResults {
		if err := h.TaskResults[i].validate(); err != nil {
			return fmt.Errorf("task_results[%d]: %w", i, err)
		}
	}
	return nil
}

func (r *TaskResult) validate() error {
	if r.Kind == "" {
		return fmt.Errorf("kind is empty")
	}
	if err := checkLen("kind", string(r.Kind), MaxTaskKindLength); err != nil {
		return err
	}
	if err := checkLen("id", r.ID, MaxIDLen); err != nil {
		return err
	}
	if err := checkLen("error", r.Error, MaxErrorLen); err != nil {
		return err
	}
	if err := checkLen("summary", r.Summary, MaxSummaryLen); err != nil {
		return err
	}
	if r.Items < 0 {
		return fmt.Errorf("items %d is negative", r.Items)
	}
	if len(r.Facts) > MaxFacts {
		return fmt.Errorf("facts: %d entries, at most %d", len(r.Facts), MaxFacts)
	}
	for k, v := range r.Facts {
		if err := checkLen("fact key", k, MaxFactLen); err != nil {
			return err
		}
		if err := checkLen("fact "+k, v, MaxFactLen); err != nil {
			return err
		}
	}
	return nil
}

func checkIdentity(hostID, hostname string) error {
	if hostID == "" {
		return fmt.Errorf("host_id is empty")
	}
	if hostname == "" {
		return fmt.Errorf("hostname is empty")
	}
	if err := checkLen("host_id", hostID, MaxIDLen); err != nil {
		return err
	}
	return checkLen("hostname", hostname, MaxNameLen)
}

func checkLen(name, v string, max int) error {
	if len(v) > max {
		return fmt.Errorf("%s is %d bytes, at most %d", name, len(v), max)
	}
	return nil
}

// VersionError reports a heartbeat whose major version the console does
// not speak.
type VersionError struct{ Got string }

func (e *VersionError) Error() string {
	return fmt.Sprintf("protocol version %q not supported: this console speaks %d.x", e.Got, VersionMajor)
}
