// SPDX-License-Identifier: GPL-2.0

package encode

import (
	"bytes"
	"strconv"

	"smith/agent/decode"
)

// Ancestor is one process of an event's ancestry, as the agent's process
// table knows it: Ancestors[0] is the parent, [1] the grandparent, ...
type Ancestor struct {
	Pid uint32
	// StartNs is the time (CLOCK_REALTIME, ns) of the exec that gave the
	// process its executable, or its start from /proc when the agent
	// learned it there (docs/EVENTS.md).
	StartNs uint64
	Exe     string
	// Args is the NUL-separated argv (never modified once in the table);
	// only the parent's is written.
	Args          []byte
	ArgsTruncated bool
}

// Executable hash states of Meta.ExeHashStatus ("" when ExeHash is set).
const (
	HashPending  = "pending"   // not computed yet; a later event of the same file carries it
	HashTooLarge = "too_large" // larger than enrich.exe_hash_max_size
	HashChanged  = "changed"   // the file changed while it was read
	HashError    = "error"     // unreadable
	HashSkipped  = "skipped"   // the hash queue was full
)

// appendSmithContext writes the parent, the ancestry, the executable hash
// and the container details in the smith format.
func appendSmithContext(dst []byte, m *Meta) []byte {
	dst = appendNonEmpty(dst, "container_runtime", m.ContainerRuntime)
	dst = appendNonEmpty(dst, "pod_namespace", m.PodNamespace)
	dst = appendNonEmpty(dst, "pod_uid", m.PodUID)
	if m.ExeHash != "" {
		dst = appendStrField(dst, "exe_hash", m.ExeHash)
	} else if m.ExeHashStatus != "" {
		dst = appendStrField(dst, "exe_hash_status", m.ExeHashStatus)
	}
	return m.appendAncestry(dst, fragSmith)
}

// The JSON fragments of an ancestry, by where they go.
const (
	fragSmith     = iota // smith: parent_exe ... ancestors
	fragECSParent        // ecs: process.parent's members after its pid
	fragECSSmith         // ecs: smith.parent_args_truncated and ancestors
	numFrags
)

// ancestryCache keeps the JSON of the last ancestry encoded in its slot,
// by fragment, so that the events of one process in a row (its connects,
// a shell's commands) copy it instead of writing the parent's argv twice
// and every ancestor again.  The key is a copy of that ancestry, compared
// in full with each event's: any difference encodes (and keeps) the new
// one, so the output is always what encoding it would give.
type ancestryCache struct {
	key  []Ancestor
	args []byte // the bytes of key[i].Args
	// frag[k] is fragment k after a '{' (so its first key took no
	// comma), when have[k].
	frag [numFrags][]byte
	have [numFrags]bool
}

// appendAncestry appends fragment k of m's ancestry (nothing when there is
// none), from m's cache when the ancestry is the last one encoded.
func (m *Meta) appendAncestry(dst []byte, k int) []byte {
	if len(m.Ancestors) == 0 {
		return dst
	}
	c := &m.caches().anc[m.Ancestors[0].Pid%cacheSlots]
	if !c.holds(m.Ancestors) {
		c.set(m.Ancestors)
	}
	if !c.have[k] {
		c.frag[k], c.have[k] = encodeFragment(append(c.frag[k][:0], '{'), c.key, k), true
	}
	if last := dst[len(dst)-1]; last != '{' && last != '[' {
		dst = append(dst, ',')
	}
	return append(dst, c.frag[k][1:]...)
}

// metaCache is what a Meta keeps of the events encoded with it: the last
// ancestry and process seen in each slot (by the parent's pid and the
// process id), so that a few processes whose events interleave each
// keep theirs.
type metaCache struct {
	anc  [cacheSlots]ancestryCache
	proc [cacheSlots]procCache
}

const cacheSlots = 8

func (m *Meta) caches() *metaCache {
	if m.cache == nil {
		m.cache = &metaCache{}
	}
	return m.cache
}

// procCache keeps the smith members of the last process encoded in its
// slot (uid to cgroup_id): the events of one process in a row copy them.
// Keyed, like ancestryCache, by everything they are made of.
type procCache struct {
	key      procKey
	username string
	comm     []byte
	json     []byte // after a '{'; valid when have
	have     bool
}

type procKey struct {
	result                                                   int64
	cgroup                                                   uint64
	uid, euid, gid, pid, tgid, ppid, pgid, sid, pidNS, mntNS uint32
}

// appendSmithProcess appends ev's members from uid to cgroup_id, from m's
// cache when they are those of the last event encoded with m.
func (m *Meta) appendSmithProcess(dst []byte, ev *decode.Event) []byte {
	c := &m.caches().proc[ev.Tgid%cacheSlots]
	k := procKey{result: ev.Result, cgroup: ev.CgroupID, uid: ev.UID, euid: ev.EUID, gid: ev.GID, pid: ev.Pid, tgid: ev.Tgid,
		ppid: ev.Ppid, pgid: ev.Pgid, sid: ev.Sid, pidNS: ev.PidNS, mntNS: ev.MntNS}
	if !c.have || k != c.key || m.Username != c.username || !bytes.Equal(ev.Comm, c.comm) {
		c.key, c.username, c.comm = k, m.Username, append(c.comm[:0], ev.Comm...)
		c.json, c.have = appendSmithProcessFields(append(c.json[:0], '{'), ev, m.Username), true
	}
	if last := dst[len(dst)-1]; last != '{' && last != '[' {
		dst = append(dst, ',')
	}
	return append(dst, c.json[1:]...)
}

// holds reports whether the cache's key is anc.
func (c *ancestryCache) holds(anc []Ancestor) bool {
	if len(anc) != len(c.key) {
		return false
	}
	for i := range anc {
		a, b := &anc[i], &c.key[i]
		if a.Pid != b.Pid || a.StartNs != b.StartNs || a.ArgsTruncated != b.ArgsTruncated || a.Exe != b.Exe ||
			!bytes.Equal(a.Args, b.Args) {
			return false
		}
	}
	return true
}

// set makes anc the key (its own copy of the argument bytes) and drops
// the fragments of the previous one.
func (c *ancestryCache) set(anc []Ancestor) {
	c.key, c.args = append(c.key[:0], anc...), c.args[:0]
	for i := range c.key {
		c.args = append(c.args, anc[i].Args...)
	}
	off := 0
	for i := range c.key {
		n := len(c.key[i].Args)
		c.key[i].Args = c.args[off : off+n : off+n]
		off += n
	}
	c.have = [numFrags]bool{}
}

// encodeFragment appends fragment k of the ancestry chain (not empty).
func encodeFragment(dst []byte, chain []Ancestor, k int) []byte {
	p := &chain[0]
	switch k {
	case fragSmith:
		dst = appendParent(dst, p, "parent_exe", "parent_args", "", "parent_argv")
		if p.ArgsTruncated {
			dst = appendBoolField(dst, "parent_args_truncated", true)
		}
		dst = appendUintField(dst, "parent_start_time_ns", p.StartNs)
		return appendAncestors(appendKey(dst, "ancestors"), chain, "exe", "start_time_ns")
	case fragECSParent:
		dst = appendParent(dst, p, "executable", "args", "args_count", "command_line")
		dst = appendKey(dst, "start")
		return appendTime(dst, int64(p.StartNs))
	default:
		if p.ArgsTruncated {
			dst = appendBoolField(dst, "parent_args_truncated", true)
		}
		return appendAncestors(appendKey(dst, "ancestors"), chain, "executable", "start")
	}
}

// appendAncestors writes the chain as an array of {pid, exe, start}.
func appendAncestors(dst []byte, chain []Ancestor, exeKey, startKey string) []byte {
	dst = append(dst, '[')
	for i := range chain {
		a := &chain[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"pid":`...)
		dst = strconv.AppendUint(dst, uint64(a.Pid), 10)
		dst = appendStrField(dst, exeKey, a.Exe)
		if startKey == "start" {
			dst = appendKey(dst, startKey)
			dst = appendTime(dst, int64(a.StartNs))
		} else {
			dst = appendUintField(dst, startKey, a.StartNs)
		}
		dst = append(dst, '}')
	}
	return append(dst, ']')
}

// appendECSParent writes the members of process.parent after its pid.
func appendECSParent(dst []byte, m *Meta) []byte {
	return m.appendAncestry(dst, fragECSParent)
}

// appendParent writes the parent's executable, arguments (and their
// count when countKey is set) and command line under the given keys.
func appendParent(dst []byte, p *Ancestor, exeKey, argsKey, countKey, cmdKey string) []byte {
	dst = appendStrField(dst, exeKey, p.Exe)
	dst = appendArgs(appendKey(dst, argsKey), p.Args)
	if countKey != "" {
		dst = appendUintField(dst, countKey, uint64(countArgs(p.Args)))
	}
	return appendCommandLine(appendKey(dst, cmdKey), p.Args)
}

// appendECSHash writes process.hash inside process.
func appendECSHash(dst []byte, m *Meta) []byte {
	if m.ExeHash == "" {
		return dst
	}
	dst = append(dst, `,"hash":{"sha256":`...)
	dst = appendString(dst, m.ExeHash)
	return append(dst, '}')
}

// appendECSSmithContext writes, under smith, what ECS has no field for.
func appendECSSmithContext(dst []byte, m *Meta) []byte {
	if m.ExeHash == "" && m.ExeHashStatus != "" {
		dst = appendStrField(dst, "exe_hash_status", m.ExeHashStatus)
	}
	return m.appendAncestry(dst, fragECSSmith)
}

// appendECSOrchestrator writes orchestrator for a pod.
func appendECSOrchestrator(dst []byte, m *Meta) []byte {
	if m.PodName == "" && m.PodUID == "" {
		return dst
	}
	dst = append(dst, `,"orchestrator":{"type":"kubernetes"`...)
	dst = appendNonEmpty(dst, "namespace", m.PodNamespace)
	dst = append(dst, `,"resource":{"type":"pod"`...)
	dst = appendNonEmpty(dst, "name", m.PodName)
	dst = appendNonEmpty(dst, "id", m.PodUID)
	return append(dst, "}}"...)
}

// appendNonEmpty appends key and v unless v is empty.
func appendNonEmpty(dst []byte, key, v string) []byte {
	if v == "" {
		return dst
	}
	return appendStrField(dst, key, v)
}
