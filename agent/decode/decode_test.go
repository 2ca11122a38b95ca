package decode

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

func execEvent() *Event {
	ev := &Event{
		Type: TypeExecve, Flags: FlagTruncated,
		TimeNs: 1700000000123456789, Result: -2,
		Pid: 101, Tgid: 100, Ppid: 1, Pgid: 100, Sid: 1,
		UID: 1000, EUID: 0, GID: 1000, PidNS: 4026531836, MntNS: 4026531841,
		CgroupID: 77, Comm: []byte("bash"), CPU: 1,
	}
	set := func(id uint16, v string, flags uint16) {
		ev.Fields[id] = Field{Value: []byte(v), Flags: flags, Present: true}
	}
	set(FieldExe, "/usr/bin/bash", 0)
	set(FieldNodename, "web-1", 0)
	set(FieldFilename, "/bin/ls", 0)
	set(FieldArgv, "ls\x00-l\x00a b\xff", FieldTruncated)
	set(FieldCwd, "/root", 0)
	set(FieldStdin, "/dev/pts/0", 0)
	set(FieldStdout, "pipe:[1234]", 0)
	set(FieldTTY, "pts0", 0)
	return ev
}

// execIDEvent is execEvent from a module of ABI 1.2: with the loaded
// file's identity.
func execIDEvent() *Event {
	ev := execEvent()
	ev.HasExeID = true
	ev.ExeID = ExeID{Dev: 0x10302, Ino: 1 << 40, Size: 1234567, MtimeSec: -5, MtimeNsec: 999999999,
		CtimeSec: 1700000000, CtimeNsec: 7}
	return ev
}

func connectEvent(family uint16) *Event {
	ev := &Event{Type: TypeConnect, TimeNs: 5, Pid: 7, Tgid: 7, Comm: []byte("curl"), Result: -115}
	ev.HasConnect = true
	ev.Connect = Connect{Family: family, Protocol: 6, FD: 3, RemotePort: 443, LocalPort: 50000}
	if family == AFInet {
		copy(ev.Connect.RemoteAddr[:], []byte{10, 0, 0, 1})
		copy(ev.Connect.LocalAddr[:], []byte{10, 0, 0, 2})
	} else {
		ev.Connect.RemoteAddr = netip.MustParseAddr("2001:db8::1").As16()
		ev.Connect.LocalAddr = netip.MustParseAddr("::1").As16()
	}
	return ev
}

// sameEvent compares the decoded event with the one that was built.
func sameEvent(t *testing.T, got, want *Event) {
	t.Helper()
	if got.Type != want.Type || got.Flags != want.Flags || got.TimeNs != want.TimeNs ||
		got.Result != want.Result || got.Pid != want.Pid || got.Tgid != want.Tgid ||
		got.Ppid != want.Ppid || got.Pgid != want.Pgid || got.Sid != want.Sid ||
		got.UID != want.UID || got.EUID != want.EUID || got.GID != want.GID ||
		got.PidNS != want.PidNS || got.MntNS != want.MntNS || got.CgroupID != want.CgroupID ||
		got.CPU != want.CPU || !bytes.Equal(got.Comm, want.Comm) {
		t.Fatalf("header differs:\n got %+v\nwant %+v", got, want)
	}
	for id := range want.Fields {
		g, w := got.Fields[id], want.Fields[id]
		if uint16(id) == FieldConnectID {
			continue
		}
		if g.Present != w.Present || g.Flags != w.Flags || !bytes.Equal(g.Value, w.Value) {
			t.Fatalf("field %d: got %+v want %+v", id, g, w)
		}
	}
	if got.HasConnect != want.HasConnect || got.Connect != want.Connect {
		t.Fatalf("connect: got %+v want %+v", got.Connect, want.Connect)
	}
	if got.HasExeID != want.HasExeID || got.ExeID != want.ExeID {
		t.Fatalf("exe id: got %v %+v want %v %+v", got.HasExeID, got.ExeID, want.HasExeID, want.ExeID)
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	for name, ev := range map[string]*Event{
		"execve":        execEvent(),
		"execve exe id": execIDEvent(),
		"connect ipv4":  connectEvent(AFInet),
		"connect ipv6":  connectEvent(AFInet6),
		"empty argv":    {Type: TypeExecve, Fields: [maxFieldID + 1]Field{FieldArgv: {Present: true, Value: []byte{}}}},
		"init_module":   {Type: TypeInitModule, Fields: [maxFieldID + 1]Field{FieldModName: {Present: true, Value: []byte("dummy")}, FieldModParams: {Present: true, Value: []byte("a=1")}}},
		"finit_module":  {Type: TypeFinitModule, Fields: [maxFieldID + 1]Field{FieldModPath: {Present: true, Value: []byte("/lib/x.ko")}}},
		"full comm":     {Type: TypeExecve, Comm: []byte("0123456789abcdef")},
		"execveat flag": {Type: TypeExecve, Flags: FlagExecveat | FlagCompat},
		"failed exec":   {Type: TypeExecve, Result: -2, HasExeID: true},
	} {
		t.Run(name, func(t *testing.T) {
			rec := AppendEvent(nil, ev)
			if len(rec)%8 != 0 {
				t.Fatalf("record occupies %d bytes, not 8-aligned", len(rec))
			}
			var got Event
			kind, err := Decode(rec, &got)
			if err != nil || kind != KindEvent {
				t.Fatalf("Decode = %v, %v", kind, err)
			}
			sameEvent(t, &got, ev)
		})
	}
}

// The exe id is read field by field at the header's offsets, is no entry
// of Fields (no output format sees it), and a value shorter than struct
// smith_exe_id is corrupt; a longer one (a later minor) is read.
func TestExeID(t *testing.T) {
	ev := execIDEvent()
	rec := AppendEvent(nil, ev)
	var got Event
	if _, err := Decode(rec, &got); err != nil {
		t.Fatal(err)
	}
	if got.Fields[FieldExeID].Present || got.Skipped != 0 {
		t.Fatalf("exe id kept in Fields (%+v) or skipped (%d)", got.Fields[FieldExeID], got.Skipped)
	}
	var raw [exeIDSize]byte
	putExeID(&raw, &ev.ExeID)
	le := binary.LittleEndian
	if le.Uint32(raw[offExeDev:]) != 0x10302 || le.Uint64(raw[offExeIno:]) != 1<<40 ||
		le.Uint64(raw[offExeSize:]) != 1234567 || int64(le.Uint64(raw[offExeMtimeSec:])) != -5 ||
		le.Uint32(raw[offExeMtimeNsec:]) != 999999999 || le.Uint64(raw[offExeCtimeSec:]) != 1700000000 ||
		le.Uint32(raw[offExeCtimeNsec:]) != 7 {
		t.Fatalf("struct smith_exe_id bytes % x", raw)
	}
	noID := execEvent()
	noID.HasExeID = false
	short := AppendEvent(nil, noID, RawField{ID: FieldExeID, Value: raw[:exeIDSize-1]})
	if _, err := Decode(short, &got); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("short exe id: %v", err)
	}
	long := AppendEvent(nil, noID, RawField{ID: FieldExeID, Value: append(raw[:], 1, 2, 3, 4, 5, 6, 7, 8)})
	if _, err := Decode(long, &got); err != nil || !got.HasExeID || got.ExeID != ev.ExeID {
		t.Fatalf("longer exe id: %v %+v", err, got.ExeID)
	}
	// A 1.1 module's record has none.
	if _, err := Decode(AppendEvent(nil, noID), &got); err != nil || got.HasExeID || got.ExeID != (ExeID{}) {
		t.Fatalf("record without exe id: %v %v %+v", err, got.HasExeID, got.ExeID)
	}
}

func TestConnectAddresses(t *testing.T) {
	var got Event
	if _, err := Decode(AppendEvent(nil, connectEvent(AFInet)), &got); err != nil {
		t.Fatal(err)
	}
	if r, l := got.Connect.Remote(), got.Connect.Local(); r.String() != "10.0.0.1" || l.String() != "10.0.0.2" {
		t.Fatalf("ipv4 remote %v local %v", r, l)
	}
	if _, err := Decode(AppendEvent(nil, connectEvent(AFInet6)), &got); err != nil {
		t.Fatal(err)
	}
	if r := got.Connect.Remote(); r.String() != "2001:db8::1" {
		t.Fatalf("ipv6 remote %v", r)
	}
	c := Connect{Family: 1}
	if c.Remote().IsValid() {
		t.Fatal("unknown family gave a valid address")
	}
}

func TestRecordLenExcludesFinalPadding(t *testing.T) {
	ev := &Event{Type: TypeExecve}
	ev.Fields[FieldExe] = Field{Present: true, Value: []byte("abc")}
	rec := AppendEvent(nil, ev)
	n, committed, err := RecordLen(rec)
	if err != nil || !committed {
		t.Fatal(err, committed)
	}
	if want := eventSize + fieldHdrSize + 3; n != want || len(rec) != eventSize+fieldHdrSize+8 {
		t.Fatalf("len %d (want %d), occupies %d", n, want, len(rec))
	}
	// The ring may hand over exactly len bytes: decoding must not need the
	// padding.
	var got Event
	if _, err := Decode(rec[:n], &got); err != nil || string(got.Fields[FieldExe].Value) != "abc" {
		t.Fatalf("decode of unpadded record: %v %q", err, got.Fields[FieldExe].Value)
	}
}

func TestUnknownFieldIDsSkipped(t *testing.T) {
	ev := execEvent()
	rec := AppendEvent(nil, ev, RawField{ID: 999, Value: []byte("future")}, RawField{ID: 0, Value: []byte("zero")})
	var got Event
	kind, err := Decode(rec, &got)
	if err != nil || kind != KindEvent {
		t.Fatal(kind, err)
	}
	if got.Skipped != 2 {
		t.Fatalf("Skipped = %d, want 2", got.Skipped)
	}
	sameEvent(t, &got, ev)
}

func TestLostAndSkippedRecords(t *testing.T) {
	var ev Event
	kind, err := Decode(AppendLost(nil, 12345), &ev)
	if err != nil || kind != KindLost || ev.Lost != 12345 {
		t.Fatalf("lost: %v %v %d", kind, err, ev.Lost)
	}
	rec := func(lenBits uint32, typ uint16, size int) []byte {
		b := make([]byte, size)
		binary.LittleEndian.PutUint32(b, uint32(size)|lenBits)
		binary.LittleEndian.PutUint16(b[4:], typ)
		return b
	}
	for name, r := range map[string][]byte{
		"pad":               rec(recDiscard, TypePad, 64),
		"discarded execve":  rec(recDiscard, TypeExecve, 8),
		"test record":       rec(0, TypeTest, 24),
		"unknown type":      rec(0, 4242, 16),
		"unknown type tiny": rec(0, 7, 8),
	} {
		kind, err := Decode(r, &ev)
		if err != nil || kind != KindSkip {
			t.Errorf("%s: Decode = %v, %v; want skip", name, kind, err)
		}
	}
}

func TestCorruptRecords(t *testing.T) {
	good := AppendEvent(nil, execEvent())
	le := binary.LittleEndian
	mod := func(f func(b []byte) []byte) []byte {
		return f(append([]byte(nil), good...))
	}
	cases := map[string][]byte{
		"empty":            nil,
		"short header":     good[:7],
		"busy":             mod(func(b []byte) []byte { le.PutUint32(b, le.Uint32(b)|recBusy); return b }),
		"len below header": mod(func(b []byte) []byte { le.PutUint32(b, 4); return b }),
		"len above max":    mod(func(b []byte) []byte { le.PutUint32(b, MaxRecord+8); return b }),
		"len past slice":   mod(func(b []byte) []byte { le.PutUint32(b, uint32(len(b)+8)); return b }),
		"event too short":  mod(func(b []byte) []byte { le.PutUint32(b, 40); return b }),
		"too many fields":  mod(func(b []byte) []byte { le.PutUint16(b[88:], 200); return b }),
		"field overruns":   mod(func(b []byte) []byte { le.PutUint32(b[eventSize+4:], 1<<31); return b }),
		"lost too short":   {8, 0, 0, 0, 1, 0, 0, 0},
		"connect too short": func() []byte {
			ev := &Event{Type: TypeConnect}
			ev.Fields[FieldConnectID] = Field{Present: true, Value: make([]byte, 10)}
			return AppendEvent(nil, ev)
		}(),
	}
	for name, rec := range cases {
		var ev Event
		kind, err := Decode(rec, &ev)
		if !errors.Is(err, ErrCorrupt) || kind != KindSkip {
			t.Errorf("%s: Decode = %v, %v; want ErrCorrupt", name, kind, err)
		}
	}
	// Every truncation of a valid record whose len is rewritten to match
	// must be an error or a clean decode, never a panic.
	for n := recHdrSize; n < len(good); n++ {
		b := append([]byte(nil), good[:n]...)
		le.PutUint32(b, uint32(n))
		var ev Event
		if kind, err := Decode(b, &ev); err == nil && kind != KindEvent {
			t.Fatalf("truncated to %d: kind %v without error", n, kind)
		}
	}
}

func TestDecodeDoesNotAllocate(t *testing.T) {
	rec := AppendEvent(nil, execEvent())
	conn := AppendEvent(nil, connectEvent(AFInet6))
	var ev Event
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := Decode(rec, &ev); err != nil {
			t.Fatal(err)
		}
		if _, err := Decode(conn, &ev); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Decode allocates %v times per call", allocs)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(AppendEvent(nil, execEvent()))
	f.Add(AppendEvent(nil, execIDEvent()))
	f.Add(AppendEvent(nil, connectEvent(AFInet6)))
	f.Add(AppendLost(nil, 3))
	f.Add(AppendEvent(nil, execEvent(), RawField{ID: 50, Value: []byte("x")}))
	f.Fuzz(func(t *testing.T, rec []byte) {
		var ev Event
		kind, err := Decode(rec, &ev)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		if kind != KindEvent {
			return
		}
		// A decoded event rebuilds into a record that decodes the same.
		again := AppendEvent(nil, &ev)
		var ev2 Event
		if k, err := Decode(again, &ev2); err != nil || k != KindEvent {
			t.Fatalf("rebuilt record: %v %v", k, err)
		}
		ev.Skipped = 0
		sameEvent(t, &ev2, &ev)
	})
}

func BenchmarkDecodeExecve(b *testing.B) {
	rec := AppendEvent(nil, execEvent())
	var ev Event
	b.ReportAllocs()
	b.SetBytes(int64(len(rec)))
	for b.Loop() {
		if _, err := Decode(rec, &ev); err != nil {
			b.Fatal(err)
		}
	}
}
