package soak

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"strings"
	"testing"

	"smith/agent/decode"
)

const prefix = "soak-t-"

// stream builds Kafka records for a synthetic run: every op delivered
// in order, one event per op, numbered from 1, 1 ms apart.
type stream struct {
	ops  []Op
	recs []map[string]any
	seq  uint64
	t    int64
}

func newStream() *stream { return &stream{t: 1_000_000_000} }

// op performs one op of kind at the next millisecond; deliver says whether
// its event reaches Kafka.
func (s *stream) op(kind string, deliver bool) *Op {
	s.t += 1_000_000
	n := len(s.ops)
	op := Op{Kind: kind, T0: s.t - 100, T1: s.t + 100, Pid: 1000 + uint32(n)}
	ev := map[string]any{"time_ns": s.t, "tgid": op.Pid, "pid": op.Pid, "res": 0}
	switch kind {
	case OpExec, OpExecFail:
		op.Tag = fmt.Sprintf("%s%d", prefix, n)
		op.Filename = "/bin/true"
		if kind == OpExecFail {
			op.Filename = "/nonexistent/" + op.Tag
			op.Result = -2
		}
		op.Args = []string{op.Filename, op.Tag}
		ev["data_type"], ev["filename"], ev["args"] = "59", op.Filename, op.Args
	case OpTCP, OpUDP:
		op.Tag = fmt.Sprintf("127.0.%d.%d:%d", n/250, n%250+2, 7000)
		ev["data_type"], ev["protocol"], ev["dip"], ev["dport"] = "42", kind, strings.Split(op.Tag, ":")[0], 7000
	case OpFinit:
		op.Tag = "fail=0 tag=" + prefix + fmt.Sprint(n)
		op.Filename = "/smith_hooktest.ko"
		ev["data_type"], ev["mod_params"], ev["mod_path"] = "313", op.Tag, op.Filename
	}
	ev["res"] = op.Result
	s.ops = append(s.ops, op)
	s.seq++
	if deliver {
		ev["seq"] = s.seq
		s.recs = append(s.recs, ev)
	}
	return &s.ops[len(s.ops)-1]
}

// lost appends a "lost n" record.
func (s *stream) lost(n uint64) {
	s.seq++
	s.recs = append(s.recs, map[string]any{"data_type": "1", "seq": s.seq, "time_ns": s.t, "lost": n})
}

// agentDrop numbers one event that never reaches Kafka.
func (s *stream) agentDrop() { s.seq++ }

// untagged delivers an event of other activity.
func (s *stream) untagged() {
	s.t += 1_000_000
	s.seq++
	s.recs = append(s.recs, map[string]any{"data_type": "59", "seq": s.seq, "time_ns": s.t, "args": []string{"sh"}, "filename": "/bin/sh"})
}

func (s *stream) raw(t *testing.T) [][]byte {
	t.Helper()
	var out [][]byte
	for _, r := range s.recs {
		if _, ok := r["stream"]; !ok {
			r["stream"] = "00000000000000aa"
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func reconcile(t *testing.T, s *stream, c Counters) *Result {
	t.Helper()
	r := Reconcile(s.ops, s.raw(t), c, Options{TagPrefix: prefix, SlackNs: 2_000_000})
	t.Logf("delivered %d missing %d (ring %d, agent %d, hook %d) unexplained %d, problems %q",
		r.Delivered, r.Missing, r.ExplainedRing, r.ExplainedAgent, r.ExplainedHookMiss, r.Unexplained, r.Problems)
	return r
}

func allKinds(s *stream) {
	for _, k := range []string{OpExec, OpExecFail, OpTCP, OpUDP, OpFinit} {
		s.op(k, true)
		s.untagged()
	}
}

func TestEverythingDelivered(t *testing.T) {
	s := newStream()
	allKinds(s)
	allKinds(s)
	r := reconcile(t, s, Counters{})
	if !r.OK() || r.Delivered != 10 || r.Missing != 0 || r.Events != 20 {
		t.Fatalf("want a clean pass with 10 delivered of 20 events: %+v", r)
	}
}

// A second stream means the agent lost its state during the run: the
// numbers of the two cannot be told apart by seq alone.
func TestSecondStreamFails(t *testing.T) {
	s := newStream()
	allKinds(s)
	s.untagged()
	s.recs[len(s.recs)-1]["stream"] = "00000000000000bb"
	r := reconcile(t, s, Counters{})
	if r.OK() {
		t.Fatalf("a record of another stream passed: %+v", r)
	}
}

// TestMissingOps: ops missing between two rounds of every kind, and what
// the counters make of them.
func TestMissingOps(t *testing.T) {
	var tag string
	for _, tc := range []struct {
		name   string
		c      Counters
		middle func(s *stream)
		ok     bool
		want   func(r *Result) bool
		why    string
	}{
		{"without counter", Counters{}, func(s *stream) {
			// The agent numbered it but it never reached Kafka, and
			// nobody counted a drop: the seq gap alone is not an excuse.
			s.op(OpUDP, false)
		}, false, func(r *Result) bool { return r.Missing == 1 }, "a missing event with no counter must fail"},
		{"nothing at all", Counters{RingDroppedFull: 5, AgentSpoolFull: 5}, func(s *stream) {
			tag = s.op(OpExec, false).Tag
			s.seq-- // not even numbered: silently gone before the agent
		}, false, func(r *Result) bool {
			return r.Unexplained == 1 && r.UnexplainedByKind[OpExec] == 1 &&
				// the problem must name the op
				strings.Contains(strings.Join(r.Problems, "\n"), tag)
		}, "a missing event without a drop in its window must fail, naming the op"},
		{"ring drop", Counters{RingDroppedFull: 2}, func(s *stream) {
			s.op(OpTCP, false)
			s.op(OpExec, false)
			s.seq -= 2 // ring drops are not numbered
			s.lost(2)
		}, true, func(r *Result) bool { return r.ExplainedRing == 2 && r.Missing == 2 }, "two drops of one lost 2 record must explain both"},
		{"one drop, one loss", Counters{RingDroppedFull: 1}, func(s *stream) {
			s.op(OpTCP, false)
			s.op(OpExec, false)
			s.seq -= 2
			s.lost(1)
		}, false, func(r *Result) bool { return r.ExplainedRing == 1 && r.Unexplained == 1 }, "lost 1 must explain one of two missing events"},
		{"agent drop", Counters{AgentSpoolFull: 2}, func(s *stream) {
			s.op(OpExec, false) // numbered, dropped by the spool
			s.agentDrop()       // an untagged event dropped too
		}, true, func(r *Result) bool { return r.ExplainedAgent == 1 && r.SeqGaps == 2 }, "a missing number counted as spool_full must explain the loss"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStream()
			allKinds(s)
			tc.middle(s)
			allKinds(s)
			r := reconcile(t, s, tc.c)
			if r.OK() != tc.ok || !tc.want(r) {
				t.Fatalf("%s (pass: %v): %+v", tc.why, tc.ok, r)
			}
		})
	}
}

func TestDropOutsideWindowDoesNotExplain(t *testing.T) {
	s := newStream()
	s.lost(1) // long before
	for range 20 {
		s.untagged()
	}
	allKinds(s)
	s.op(OpUDP, false)
	s.seq--
	allKinds(s)
	r := reconcile(t, s, Counters{RingDroppedFull: 1})
	if r.OK() || r.Unexplained != 1 {
		t.Fatalf("a drop 20 ms earlier must not explain a loss: %+v", r)
	}
}

func TestLostTotalAboveModuleCounterFails(t *testing.T) {
	s := newStream()
	allKinds(s)
	s.lost(3)
	r := reconcile(t, s, Counters{RingDroppedFull: 2})
	if r.OK() {
		t.Fatalf("lost records adding up to more than the module dropped must fail: %+v", r)
	}
}

func TestDuplicates(t *testing.T) {
	s := newStream()
	allKinds(s)
	// Redelivery of the same events under the same numbers: allowed.
	s.recs = append(s.recs, s.recs[0], s.recs[1], s.recs[2])
	r := reconcile(t, s, Counters{})
	if !r.OK() || r.Duplicates != 3 || r.Delivered != 5 {
		t.Fatalf("same-number redeliveries must pass and be counted: %+v", r)
	}

	// One op under two numbers: not explained by at-least-once.
	s = newStream()
	allKinds(s)
	again := maps.Clone(s.recs[0])
	s.seq++
	again["seq"] = s.seq
	s.recs = append(s.recs, again)
	if r := reconcile(t, s, Counters{}); r.OK() {
		t.Fatalf("one op under two sequence numbers must fail: %+v", r)
	}

	// One number, two different events.
	s = newStream()
	allKinds(s)
	other := maps.Clone(s.recs[1])
	other["seq"] = s.recs[0]["seq"]
	s.recs = append(s.recs, other)
	if r := reconcile(t, s, Counters{}); r.OK() {
		t.Fatalf("one number for two events must fail: %+v", r)
	}
}

func TestNotAsPerformedFails(t *testing.T) {
	for _, field := range []string{"res", "tgid", "filename", "args", "time_ns", "protocol", "mod_path"} {
		t.Run(field, func(t *testing.T) {
			s := newStream()
			allKinds(s)
			changed := false
			for _, rec := range s.recs {
				if rec[field] != nil {
					switch field {
					case "res":
						rec[field] = -13
					case "tgid":
						rec[field] = 1
					case "time_ns":
						rec[field] = rec[field].(int64) + 1_000_000
					case "args":
						rec[field] = []string{"/bin/true", prefix + "x"}
					default:
						rec[field] = "other"
					}
					changed = true
					break
				}
			}
			if !changed {
				t.Fatal("no record has", field)
			}
			if r := reconcile(t, s, Counters{}); r.OK() {
				t.Fatalf("a delivered event with another %s must fail", field)
			}
		})
	}
}

func TestPhantomEventFails(t *testing.T) {
	s := newStream()
	allKinds(s)
	s.ops = s.ops[:len(s.ops)-1] // the generator "forgets" an op
	if r := reconcile(t, s, Counters{}); r.OK() {
		t.Fatal("a tagged event nobody performed must fail")
	}
}

func TestHookMissExplainsConnectsOnly(t *testing.T) {
	s := newStream()
	allKinds(s)
	s.op(OpTCP, false)
	s.seq--
	s.op(OpExec, false)
	s.seq--
	allKinds(s)
	r := reconcile(t, s, Counters{HookMissed: 5})
	if r.OK() || r.ExplainedHookMiss != 1 || r.UnexplainedByKind[OpExec] != 1 {
		t.Fatalf("hook_missed explains the connect only: %+v", r)
	}
}

func TestRestartedCall(t *testing.T) {
	s := newStream()
	allKinds(s)
	// The connect passed the hook twice: interrupted (-EINTR, marked
	// restarted), then restarted by the kernel with its real result.
	first := map[string]any{}
	for k, v := range s.recs[4] {
		first[k] = v
	}
	first["res"] = -4
	first["restarted"] = true
	s.seq++
	first["seq"] = s.seq
	s.recs = append(s.recs, first)
	r := reconcile(t, s, Counters{})
	if !r.OK() || r.Restarted != 1 || r.Delivered != 5 {
		t.Fatalf("a restarted call must count once, its restart apart: %+v", r)
	}

	// Only the interrupted pass arrived: the op is missing.
	s = newStream()
	allKinds(s)
	s.recs[4]["res"] = -4
	s.recs[4]["restarted"] = true
	if r := reconcile(t, s, Counters{}); r.OK() || r.Missing != 1 {
		t.Fatalf("a call whose final pass is missing must be missing: %+v", r)
	}
}

func TestHiddenRingDrops(t *testing.T) {
	// The ring dropped 3 records; its "lost 3" record was numbered and
	// then dropped by the agent: a missing number stands for it.
	mk := func() *stream {
		s := newStream()
		allKinds(s)
		for range 3 {
			s.op(OpUDP, false)
			s.seq--
		}
		s.agentDrop()
		allKinds(s)
		return s
	}
	r := reconcile(t, mk(), Counters{RingDroppedFull: 3, RingLostRecords: 1, AgentSpoolFull: 1})
	if !r.OK() || r.ExplainedAgent != 1 || r.ExplainedHidden != 2 {
		t.Fatalf("the module's count must explain what the missing lost record held: %+v", r)
	}
	// The module counted only 2: one loss stays unexplained.
	r = reconcile(t, mk(), Counters{RingDroppedFull: 2, RingLostRecords: 1, AgentSpoolFull: 1})
	if r.OK() || r.Unexplained != 1 {
		t.Fatalf("hidden drops beyond the module's count must not explain: %+v", r)
	}
	// Without a missing number in the window, hidden drops explain nothing.
	s := newStream()
	allKinds(s)
	s.op(OpUDP, false)
	s.seq--
	allKinds(s)
	for range 20 {
		s.untagged()
	}
	s.agentDrop()
	allKinds(s)
	r = reconcile(t, s, Counters{RingDroppedFull: 2, RingLostRecords: 1, AgentSpoolFull: 1})
	if r.OK() || r.Unexplained != 1 {
		t.Fatalf("a hidden drop far from the loss must not explain it: %+v", r)
	}
}

// TestEventNamesFromTable checks the reconciler reads the smith format by
// the event table's names: its data types and the JSON keys of the fields
// and the flag it reads.
func TestEventNamesFromTable(t *testing.T) {
	for dt, typ := range map[string]uint16{typeExec: decode.TypeExecve, typeConnect: decode.TypeConnect,
		typeInit: decode.TypeInitModule, typeFinit: decode.TypeFinitModule} {
		if info := decode.EventByType(typ); info == nil || dt != info.DataType || dt != fmt.Sprint(typ) {
			t.Errorf("data type %q is not the table's for type %d", dt, typ)
		}
	}
	if typeLost != fmt.Sprint(decode.TypeLost) {
		t.Errorf("lost data type %q", typeLost)
	}
	restarted := ""
	for _, f := range decode.RecordFlags {
		if f.Flag == decode.FlagRestart {
			restarted = f.Name
		}
	}
	evType := reflect.TypeOf(Event{})
	for field, want := range map[string]string{
		"Filename":  decode.Fields[decode.FieldFilename].Name,
		"Args":      "args",
		"ModPath":   decode.Fields[decode.FieldModPath].Name,
		"Params":    decode.Fields[decode.FieldModParams].Name,
		"Restarted": restarted,
	} {
		f, ok := evType.FieldByName(field)
		if !ok || f.Tag.Get("json") != want {
			t.Errorf("Event.%s reads %q, the encoder writes %q", field, f.Tag.Get("json"), want)
		}
	}
}

// A duplicate is laid to the fault its call ran in, or else to the first
// fault after the call; an event no call made is "untagged".
func TestDuplicatesAreLaidToTheFaultThatMadeThem(t *testing.T) {
	s := newStream()
	s.op(OpExec, true).Phase = PhaseSteady
	s.op(OpTCP, true).Phase = "agent-sigkill"
	s.op(OpExec, true).Phase = PhaseSteady
	s.op(OpUDP, true).Phase = "broker-restart"
	s.op(OpFinit, true).Phase = PhaseFinal
	s.untagged()
	s.recs = append(s.recs, s.recs[0], s.recs[1], s.recs[1], s.recs[2], s.recs[4], s.recs[5])
	r := reconcile(t, s, Counters{})
	want := map[string]int{"agent-sigkill": 3, "broker-restart": 1, "none after": 1, "untagged": 1}
	if !r.OK() || r.Duplicates != 6 || !reflect.DeepEqual(r.DuplicatesByFault, want) {
		t.Fatalf("duplicates %d by fault %v, want 6 and %v (problems %q)", r.Duplicates, r.DuplicatesByFault, want, r.Problems)
	}
}
