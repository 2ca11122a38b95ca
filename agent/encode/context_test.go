// SPDX-License-Identifier: GPL-2.0

package encode

import (
	"encoding/json"
	"testing"

	"smith/agent/decode"
)

func contextMeta() *Meta {
	return &Meta{Seq: 3, ContainerID: "c1", ContainerName: "web", ContainerRuntime: "containerd",
		PodName: "web-7d4", PodNamespace: "shop", PodUID: "0b7c2a34-1111-2222-3333-444455556666",
		ExeHash: "ab12", Ancestors: []Ancestor{
			{Pid: 1, StartNs: 1700000000000000000, Exe: "/bin/bash", Args: []byte("bash\x00-c\x00ls -l\x00"), ArgsTruncated: true},
			{Pid: 2, StartNs: 1600000000000000000, Exe: "/usr/sbin/sshd"},
		}}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, _ := json.Marshal(v)
	return string(b)
}

func TestSmithContextFields(t *testing.T) {
	v := encodeJSON(t, FormatSmith, execEvent("ls\x00"), contextMeta())
	for k, want := range map[string]string{
		"parent_exe": `"/bin/bash"`, "parent_argv": `"bash -c ls -l"`, "parent_args": `["bash","-c","ls -l"]`,
		"parent_args_truncated": `true`, "parent_start_time_ns": `1700000000000000000`,
		"ancestors": `[{"exe":"/bin/bash","pid":1,"start_time_ns":1700000000000000000},{"exe":"/usr/sbin/sshd","pid":2,"start_time_ns":1600000000000000000}]`,
		"exe_hash":  `"ab12"`, "container_runtime": `"containerd"`,
		"pod_namespace": `"shop"`, "pod_uid": `"0b7c2a34-1111-2222-3333-444455556666"`,
	} {
		if got := jsonOf(t, v[k]); got != want {
			t.Errorf("%s = %s, want %s", k, got, want)
		}
	}
	if _, ok := v["exe_hash_status"]; ok {
		t.Error("exe_hash_status present with a hash")
	}
	m := &Meta{ExeHashStatus: HashPending}
	v = encodeJSON(t, FormatSmith, execEvent("ls\x00"), m)
	if v["exe_hash_status"] != "pending" || v["exe_hash"] != nil || v["parent_exe"] != nil || v["ancestors"] != nil {
		t.Errorf("no context: exe_hash_status %v exe_hash %v parent_exe %v ancestors %v", v["exe_hash_status"], v["exe_hash"], v["parent_exe"], v["ancestors"])
	}
}

func TestECSContextFields(t *testing.T) {
	v := encodeJSON(t, FormatECS, execEvent("ls\x00"), contextMeta())
	for k, want := range map[string]string{
		"process.parent.pid":          `1`,
		"process.parent.executable":   `"/bin/bash"`,
		"process.parent.args":         `["bash","-c","ls -l"]`,
		"process.parent.args_count":   `3`,
		"process.parent.command_line": `"bash -c ls -l"`,
		"process.parent.start":        `"2023-11-14T22:13:20Z"`,
		"process.hash.sha256":         `"ab12"`,
		"smith.ancestors":             `[{"executable":"/bin/bash","pid":1,"start":"2023-11-14T22:13:20Z"},{"executable":"/usr/sbin/sshd","pid":2,"start":"2020-09-13T12:26:40Z"}]`,
		"smith.parent_args_truncated": `true`,
		"container.runtime":           `"containerd"`,
		"orchestrator.namespace":      `"shop"`,
		"orchestrator.resource.name":  `"web-7d4"`,
		"orchestrator.resource.id":    `"0b7c2a34-1111-2222-3333-444455556666"`,
		"orchestrator.resource.type":  `"pod"`,
		"smith.exe_hash_status":       `null`,
	} {
		if got := jsonOf(t, get(v, k)); got != want {
			t.Errorf("%s = %s, want %s", k, got, want)
		}
	}
	v = encodeJSON(t, FormatECS, execEvent("ls\x00"), &Meta{ExeHashStatus: HashTooLarge})
	if get(v, "smith.exe_hash_status") != "too_large" || get(v, "process.hash") != nil || get(v, "process.parent.executable") != nil {
		t.Errorf("no context: %v %v", get(v, "smith.exe_hash_status"), get(v, "process.hash"))
	}
}

func TestContextDoesNotAllocate(t *testing.T) {
	for _, f := range []Format{FormatSmith, FormatECS} {
		e, _ := New(f, testHost)
		m := contextMeta()
		ev := execEvent("ls\x00-l\x00")
		buf := make([]byte, 0, 8192)
		if allocs := testing.AllocsPerRun(100, func() { buf = e.AppendEvent(buf[:0], ev, m) }); allocs != 0 {
			t.Errorf("%s: %v allocations per event with context", f, allocs)
		}
	}
}

// A Meta reused for events in a row keeps the JSON of the last ancestry:
// every event must still come out as with a fresh Meta, whether the
// ancestry is the same, another one, changed in place (same backing
// bytes, other content), shorter, longer or gone.
func TestAncestryCacheMatchesFreshEncoding(t *testing.T) {
	args := []byte("python3\x00-m\x00http.server\x00")
	chainA := []Ancestor{{Pid: 10, StartNs: 100, Exe: "/usr/bin/python3", Args: args}, {Pid: 1, StartNs: 5, Exe: "/sbin/init"}}
	chainB := []Ancestor{{Pid: 11, StartNs: 100, Exe: "/usr/bin/python3", Args: args, ArgsTruncated: true}}
	chainC := []Ancestor{{Pid: 10 + cacheSlots, StartNs: 100, Exe: "/usr/bin/python3", Args: args}} // chainA's slot
	steps := []func(m *Meta){
		func(m *Meta) { m.Ancestors = chainA },
		func(m *Meta) { m.Ancestors = chainA },
		func(m *Meta) { m.Ancestors = chainB },
		func(m *Meta) { m.Ancestors = chainA },
		func(m *Meta) { m.Ancestors = chainC },
		func(m *Meta) { m.Ancestors = chainB },
		func(m *Meta) { m.Ancestors = chainA },
		func(m *Meta) { copy(args, "PYTHON3"); m.Ancestors = chainA }, // same bytes, new content
		func(m *Meta) { m.Ancestors = chainA[:1] },
		func(m *Meta) { m.Ancestors = nil },
		func(m *Meta) { chainA[1].Exe = "/usr/lib/systemd/systemd"; m.Ancestors = chainA },
		func(m *Meta) { chainA[1].StartNs = 6; m.Ancestors = chainA },
		func(m *Meta) { m.Ancestors = append([]Ancestor(nil), chainA...) },
	}
	for _, f := range []Format{FormatSmith, FormatECS} {
		checkReusedMeta(t, f, steps, func() []*decode.Event { return []*decode.Event{execEvent("ls\x00-l\x00"), connectEvent()} })
	}
}

// checkReusedMeta applies each step to one reused Meta, then checks that
// every event of evs encodes with it as with a fresh Meta of the same
// user name and ancestry.
func checkReusedMeta(t *testing.T, f Format, steps []func(*Meta), evs func() []*decode.Event) {
	t.Helper()
	e, err := New(f, testHost)
	if err != nil {
		t.Fatal(err)
	}
	var reused Meta
	for i, step := range steps {
		step(&reused)
		reused.Seq = uint64(i)
		fresh := Meta{Seq: uint64(i), Username: reused.Username, Ancestors: reused.Ancestors}
		for _, ev := range evs() {
			want := string(e.AppendEvent(nil, ev, &fresh))
			if got := string(e.AppendEvent([]byte("x"), ev, &reused)[1:]); got != want {
				t.Fatalf("%s step %d: reused Meta gave\n%s\nwant\n%s", f, i, got, want)
			}
		}
	}
}

// The same for the process members a reused Meta keeps (uid to
// cgroup_id): each event as with a fresh Meta whatever changed.
func TestProcessCacheMatchesFreshEncoding(t *testing.T) {
	ev := connectEvent()
	comm := []byte("curl")
	ev.Comm = comm
	steps := []func(m *Meta){
		func(m *Meta) {},
		func(m *Meta) {},
		func(m *Meta) { m.Username = "alice" },
		func(m *Meta) { ev.UID = 1000 },
		func(m *Meta) { ev.EUID, ev.GID = 1, 2 },
		func(m *Meta) { ev.Pid, ev.Tgid, ev.Ppid = 8, 8, 7 },
		func(m *Meta) { ev.Tgid += cacheSlots }, // the same slot
		func(m *Meta) { ev.Tgid -= cacheSlots },
		func(m *Meta) { ev.Pgid, ev.Sid = 3, 4 },
		func(m *Meta) { copy(comm, "wget") }, // same bytes, new content
		func(m *Meta) { ev.Comm = comm[:2] },
		func(m *Meta) { ev.Result = 0 },
		func(m *Meta) { ev.PidNS, ev.MntNS, ev.CgroupID = 5, 6, 7 },
		func(m *Meta) { m.Username = "" },
		func(m *Meta) { ev.CPU, ev.TimeNs = 3, 999_999 },
	}
	checkReusedMeta(t, FormatSmith, steps, func() []*decode.Event { return []*decode.Event{ev} })
}
