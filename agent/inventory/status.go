// SPDX-License-Identifier: GPL-2.0

package inventory

import (
	"strconv"
	"strings"

	"smith/agent/metrics"
	"smith/agent/source"
)

// Status is what the module_status and agent_status tasks report.
type Status struct {
	Module   func() source.Module
	Counters *metrics.Counters
	Version  string // the agent's
	Format   string // agent.format
	Sinks    []string
}

// Facts returns the module's and the agent's status as name/value pairs
// (Tasks.Status).
func (s Status) Facts() (module, agent [][2]string) {
	m := s.Module()
	r := s.Counters.Ring()
	module = [][2]string{{"loaded", strconv.FormatBool(m.Version != "")}, {"version", m.Version}, {"abi", m.ABI},
		{"transport", m.Transport}, {"written", strconv.FormatUint(r.Written, 10)},
		{"dropped_full", strconv.FormatUint(r.DroppedFull, 10)}, {"hook_missed", strconv.FormatUint(r.HookMissed, 10)}}
	agent = [][2]string{{"version", s.Version}, {"format", s.Format}, {"sinks", strings.Join(s.Sinks, ",")},
		{"events_read", strconv.FormatUint(s.Counters.Read.Load(), 10)}, {"events_sent", strconv.FormatUint(s.Counters.Sent.Load(), 10)},
		{"spool_events", strconv.FormatUint(s.Counters.SpoolEvents.Load(), 10)}}
	return module, agent
}
