package api

import (
	"sort"
	"unicode/utf8"
)

// Clamp trims a heartbeat to the protocol's limits in place, so that an
// agent never loses a whole heartbeat (refused with 400) to one long
// summary, fact or error string: strings are cut at a UTF-8 boundary,
// lists and maps keep their first entries (maps: in key order), and
// only the newest MaxTaskResults task results are kept. Identity fields
// (host_id, hostname, IPs' syntax) are not touched: those must be right.
func (h *Heartbeat) Clamp() {
	h.AgentVersion = clip(h.AgentVersion, MaxStringLen)
	h.ModuleVersion = clip(h.ModuleVersion, MaxStringLen)
	h.ABIVersion = clip(h.ABIVersion, MaxStringLen)
	h.Transport = clip(h.Transport, MaxStringLen)
	h.Kernel = clip(h.Kernel, MaxStringLen)
	h.LastError = clip(h.LastError, MaxErrorLen)
	if len(h.IPs) > MaxIPs {
		h.IPs = h.IPs[:MaxIPs]
	}
	h.Counters.Drops = clipMap(h.Counters.Drops, MaxDropReasons, MaxTaskKindLength, func(v uint64) uint64 { return v })
	if n := len(h.TaskResults); n > MaxTaskResults {
		h.TaskResults = h.TaskResults[n-MaxTaskResults:]
	}
	for i := range h.TaskResults {
		r := &h.TaskResults[i]
		r.ID = clip(r.ID, MaxIDLen)
		r.Error = clip(r.Error, MaxErrorLen)
		r.Summary = clip(r.Summary, MaxSummaryLen)
		r.Facts = clipMap(r.Facts, MaxFacts, MaxFactLen, func(v string) string { return clip(v, MaxFactLen) })
	}
}

// clip cuts s to at most max bytes without splitting a UTF-8 sequence.
func clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// clipMap keeps the first max keys in order, cuts keys to keyMax bytes
// (dropping any that then collide or are empty) and values with value.
func clipMap[V any](m map[string]V, max, keyMax int, value func(V) V) map[string]V {
	over := len(m) > max
	for k := range m {
		if len(k) > keyMax || k == "" {
			over = true
			break
		}
	}
	if !over {
		for k, v := range m {
			m[k] = value(v)
		}
		return m
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make(map[string]V, max)
	for _, k := range keys {
		if len(out) == max {
			break
		}
		ck := clip(k, keyMax)
		if _, dup := out[ck]; dup || ck == "" {
			continue
		}
		out[ck] = value(m[k])
	}
	return out
}
