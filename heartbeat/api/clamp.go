package api

import (
	"sort"
	"strings"
	"unicode/utf8"
)

// Clamp trims a heartbeat to the protocol's limits in place, so that an
// agent never loses a whole heartbeat (refused with 400) to one long
// summary, fact or error string: strings are cut at a UTF-8 boundary,
// lists and maps keep their first entries (maps: in key order), and
// only the newest MaxTaskResults task results are kept. Identity fields
// (host_id, hostname, IPs' syntax) are not touched: those must be right.
func (h *Heartbeat) Clamp() {
	h.AgentVersion = Clip(h.AgentVersion, MaxStringLen)
	h.ModuleVersion = Clip(h.ModuleVersion, MaxStringLen)
	h.ABIVersion = Clip(h.ABIVersion, MaxStringLen)
	h.Transport = Clip(h.Transport, MaxStringLen)
	h.Kernel = Clip(h.Kernel, MaxStringLen)
	h.LastError = Clip(h.LastError, MaxErrorLen)
	if len(h.IPs) > MaxIPs {
		h.IPs = h.IPs[:MaxIPs]
	}
	h.Counters.Drops = clipMap(h.Counters.Drops, MaxDropReasons, MaxTaskKindLength, func(v uint64) uint64 { return v })
	if n := len(h.TaskResults); n > MaxTaskResults {
		h.TaskResults = h.TaskResults[n-MaxTaskResults:]
	}
	for i := range h.TaskResults {
		r := &h.TaskResults[i]
		r.ID = Clip(r.ID, MaxIDLen)
		r.Error = Clip(r.Error, MaxErrorLen)
		r.Summary = Clip(r.Summary, MaxSummaryLen)
		r.Facts = clipMap(r.Facts, MaxFacts, MaxFactLen, func(v string) string { return Clip(v, MaxFactLen) })
	}
}

// Clip returns s as valid UTF-8 of at most max bytes: invalid bytes are
// removed (JSON would turn each into a 3-byte U+FFFD, pushing a string
// that fitted over its limit) and the cut never splits a character.
func Clip(s string, max int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "")
	}
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
		if len(k) > keyMax || k == "" || !utf8.ValidString(k) {
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
		ck := Clip(k, keyMax)
		if _, dup := out[ck]; dup || ck == "" {
			continue
		}
		out[ck] = value(m[k])
	}
	return out
}
