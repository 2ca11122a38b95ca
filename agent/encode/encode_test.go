package encode

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"smith/agent/decode"
	"smith/internal/harness"
)

var testHost = Host{Name: "web-1", IPs: []string{"10.0.0.5", "fe80::1"}}

func execEvent(argv string) *decode.Event {
	ev := &decode.Event{
		Type: decode.TypeExecve, Flags: decode.FlagExecveat,
		TimeNs: 1700000000123456789, Result: 0,
		Pid: 101, Tgid: 100, Ppid: 1, Pgid: 100, Sid: 1,
		UID: 1000, EUID: 0, GID: 1000, PidNS: 4026531836, MntNS: 4026531841,
		CgroupID: 77, Comm: []byte("bash"), CPU: 1,
	}
	set := func(id uint16, v string, flags uint16) {
		ev.Fields[id] = decode.Field{Value: []byte(v), Flags: flags, Present: true}
	}
	set(decode.FieldExe, "/usr/bin/ls", 0)
	set(decode.FieldNodename, "web-1", 0)
	set(decode.FieldFilename, "/bin/ls", 0)
	set(decode.FieldArgv, argv, decode.FieldTruncated)
	set(decode.FieldCwd, "/root", 0)
	set(decode.FieldStdin, "/dev/pts/0", 0)
	set(decode.FieldStdout, "pipe:[1234]", 0)
	set(decode.FieldTTY, "pts0", 0)
	return ev
}

func connectEvent() *decode.Event {
	ev := &decode.Event{Type: decode.TypeConnect, TimeNs: 1700000000000000000, Pid: 7, Tgid: 7, Comm: []byte("curl"), Result: -111, HasConnect: true}
	ev.Connect = decode.Connect{Family: decode.AFInet6, Protocol: 6, FD: 3, RemotePort: 443, LocalPort: 50000,
		RemoteAddr: netip.MustParseAddr("2001:db8::1").As16(), LocalAddr: netip.MustParseAddr("::1").As16()}
	return ev
}

func moduleEvent() *decode.Event {
	ev := &decode.Event{Type: decode.TypeFinitModule, TimeNs: 1, Pid: 9, Tgid: 9, Comm: []byte("insmod"), Result: -1}
	ev.Fields[decode.FieldModName] = decode.Field{Present: true, Value: []byte("dummy")}
	ev.Fields[decode.FieldModPath] = decode.Field{Present: true, Value: []byte("/tmp/dummy.ko")}
	ev.Fields[decode.FieldModParams] = decode.Field{Present: true, Value: []byte("numdummies=2")}
	return ev
}

func encodeJSON(t testing.TB, f Format, ev *decode.Event, m *Meta) map[string]any {
	t.Helper()
	e, err := New(f, testHost)
	if err != nil {
		t.Fatal(err)
	}
	out := e.AppendEvent(nil, ev, m)
	var v map[string]any
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("%s output is not JSON: %v\n%s", f, err, out)
	}
	return v
}

// get walks a dotted path through nested objects.
var get = harness.Lookup

func TestSmithFormatFields(t *testing.T) {
	m := &Meta{Seq: 42, Username: "alice", ContainerID: "abc123", ContainerName: "web", PodName: "web-7d4"}
	for _, tc := range []struct {
		ev   *decode.Event
		want map[string]any
	}{
		{execEvent("ls\x00-l\x00a \"b\"\\\n\x00"), map[string]any{
			"data_type": "59", "seq": 42.0, "time": 1700000000123.0, "time_ns": 1700000000123456789.0,
			"hostname": "web-1", "local_ip": "10.0.0.5", "uid": 1000.0, "euid": 0.0, "gid": 1000.0,
			"username": "alice", "pid": 101.0, "tgid": 100.0, "ppid": 1.0, "pgid": 100.0, "sid": 1.0,
			"comm": "bash", "res": 0.0, "pid_ns": 4026531836.0, "mnt_ns": 4026531841.0, "cgroup_id": 77.0,
			"container_id": "abc123", "container_name": "web", "pod_name": "web-7d4",
			"execveat": true, "exe": "/usr/bin/ls", "nodename": "web-1", "filename": "/bin/ls",
			"argv": "ls -l a \"b\"\\\n", "args": []any{"ls", "-l", "a \"b\"\\\n"}, "argv_truncated": true,
			"cwd": "/root", "stdin": "/dev/pts/0", "stdout": "pipe:[1234]", "tty": "pts0",
		}},
		{connectEvent(), map[string]any{
			"data_type": "42", "comm": "curl", "res": -111.0, "sa_family": 10.0, "protocol": "tcp", "fd": 3.0,
			"sip": "::1", "sport": 50000.0, "dip": "2001:db8::1", "dport": 443.0,
		}},
		{moduleEvent(), map[string]any{
			"data_type": "313", "mod_name": "dummy", "mod_path": "/tmp/dummy.ko", "mod_params": "numdummies=2", "res": -1.0,
		}},
		{func() *decode.Event {
			ev := connectEvent()
			ev.Flags = decode.FlagNoResult | decode.FlagRestart | decode.FlagFastOpen
			return ev
		}(), map[string]any{
			"data_type": "42", "res_unknown": true, "restarted": true, "fastopen": true,
		}},
	} {
		v := encodeJSON(t, FormatSmith, tc.ev, m)
		for k, want := range tc.want {
			if got := v[k]; !jsonEqual(got, want) {
				t.Errorf("data_type %v: %s = %#v, want %#v", tc.want["data_type"], k, got, want)
			}
		}
		if _, ok := v["argv_b64"]; ok {
			t.Errorf("argv_b64 present for valid UTF-8")
		}
	}
}

func TestECSFormatFields(t *testing.T) {
	m := &Meta{Seq: 7, Username: "alice", ContainerID: "abc123", PodName: "web-7d4"}
	v := encodeJSON(t, FormatECS, execEvent("ls\x00-l\x00"), m)
	for path, want := range map[string]any{
		"@timestamp": "2023-11-14T22:13:20.123456789Z", "event.action": "execve", "event.sequence": 7.0,
		"event.outcome": "success", "host.name": "web-1", "host.ip": []any{"10.0.0.5", "fe80::1"},
		"process.pid": 100.0, "process.thread.id": 101.0, "process.parent.pid": 1.0,
		"process.name": "bash", "process.executable": "/usr/bin/ls", "process.args": []any{"ls", "-l"},
		"process.args_count": 2.0, "process.command_line": "ls -l", "process.working_directory": "/root",
		"user.id": "1000", "user.name": "alice", "user.effective.id": "0", "group.id": "1000",
		"container.id": "abc123", "orchestrator.resource.name": "web-7d4",
		"smith.data_type": "59", "smith.seq": 7.0, "smith.stdin": "/dev/pts/0", "smith.nodename": "web-1",
		// ECS: process.user is the effective user, the real one is
		// process.real_user; ecs.version is there; the tty is not an
		// ECS field (process.tty is an object of other fields).
		"ecs.version": ecsVersion, "process.user.id": "0", "process.user.name": nil,
		"process.real_user.id": "1000", "process.real_user.name": "alice",
		"process.tty": nil, "smith.tty": "pts0",
	} {
		if got := get(v, path); !jsonEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", path, got, want)
		}
	}
	v = encodeJSON(t, FormatECS, connectEvent(), m)
	for path, want := range map[string]any{
		"event.action": "connect", "event.outcome": "failure", "source.ip": "::1", "source.port": 50000.0,
		"destination.ip": "2001:db8::1", "destination.port": 443.0, "network.transport": "tcp",
		"network.type": "ipv6", "smith.res": -111.0,
	} {
		if got := get(v, path); !jsonEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", path, got, want)
		}
	}
	// An address family the agent does not know: no ip at all (ECS wants
	// an address or nothing), the ports and smith.sa_family stay.
	ev := connectEvent()
	ev.Connect.Family = 40
	v = encodeJSON(t, FormatECS, ev, m)
	for path, want := range map[string]any{
		"source.ip": nil, "destination.ip": nil, "destination.port": 443.0, "smith.sa_family": 40.0,
	} {
		if got := get(v, path); !jsonEqual(got, want) {
			t.Errorf("unknown family: %s = %#v, want %#v", path, got, want)
		}
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestLostAndTaskEvents(t *testing.T) {
	for _, f := range []Format{FormatSmith, FormatECS} {
		e, _ := New(f, testHost)
		var v map[string]any
		out := e.AppendLost(nil, 9, 1234, 1700000000000000000)
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("%s lost: %v %s", f, err, out)
		}
		lost, seq := v["lost"], v["seq"]
		if f == FormatECS {
			lost, seq = get(v, "smith.lost"), get(v, "smith.seq")
		}
		if lost != 1234.0 || seq != 9.0 {
			t.Errorf("%s lost event: %s", f, out)
		}
		out = e.AppendTaskItem(nil, 10, 1, &TaskItem{TaskID: "t1", Kind: "users", Fields: [][2]string{{"name", "root"}, {"uid", "0"}}})
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("%s task: %v %s", f, err, out)
		}
		if f == FormatSmith && (v["data_type"] != "detection_module" || v["name"] != "root" || v["task_kind"] != "users") {
			t.Errorf("task event: %s", out)
		}
	}
	if _, err := New("xml", testHost); err == nil {
		t.Fatal("unknown format accepted")
	}
}

// recoverArgv rebuilds argv bytes (without the final NUL terminator) from
// an event, the way docs/EVENTS.md tells a consumer to.
func recoverArgv(t testing.TB, v map[string]any, b64 any, args any) []byte {
	t.Helper()
	if s, ok := b64.(string); ok {
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(raw); n > 0 && raw[n-1] == 0 {
			raw = raw[:n-1]
		}
		return raw
	}
	var parts []string
	for _, a := range args.([]any) {
		parts = append(parts, a.(string))
	}
	return []byte(strings.Join(parts, "\x00"))
}

func TestInvalidUTF8(t *testing.T) {
	ev := execEvent("a\xff\x00b\xc3\x00")
	ev.Fields[decode.FieldExe].Value = []byte("/tmp/\xfe")
	v := encodeJSON(t, FormatSmith, ev, &Meta{})
	if v["exe"] != "/tmp/\ufffd" || v["exe_b64"] != base64.StdEncoding.EncodeToString([]byte("/tmp/\xfe")) {
		t.Errorf("exe %q exe_b64 %q", v["exe"], v["exe_b64"])
	}
	if got := recoverArgv(t, v, v["argv_b64"], v["args"]); string(got) != "a\xff\x00b\xc3" {
		t.Errorf("argv recovered as %q", got)
	}
	if !jsonEqual(v["args"], []any{"a\ufffd", "b\ufffd"}) {
		t.Errorf("args = %#v", v["args"])
	}
}

func FuzzEncodeArgv(f *testing.F) {
	f.Add([]byte("ls\x00-l\x00"), []byte("/bin/ls"))
	f.Add([]byte("\xff\xfe\x00\"\\\x01\x7f"), []byte("\xc3"))
	f.Add([]byte{}, []byte{})
	f.Add([]byte("\x00\x00"), []byte("\u2028"))
	f.Fuzz(func(t *testing.T, argv, path []byte) {
		ev := execEvent("")
		ev.Fields[decode.FieldArgv].Value = argv
		ev.Fields[decode.FieldCwd].Value = path
		ev.Comm = path
		for _, format := range []Format{FormatSmith, FormatECS} {
			e, _ := New(format, testHost)
			out := e.AppendEvent(nil, ev, &Meta{Username: string(path)})
			var v map[string]any
			if err := json.Unmarshal(out, &v); err != nil {
				t.Fatalf("%s: invalid JSON %v: %q", format, err, out)
			}
			b64, args := v["argv_b64"], v["args"]
			if format == FormatECS {
				b64, args = get(v, "smith.argv_b64"), get(v, "process.args")
			}
			want := argv
			if n := len(want); n > 0 && want[n-1] == 0 {
				want = want[:n-1]
			}
			if got := recoverArgv(t, v, b64, args); !bytes.Equal(got, want) {
				t.Fatalf("%s: argv %q recovered as %q", format, argv, got)
			}
		}
	})
}

func TestEncodeDoesNotAllocate(t *testing.T) {
	for _, f := range []Format{FormatSmith, FormatECS} {
		e, _ := New(f, testHost)
		m := &Meta{Seq: 1, Username: "root", ContainerID: "abc"}
		buf := make([]byte, 0, 8192)
		evs := []*decode.Event{execEvent("ls\x00-l\x00"), connectEvent(), moduleEvent()}
		allocs := testing.AllocsPerRun(100, func() {
			for _, ev := range evs {
				buf = e.AppendEvent(buf[:0], ev, m)
			}
			buf = e.AppendLost(buf[:0], 1, 2, 3)
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per run", f, allocs)
		}
	}
}

func BenchmarkEncodeExec(b *testing.B) {
	for _, f := range []Format{FormatSmith, FormatECS} {
		b.Run(string(f), func(b *testing.B) {
			e, _ := New(f, testHost)
			ev := execEvent("/usr/bin/python3\x00-m\x00http.server\x008080\x00")
			m := &Meta{Seq: 1, Username: "root"}
			buf := make([]byte, 0, 4096)
			b.ReportAllocs()
			for b.Loop() {
				buf = e.AppendEvent(buf[:0], ev, m)
			}
			b.SetBytes(int64(len(buf)))
		})
	}
}

// Every numbered event carries the stream beside its seq, and SetHost
// changes the host of the events that follow.
func TestStreamAndHostInEveryEvent(t *testing.T) {
	for _, f := range []Format{FormatSmith, FormatECS} {
		e, _ := New(f, testHost)
		e.SetStream("00112233445566ff")
		e.SetHost(Host{Name: "renamed", IPs: []string{"192.0.2.7"}})
		for kind, out := range map[string][]byte{
			"exec": e.AppendEvent(nil, execEvent("ls\x00"), &Meta{Seq: 3}),
			"lost": e.AppendLost(nil, 4, 1, 1),
			"task": e.AppendTaskItem(nil, 5, 1, &TaskItem{TaskID: "t", Kind: "users"}),
		} {
			var v map[string]any
			if err := json.Unmarshal(out, &v); err != nil {
				t.Fatalf("%s %s: %v %s", f, kind, err, out)
			}
			stream, host := v["stream"], v["hostname"]
			if f == FormatECS {
				stream, host = get(v, "smith.stream"), get(v, "host.name")
			}
			if stream != "00112233445566ff" || host != "renamed" {
				t.Errorf("%s %s: stream %v host %v: %s", f, kind, stream, host, out)
			}
		}
	}
}
