// Package soak is the end-to-end accounting of Smith under faults: a load
// generator that knows every exec, connect and module load it performed
// (each tagged), and a reconciler that checks each of them against the
// events read back from Kafka.  A tagged syscall must be in Kafka exactly
// as performed, or be explained by a drop the stream or a counter shows in
// its time window; anything else is an unexplained loss and fails the run.
//
// How a loss is explained.  The agent numbers every event it reads (its
// per-host sequence number, kept across restarts), so in the stream read
// back from Kafka:
//
//   - a "lost N" event (data_type "1") stands where the module's ring
//     dropped N records: the module writes it before the next record it
//     could store;
//   - a sequence number that never arrives is an event the agent numbered
//     and then dropped (its spool full, or a message too large);
//   - a sequence number that arrives twice is a redelivery (at least once
//     after a kill or a broker failure): allowed only when both copies are
//     the same event.
//
// Each tagged syscall that is missing gets a window in that stream: from
// the last delivered event older than its start to the first delivered
// event newer than its end (by the kernel's timestamps, with a slack for
// records of two CPUs landing out of time order).  A drop slot inside the
// window explains it; every slot explains at most as many syscalls as it
// counts (one per missing number, N per lost record), so one drop cannot
// excuse two losses.  When the agent dropped a "lost N" record itself,
// the module's drop counter is above the N that arrived: that difference
// explains missing syscalls only in windows holding a missing number (the
// dropped record could be there), and is reported apart.  Kretprobe
// misses (hook_missed) leave no mark in the stream; they explain a missing
// connect from a global pool and are reported apart too.
package soak

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"smith/agent/decode"
)

// Op kinds the load generator performs.
const (
	OpExec     = "exec"      // execve of a program that exists
	OpExecFail = "exec_fail" // execve of a path that does not exist (ENOENT)
	OpTCP      = "tcp"       // TCP connect
	OpUDP      = "udp"       // UDP connect
	OpFinit    = "finit"     // finit_module of the test module
	OpInit     = "init"      // init_module of the test module (refused by fail=1)
)

// Op is one tagged syscall as the load generator performed it.
type Op struct {
	Kind string `json:"kind"`
	// Tag identifies the op's event: the exec's last argument, the
	// connect's "ip:port" destination, the module's parameters.
	Tag string `json:"tag"`
	// T0 and T1 bracket the call (wall clock, ns).
	T0 int64 `json:"t0"`
	T1 int64 `json:"t1"`
	// Result is the syscall's return: 0 or -errno.
	Result int64 `json:"res"`
	// Pid is the thread group that made the call (for exec: the child).
	Pid uint32 `json:"pid"`
	// Filename is the exec's path or the module's file.
	Filename string `json:"filename,omitempty"`
	// Args is the exec's argv.
	Args []string `json:"args,omitempty"`
	// Port is the connect's destination port.
	Port uint16 `json:"port,omitempty"`
	// Phase is the fault phase the op ran in (for the report).
	Phase string `json:"phase,omitempty"`
}

// Key is what identifies the op's event among all events.
func (o *Op) Key() string {
	switch o.Kind {
	case OpExec, OpExecFail:
		return "exec " + o.Tag
	case OpTCP, OpUDP:
		return "connect " + o.Tag
	default:
		return "module " + o.Tag
	}
}

// Event is the part of a smith-format event the reconciler reads.
type Event struct {
	DataType string `json:"data_type"`
	Seq      uint64 `json:"seq"`
	Stream   string `json:"stream"`
	TimeNs   int64  `json:"time_ns"`
	Pid      uint32 `json:"pid"`
	Tgid     uint32 `json:"tgid"`
	Res      int64  `json:"res"`
	// Restarted: a signal interrupted the call (res -EINTR); the kernel
	// may restart it, and the restarted call is a record of its own.
	Restarted bool     `json:"restarted"`
	Filename  string   `json:"filename"`
	Args      []string `json:"args"`
	Protocol  string   `json:"protocol"`
	DIP       string   `json:"dip"`
	DPort     uint16   `json:"dport"`
	ModPath   string   `json:"mod_path"`
	Params    string   `json:"mod_params"`
	Lost      uint64   `json:"lost"`
}

// Event type ids of the smith format, from the event table.
var (
	typeLost    = decode.DataTypeLost
	typeExec    = decode.EventByType(decode.TypeExecve).DataType
	typeConnect = decode.EventByType(decode.TypeConnect).DataType
	typeInit    = decode.EventByType(decode.TypeInitModule).DataType
	typeFinit   = decode.EventByType(decode.TypeFinitModule).DataType
)

// key is the op key an event answers to, "" when it is not a tagged one.
func (e *Event) key(prefix string) string {
	switch e.DataType {
	case typeExec:
		if n := len(e.Args); n > 0 && strings.HasPrefix(e.Args[n-1], prefix) {
			return "exec " + e.Args[n-1]
		}
		if strings.Contains(e.Filename, prefix) {
			return "exec " + e.Filename[strings.LastIndex(e.Filename, "/")+1:]
		}
	case typeConnect:
		tag := fmt.Sprintf("%s:%d", e.DIP, e.DPort)
		if strings.HasPrefix(e.DIP, "127.") && e.DIP != "127.0.0.1" {
			return "connect " + tag
		}
	case typeInit, typeFinit:
		if strings.Contains(e.Params, prefix) {
			return "module " + e.Params
		}
	}
	return ""
}

// same says whether two events under one sequence number are one event
// delivered twice.  A lost record's time is the agent's clock when it read
// it, so only its count is compared.
func (e *Event) same(o *Event) bool {
	if e.DataType != o.DataType {
		return false
	}
	if e.DataType == typeLost {
		return e.Lost == o.Lost
	}
	return e.TimeNs == o.TimeNs && e.Pid == o.Pid && e.Res == o.Res && e.DIP == o.DIP && e.DPort == o.DPort &&
		e.Filename == o.Filename && e.Params == o.Params && strings.Join(e.Args, "\x00") == strings.Join(o.Args, "\x00")
}

// Counters are the drop counters the run collected.
type Counters struct {
	// Module totals at the end (debugfs stats of the one module load).
	RingDroppedFull     uint64 `json:"ring_dropped_full"`
	RingDroppedTooLarge uint64 `json:"ring_dropped_too_large"`
	RingDroppedFault    uint64 `json:"ring_dropped_fault"`
	HookMissed          uint64 `json:"hook_missed"`
	RingLostRecords     uint64 `json:"ring_lost_records"` // "lost N" records written
	// Agent drops after numbering, summed over the agent's runs.
	AgentSpoolFull  uint64 `json:"agent_spool_full"`
	AgentSpoolError uint64 `json:"agent_spool_error"`
	AgentTooLarge   uint64 `json:"agent_too_large"`
	// Agent drops before numbering (they leave no mark in the stream and
	// so explain nothing: any such drop of a tagged event is a failure).
	AgentDecode uint64 `json:"agent_decode_error"`
	AgentSink   uint64 `json:"agent_sink_error"`
}

// Result is the reconciliation.
type Result struct {
	Ops        int            `json:"ops"`
	OpsByKind  map[string]int `json:"ops_by_kind"`
	Records    int            `json:"records"`    // Kafka records read, duplicates included
	Events     int            `json:"events"`     // distinct sequence numbers
	Duplicates int            `json:"duplicates"` // records - events
	// DuplicatesByFault says which fault made them: the one a tagged
	// call ran in, or else the first one after it (a restart reads again
	// what was delivered but not committed before it); "untagged" for
	// events of other activity, "none after" when no fault followed.
	DuplicatesByFault map[string]int `json:"duplicates_by_fault"`
	dups              map[uint64]int // extra copies, by sequence number
	Delivered         int            `json:"delivered"` // tagged ops found, as performed
	// Missing tagged ops and how they were explained.
	Missing        int `json:"missing"`
	ExplainedRing  int `json:"explained_ring"`  // by a "lost N" record
	ExplainedAgent int `json:"explained_agent"` // by a missing sequence number
	// ExplainedHidden: by ring drops whose "lost N" record the agent
	// dropped (the module's counter minus the N in Kafka), in a window
	// with a missing number.
	ExplainedHidden   int `json:"explained_hidden_ring"`
	ExplainedHookMiss int `json:"explained_hook_missed"`
	Unexplained       int `json:"unexplained"`
	// Restarted counts events of a call the kernel restarted (a signal
	// interrupted it): the first pass reports a restart code.
	Restarted   int    `json:"restarted"`
	LostRecords int    `json:"lost_records"` // "lost N" events
	LostTotal   uint64 `json:"lost_total"`   // sum of their N
	SeqGaps     uint64 `json:"seq_gaps"`     // numbers never delivered
	// GapRanges are the first runs of missing numbers (first, last).
	GapRanges         [][2]uint64 `json:"gap_ranges"`
	FirstSeq, LastSeq uint64      `json:"-"`
	// Lost lists the "lost N" events: where they stand in the stream.
	Lost              []LostAt       `json:"lost"`
	MissingByKind     map[string]int `json:"missing_by_kind"`
	UnexplainedByKind map[string]int `json:"unexplained_by_kind"`
	Counters          Counters       `json:"counters"`
	// Problems fail the run: each is one line saying what is wrong.
	Problems []string `json:"problems"`
}

// OK says whether the run passes.
func (r *Result) OK() bool { return len(r.Problems) == 0 }

// maxGapRanges bounds the gap ranges kept for the report.
const maxGapRanges = 200

// maxProblemLines bounds the problem list: the first ones say enough.
const maxProblemLines = 40

func (r *Result) problem(format string, args ...any) {
	if len(r.Problems) == maxProblemLines {
		r.Problems = append(r.Problems, "... (more problems left out)")
	}
	if len(r.Problems) > maxProblemLines {
		return
	}
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// LostAt is one "lost N" event and the kernel time of the delivered
// event before it in the stream.
type LostAt struct {
	Seq    uint64 `json:"seq"`
	N      uint64 `json:"n"`
	PrevNs int64  `json:"prev_time_ns"`
}

// Options tune the reconciliation.
type Options struct {
	// TagPrefix starts every tag of the run (exec argument, module
	// parameter); connects are tagged by a destination in 127.0.0.0/8
	// other than 127.0.0.1.
	TagPrefix string
	// SlackNs widens each missing op's time window on both sides.
	SlackNs int64
}

type slot struct {
	seq  uint64
	left uint64 // what it can still explain
	ring bool
}

// Reconcile checks ops against the Kafka records (raw JSON values).
func Reconcile(ops []Op, records [][]byte, c Counters, o Options) *Result {
	r := &Result{Ops: len(ops), Records: len(records), Counters: c, OpsByKind: map[string]int{},
		MissingByKind: map[string]int{}, UnexplainedByKind: map[string]int{},
		DuplicatesByFault: map[string]int{}, dups: map[uint64]int{}}
	bySeq := r.readRecords(records)
	seqs := make([]uint64, 0, len(bySeq))
	for s := range bySeq {
		seqs = append(seqs, s)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	slots := r.dropSlots(bySeq, seqs)
	if ringDrops := c.ringDrops(); r.LostTotal > ringDrops {
		r.problem("lost records in Kafka add up to %d, more than the module counted dropped (%d)", r.LostTotal, ringDrops)
	}
	if agentDrops := c.AgentSpoolFull + c.AgentSpoolError + c.AgentTooLarge; r.SeqGaps > agentDrops {
		r.problem("%d sequence numbers never reached Kafka, but the agent counted only %d drops (spool_full + spool_error + message_too_large)", r.SeqGaps, agentDrops)
	}
	idx := indexEvents(bySeq, seqs, o.TagPrefix)
	missing := r.matchOps(ops, idx, o.SlackNs)
	if untagged := r.Duplicates - sumValues(r.DuplicatesByFault); untagged > 0 {
		r.DuplicatesByFault["untagged"] = untagged
	}
	for k, evs := range idx.found {
		r.problem("%s arrived in Kafka (seq %d) but the load generator did not perform it", k, evs[0].Seq)
	}
	r.explain(missing, slots, c)
	return r
}

// ringDrops are the records the module never wrote to the ring.
func (c *Counters) ringDrops() uint64 {
	return c.RingDroppedFull + c.RingDroppedTooLarge + c.RingDroppedFault
}

// readRecords parses the records into events by sequence number, counting
// duplicates.  One agent state for the whole run, so one stream: (stream,
// seq) names an event, and within the stream seq alone does.
func (r *Result) readRecords(records [][]byte) map[uint64]*Event {
	bySeq := map[uint64]*Event{}
	stream := ""
	for i, raw := range records {
		ev := &Event{}
		if err := json.Unmarshal(raw, ev); err != nil {
			r.problem("record %d is not valid JSON: %v", i, err)
			continue
		}
		if ev.Seq == 0 || ev.Stream == "" {
			r.problem("record %d has no sequence number or stream: %.200s", i, raw)
			continue
		}
		if stream == "" {
			stream = ev.Stream
		} else if ev.Stream != stream {
			r.problem("record %d is of stream %s, the run's is %s (the agent lost its state): %.200s", i, ev.Stream, stream, raw)
			continue
		}
		if prev, ok := bySeq[ev.Seq]; ok {
			r.Duplicates++
			r.dups[ev.Seq]++
			if !prev.same(ev) {
				r.problem("sequence number %d names two different events: %.200s", ev.Seq, raw)
			}
			continue
		}
		bySeq[ev.Seq] = ev
	}
	r.Events = len(bySeq)
	return bySeq
}

// dropSlots returns the drop slots in stream order: missing numbers (from
// 1, where the agent's numbering starts) and lost records, and counts them
// in r.
func (r *Result) dropSlots(bySeq map[uint64]*Event, seqs []uint64) []slot {
	var slots []slot
	next := uint64(1)
	var prevNs int64
	for _, s := range seqs {
		if ev := bySeq[s]; ev.DataType != typeLost {
			prevNs = ev.TimeNs
		}
		if next < s && len(r.GapRanges) < maxGapRanges {
			r.GapRanges = append(r.GapRanges, [2]uint64{next, s - 1})
		}
		for ; next < s; next++ {
			slots = append(slots, slot{seq: next, left: 1})
			r.SeqGaps++
		}
		next = s + 1
		if ev := bySeq[s]; ev.DataType == typeLost {
			r.Lost = append(r.Lost, LostAt{Seq: s, N: ev.Lost, PrevNs: prevNs})
			r.LostRecords++
			r.LostTotal += ev.Lost
			if ev.Lost > 0 {
				slots = append(slots, slot{seq: s, left: ev.Lost, ring: true})
			}
		}
	}
	if len(seqs) > 0 {
		r.FirstSeq, r.LastSeq = seqs[0], seqs[len(seqs)-1]
	}
	return slots
}

// timed is a kernel event's time and sequence number.
type timed struct {
	t   int64
	seq uint64
}

// eventIndex holds the kernel events by time, for the windows, and the
// tagged ones by key.
type eventIndex struct {
	byTime []timed
	// prefixMax[i]: the largest seq among byTime[:i+1]; suffixMin[i]:
	// the smallest among byTime[i:].
	prefixMax, suffixMin []uint64
	found                map[string][]*Event
}

func indexEvents(bySeq map[uint64]*Event, seqs []uint64, prefix string) *eventIndex {
	x := &eventIndex{found: map[string][]*Event{}}
	for _, s := range seqs {
		ev := bySeq[s]
		if ev.DataType == typeLost {
			continue
		}
		x.byTime = append(x.byTime, timed{ev.TimeNs, s})
		if k := ev.key(prefix); k != "" {
			x.found[k] = append(x.found[k], ev)
		}
	}
	byTime := x.byTime
	sort.Slice(byTime, func(i, j int) bool { return byTime[i].t < byTime[j].t })
	x.prefixMax = make([]uint64, len(byTime))
	x.suffixMin = make([]uint64, len(byTime))
	for i := range byTime {
		x.prefixMax[i] = byTime[i].seq
		if i > 0 {
			x.prefixMax[i] = max(x.prefixMax[i], x.prefixMax[i-1])
		}
	}
	for i := len(byTime) - 1; i >= 0; i-- {
		x.suffixMin[i] = byTime[i].seq
		if i < len(byTime)-1 {
			x.suffixMin[i] = min(x.suffixMin[i], x.suffixMin[i+1])
		}
	}
	return x
}

// window is a missing op's place in the stream: slots with lo < seq < hi
// can explain it.
type window struct {
	op     *Op
	lo, hi uint64
}

// window returns the stream window of a missing op: from the last
// delivered event older than the call to the first newer, widened by
// slack.
func (x *eventIndex) window(op *Op, slack int64) window {
	w := window{op: op, hi: ^uint64(0)}
	if i := sort.Search(len(x.byTime), func(i int) bool { return x.byTime[i].t >= op.T0-slack }); i > 0 {
		w.lo = x.prefixMax[i-1]
	}
	if i := sort.Search(len(x.byTime), func(i int) bool { return x.byTime[i].t > op.T1+slack }); i < len(x.byTime) {
		w.hi = x.suffixMin[i]
	}
	return w
}

// matchOps finds each op's event (taking it out of x.found), checks it is
// as performed, and returns the windows of the missing ops.
func (r *Result) matchOps(ops []Op, x *eventIndex, slack int64) []window {
	var missing []window
	keys := map[string]bool{}
	faults := faultStarts(ops)
	for i := range ops {
		op := &ops[i]
		r.OpsByKind[op.Kind]++
		k := op.Key()
		if keys[k] {
			r.problem("two ops share the tag %q", k)
		}
		keys[k] = true
		evs := x.found[k]
		delete(x.found, k)
		// A call interrupted by a signal and restarted by the kernel
		// passes the hook twice: first marked restarted (-EINTR, which
		// the caller does not see when the call is restarted), then
		// with its result.
		final := evs[:0:0]
		for _, ev := range evs {
			if ev.Restarted && ev.Res != op.Result {
				r.Restarted++
				continue
			}
			final = append(final, ev)
		}
		evs = final
		if len(evs) > 1 {
			r.problem("%s %s arrived as %d events with different sequence numbers (a duplicate the numbers do not explain)", op.Kind, op.Tag, len(evs))
		}
		if len(evs) > 0 {
			if why := mismatch(op, evs[0]); why != "" {
				r.problem("%s %s is not in Kafka as performed: %s", op.Kind, op.Tag, why)
			}
			r.Delivered++
			if n := r.dups[evs[0].Seq]; n > 0 {
				r.DuplicatesByFault[faultOf(op, faults)] += n
			}
			continue
		}
		r.Missing++
		r.MissingByKind[op.Kind]++
		missing = append(missing, x.window(op, slack))
	}
	return missing
}

// The phases of a run that are not faults: between them, and after the
// last; every other Op.Phase names the fault the call ran in.
const (
	PhaseSteady = "steady"
	PhaseFinal  = "final"
)

// isFault tells whether phase is a fault's.
func isFault(phase string) bool {
	return phase != "" && phase != PhaseSteady && phase != PhaseFinal
}

// faultAt is where a fault phase began: the first call made in it.
type faultAt struct {
	t0    int64
	phase string
}

// faultStarts are the fault phases of the run in time order.
func faultStarts(ops []Op) []faultAt {
	var out []faultAt
	sorted := slices.Clone(ops)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].T0 < sorted[j].T0 })
	prev := ""
	for _, op := range sorted {
		if op.Phase != prev && isFault(op.Phase) {
			out = append(out, faultAt{op.T0, op.Phase})
		}
		prev = op.Phase
	}
	return out
}

// faultOf is the fault a duplicate of op's event is laid to: the one op
// ran in, or the first to begin after op ended.
func faultOf(op *Op, faults []faultAt) string {
	if isFault(op.Phase) {
		return op.Phase
	}
	i := sort.Search(len(faults), func(i int) bool { return faults[i].t0 >= op.T1 })
	if i == len(faults) {
		return "none after"
	}
	return faults[i].phase
}

func sumValues(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// explain matches missing ops to slots: by window end, each to the
// earliest slot with room in its window (optimal for intervals and
// points); then to the hidden ring drops and the hook misses.
func (r *Result) explain(missing []window, slots []slot, c Counters) {
	sort.SliceStable(missing, func(i, j int) bool { return missing[i].hi < missing[j].hi })
	hookPool := c.HookMissed
	// Ring drops whose "lost N" record the agent numbered and then
	// dropped itself (spool full): the module counted them, the stream
	// shows only a missing number.  They explain a loss only in a window
	// that holds a missing number.
	// A missing number that was a lost record explains its N drops,
	// not N+1: its own 1 is in the slot, the rest in the pool.
	hidden := uint64(0)
	ringDrops := c.ringDrops()
	if hiddenRecs := c.RingLostRecords - min(c.RingLostRecords, uint64(r.LostRecords)); hiddenRecs > 0 && ringDrops > r.LostTotal+hiddenRecs {
		hidden = ringDrops - r.LostTotal - hiddenRecs
	}
	gapIn := func(lo, hi uint64) bool {
		i := sort.Search(len(slots), func(i int) bool { return slots[i].seq > lo })
		for ; i < len(slots) && slots[i].seq < hi; i++ {
			if !slots[i].ring {
				return true
			}
		}
		return false
	}
	for _, w := range missing {
		i := sort.Search(len(slots), func(i int) bool { return slots[i].seq > w.lo })
		for ; i < len(slots) && slots[i].seq < w.hi; i++ {
			if slots[i].left > 0 {
				break
			}
		}
		switch {
		case i < len(slots) && slots[i].seq < w.hi:
			slots[i].left--
			if slots[i].ring {
				r.ExplainedRing++
			} else {
				r.ExplainedAgent++
			}
		case hidden > 0 && gapIn(w.lo, w.hi):
			hidden--
			r.ExplainedHidden++
		case hookPool > 0 && (w.op.Kind == OpTCP || w.op.Kind == OpUDP):
			hookPool--
			r.ExplainedHookMiss++
		default:
			r.unexplained(w, slots)
		}
	}
}

// unexplained records a missing op no drop explains.
func (r *Result) unexplained(w window, slots []slot) {
	r.Unexplained++
	r.UnexplainedByKind[w.op.Kind]++
	gaps, lost := 0, 0
	for _, sl := range slots {
		if sl.seq > w.lo && sl.seq < w.hi {
			if sl.ring {
				lost++
			} else {
				gaps++
			}
		}
	}
	r.problem("%s %s (phase %s, t=%d..%d) is missing from Kafka and no drop explains it (stream window seq %d..%d: %d missing numbers, %d lost records, all used)",
		w.op.Kind, w.op.Tag, w.op.Phase, w.op.T0, w.op.T1, w.lo, w.hi, gaps, lost)
}

// mismatch says how a delivered event differs from the op, "" if it does
// not.
func mismatch(op *Op, ev *Event) string {
	if ev.Res != op.Result {
		return fmt.Sprintf("result %d, performed %d", ev.Res, op.Result)
	}
	if op.Pid != 0 && ev.Tgid != op.Pid {
		return fmt.Sprintf("tgid %d, performed by %d", ev.Tgid, op.Pid)
	}
	if ev.TimeNs < op.T0 || ev.TimeNs > op.T1 {
		return fmt.Sprintf("time %d outside the call's %d..%d", ev.TimeNs, op.T0, op.T1)
	}
	switch op.Kind {
	case OpExec, OpExecFail:
		if ev.DataType != typeExec {
			return "data_type " + ev.DataType
		}
		if ev.Filename != op.Filename {
			return fmt.Sprintf("filename %q, performed %q", ev.Filename, op.Filename)
		}
		if op.Kind == OpExec && strings.Join(ev.Args, "\x00") != strings.Join(op.Args, "\x00") {
			return fmt.Sprintf("args %q, performed %q", ev.Args, op.Args)
		}
	case OpTCP, OpUDP:
		if ev.DataType != typeConnect {
			return "data_type " + ev.DataType
		}
		if ev.Protocol != op.Kind {
			return fmt.Sprintf("protocol %q, performed %q", ev.Protocol, op.Kind)
		}
	case OpFinit:
		if ev.DataType != typeFinit {
			return "data_type " + ev.DataType
		}
		if ev.ModPath != op.Filename {
			return fmt.Sprintf("mod_path %q, performed %q", ev.ModPath, op.Filename)
		}
	case OpInit:
		if ev.DataType != typeInit {
			return "data_type " + ev.DataType
		}
	}
	return ""
}
