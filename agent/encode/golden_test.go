// SPDX-License-Identifier: GPL-2.0

package encode

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"smith/agent/decode"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the encoder's output")

// goldenEvents are events of every type and shape, each encoded in both
// formats; testdata/<format>.golden holds the output, one event a line,
// so any change to the bytes of an event shows in the diff.
func goldenEvents() []struct {
	ev *decode.Event
	m  *Meta
} {
	full := &Meta{Seq: 42, Username: "alice", ContainerID: "c0ffee", ContainerName: "web", PodName: "web-0",
		ContainerRuntime: "containerd", PodNamespace: "default", PodUID: "uid-1", ExeHash: "abcd",
		Ancestors: []Ancestor{{Pid: 1, StartNs: 5, Exe: "/sbin/init", Args: []byte("init\x00splash"), ArgsTruncated: true}, {Pid: 0, Exe: "/x"}}}
	bad := execEvent("ls\x00\xff\x00")
	bad.Fields[decode.FieldExe] = decode.Field{Present: true, Value: []byte("/bin/\xfe"), Flags: decode.FieldFault}
	bad.Fields[decode.FieldCwd] = decode.Field{Present: true, Value: []byte("/\xfe")}
	bad.Fields[decode.FieldTTY] = decode.Field{Present: true, Value: []byte("p\xfe"), Flags: decode.FieldTruncated | decode.FieldFault}
	bad.Flags = 0x7f
	v4 := connectEvent()
	v4.Connect.Family, v4.Connect.Protocol = decode.AFInet, 17
	v4.Connect.RemoteAddr, v4.Connect.LocalAddr = [16]byte{127, 1, 2, 3}, [16]byte{10, 0, 0, 1}
	other := connectEvent()
	other.Connect.Family, other.Connect.Protocol = 1, 99
	other.Flags = decode.FlagFastOpen
	init := moduleEvent()
	init.Type = decode.TypeInitModule
	unknown := execEvent("a")
	unknown.Type = 7
	return []struct {
		ev *decode.Event
		m  *Meta
	}{
		{execEvent("ls\x00-l\x00"), &Meta{Seq: 1}},
		{execEvent("ls\x00-l"), full},
		{execEvent(""), &Meta{Seq: 2, Username: "root", ExeHashStatus: HashPending}},
		{bad, &Meta{Seq: 3}},
		{connectEvent(), &Meta{Seq: 4, ContainerID: "c1"}},
		{v4, &Meta{Seq: 5}},
		{other, &Meta{Seq: 6}},
		{moduleEvent(), &Meta{Seq: 7}},
		{init, &Meta{Seq: 8}},
		{unknown, &Meta{Seq: 9}},
	}
}

func TestGolden(t *testing.T) {
	for _, f := range []Format{FormatSmith, FormatECS} {
		e, err := New(f, testHost)
		if err != nil {
			t.Fatal(err)
		}
		e.SetStream("s1")
		var out []byte
		for _, g := range goldenEvents() {
			out = append(e.AppendEvent(out, g.ev, g.m), '\n')
		}
		out = append(e.AppendLost(out, 10, 3, 1700000000000000001), '\n')
		it := &TaskItem{TaskID: "t1", Kind: "listen", Fields: [][2]string{{"port", "22"}, {"proto", "tcp"}}}
		out = append(e.AppendTaskItem(out, 11, 1700000000000000002, it), '\n')
		path := filepath.Join("testdata", string(f)+".golden")
		if *update {
			if err := os.WriteFile(path, out, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to write it)", err)
		}
		if !bytes.Equal(out, want) {
			gl, wl := bytes.Split(out, []byte("\n")), bytes.Split(want, []byte("\n"))
			for i := range min(len(gl), len(wl)) {
				if !bytes.Equal(gl[i], wl[i]) {
					t.Fatalf("%s line %d differs:\n got %s\nwant %s", f, i+1, gl[i], wl[i])
				}
			}
			t.Fatalf("%s: %d lines, want %d", f, len(gl), len(wl))
		}
	}
}

// TestEventTableNames encodes an event of every type in decode.Events
// with all its fields and checks both formats write the table's names:
// data_type and ECS event.code, action, category and type, and each field
// under its smith name or its ECS place.
func TestEventTableNames(t *testing.T) {
	for i := range decode.Events {
		info := &decode.Events[i]
		ev := &decode.Event{Type: info.Type, Comm: []byte("c")}
		ids := append(append([]uint16(nil), decode.CommonFields...), info.Fields...)
		for _, id := range ids {
			ev.Fields[id] = decode.Field{Present: true, Value: []byte("v")}
			if id == decode.FieldConnectID {
				ev.HasConnect = true
				ev.Connect = decode.Connect{Family: decode.AFInet, Protocol: 6}
			}
		}
		smith := encodeJSON(t, FormatSmith, ev, &Meta{Seq: 1})
		ecs := encodeJSON(t, FormatECS, ev, &Meta{Seq: 1})
		if smith["data_type"] != info.DataType || get(ecs, "smith.data_type") != info.DataType || get(ecs, "event.code") != info.DataType {
			t.Errorf("%s: data_type %v / %v / code %v, want %s", info.Name, smith["data_type"], get(ecs, "smith.data_type"), get(ecs, "event.code"), info.DataType)
		}
		if get(ecs, "event.action") != info.Name || !jsonEqual(get(ecs, "event.category"), []any{info.ECSCategory}) {
			t.Errorf("%s: ECS action %v, category %v", info.Name, get(ecs, "event.action"), get(ecs, "event.category"))
		}
		types := []any{}
		for _, ty := range info.ECSType {
			types = append(types, ty)
		}
		if !jsonEqual(get(ecs, "event.type"), types) {
			t.Errorf("%s: ECS type %v, want %v", info.Name, get(ecs, "event.type"), types)
		}
		for _, id := range ids {
			f := decode.Fields[id]
			if id != decode.FieldConnectID && smith[f.Name] == nil {
				t.Errorf("%s: smith format has no %q", info.Name, f.Name)
			}
			place := "smith." + f.Name
			if f.ECS != "" {
				place = f.ECS
			}
			if get(ecs, place) == nil {
				t.Errorf("%s: ECS format has nothing at %s", info.Name, place)
			}
		}
	}
}
