package encode

import (
	"bytes"
	"strconv"

	"smith/agent/decode"
)

// ECS (Elastic Common Schema 8.x) mapping.  Fields ECS has no name for go
// under "smith" with their smith-format names.

// ecsVersion is the ECS version the events follow (ecs.version).
const ecsVersion = "8.11.0"

// ecsHead is what follows @timestamp in every ECS event.
const ecsHead = `,"ecs":{"version":"` + ecsVersion + `"}`

// ecsEvents are the event object's members from category to action, by
// the event's place in decode.Events (then one for an unknown type),
// built from the table.
var ecsEvents = func() (heads [len(decode.Events) + 1][]byte) {
	for i, info := range decode.Events {
		b := appendString(nil, info.ECSCategory)
		b = append(b, `],"type":[`...)
		for j, t := range info.ECSType {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendString(b, t)
		}
		b = append(b, `],"action":`...)
		heads[i] = appendString(b, info.Name)
	}
	heads[len(decode.Events)] = []byte(`],"type":["info"],"action":"unknown"`)
	return heads
}()

// ecsEvent returns the ecsEvents entry of a record type.
func ecsEvent(t uint16) []byte {
	for i := range decode.Events {
		if decode.Events[i].Type == t {
			return ecsEvents[i]
		}
	}
	return ecsEvents[len(decode.Events)]
}

func (e *Encoder) appendECS(dst []byte, ev *decode.Event, m *Meta) []byte {
	dst = append(dst, `{"@timestamp":`...)
	dst = appendTime(dst, int64(ev.TimeNs))
	dst = append(dst, ecsHead...)
	dst = append(dst, `,"event":{"kind":"event","category":[`...)
	dst = append(dst, ecsEvent(ev.Type)...)
	if ev.Result < 0 {
		dst = append(dst, `,"outcome":"failure"`...)
	} else {
		dst = append(dst, `,"outcome":"success"`...)
	}
	dst = appendUintField(dst, "sequence", m.Seq)
	dst = append(dst, `,"code":"`...)
	dst = strconv.AppendUint(dst, uint64(ev.Type), 10)
	dst = append(dst, `"},`...)
	dst = append(dst, *e.hostJSON.Load()...)
	dst = appendECSProcess(dst, ev, m)
	dst = appendECSUser(dst, ev, m)
	if m.ContainerID != "" {
		dst = append(dst, `,"container":{"id":`...)
		dst = appendString(dst, m.ContainerID)
		if m.ContainerName != "" {
			dst = appendStrField(dst, "name", m.ContainerName)
		}
		if m.ContainerRuntime != "" {
			dst = appendStrField(dst, "runtime", m.ContainerRuntime)
		}
		dst = append(dst, '}')
	}
	dst = appendECSOrchestrator(dst, m)
	if ev.HasConnect {
		dst = appendECSNetwork(dst, &ev.Connect)
	}
	return e.appendECSSmith(dst, ev, m)
}

// appendECSProcess appends the process object: the caller, its parent
// and the fields of decode.Fields placed under process.
func appendECSProcess(dst []byte, ev *decode.Event, m *Meta) []byte {
	dst = append(dst, `,"process":{"pid":`...)
	dst = strconv.AppendUint(dst, uint64(ev.Tgid), 10)
	dst = append(dst, `,"thread":{"id":`...)
	dst = strconv.AppendUint(dst, uint64(ev.Pid), 10)
	dst = append(dst, `},"parent":{"pid":`...)
	dst = strconv.AppendUint(dst, uint64(ev.Ppid), 10)
	dst = appendECSParent(dst, m)
	dst = append(dst, `},"group_leader":{"pid":`...)
	dst = strconv.AppendUint(dst, uint64(ev.Pgid), 10)
	dst = append(dst, `},"session_leader":{"pid":`...)
	dst = strconv.AppendUint(dst, uint64(ev.Sid), 10)
	dst = append(dst, '}')
	dst = appendStrField(dst, "name", ev.Comm)
	if f := ev.Fields[decode.FieldExe]; f.Present {
		dst = appendStrField(dst, "executable", f.Value)
	}
	dst = appendECSHash(dst, m)
	if f := ev.Fields[decode.FieldArgv]; f.Present {
		dst = appendKey(dst, "args")
		dst = appendArgs(dst, f.Value)
		dst = appendUintField(dst, "args_count", uint64(countArgs(f.Value)))
		dst = appendKey(dst, "command_line")
		dst = appendCommandLine(dst, f.Value)
	}
	if f := ev.Fields[decode.FieldCwd]; f.Present {
		dst = appendStrField(dst, "working_directory", f.Value)
	}
	// process.user is the effective user (ECS), the real one is
	// process.real_user; the name is the real user's.
	dst = append(dst, `,"user":{"id":"`...)
	dst = strconv.AppendUint(dst, uint64(ev.EUID), 10)
	dst = append(dst, '"')
	if m.Username != "" && ev.EUID == ev.UID {
		dst = appendStrField(dst, "name", m.Username)
	}
	dst = append(dst, `},"real_user":`...)
	dst = appendECSRealUser(dst, ev, m)
	return append(dst, "}}"...)
}

// appendECSRealUser appends {"id":"<uid>","name":...: the real user,
// left open.
func appendECSRealUser(dst []byte, ev *decode.Event, m *Meta) []byte {
	dst = append(dst, `{"id":"`...)
	dst = strconv.AppendUint(dst, uint64(ev.UID), 10)
	dst = append(dst, '"')
	if m.Username != "" {
		dst = appendStrField(dst, "name", m.Username)
	}
	return dst
}

// appendECSUser appends the user (real, with the effective one) and group.
func appendECSUser(dst []byte, ev *decode.Event, m *Meta) []byte {
	dst = append(dst, `,"user":`...)
	dst = appendECSRealUser(dst, ev, m)
	dst = append(dst, `,"effective":{"id":"`...)
	dst = strconv.AppendUint(dst, uint64(ev.EUID), 10)
	dst = append(dst, `"}},"group":{"id":"`...)
	dst = strconv.AppendUint(dst, uint64(ev.GID), 10)
	return append(dst, `"}`...)
}

// appendECSNetwork appends source, destination and network of a connect.
func appendECSNetwork(dst []byte, c *decode.Connect) []byte {
	// An address of an unknown family has no ip (ECS: an IP or
	// nothing), only the port; smith.sa_family says which it was.
	dst = append(dst, `,"source":{`...)
	dst = appendECSAddr(dst, c, false)
	dst = appendUintField(dst, "port", uint64(c.LocalPort))
	dst = append(dst, `},"destination":{`...)
	dst = appendECSAddr(dst, c, true)
	dst = appendUintField(dst, "port", uint64(c.RemotePort))
	dst = append(dst, `},"network":{"transport":`...)
	dst = appendProtocol(dst, c.Protocol)
	switch c.Family {
	case decode.AFInet:
		dst = append(dst, `,"type":"ipv4"`...)
	case decode.AFInet6:
		dst = append(dst, `,"type":"ipv6"`...)
	}
	return append(dst, '}')
}

// appendECSSmith appends the smith object: what ECS has no field for,
// with smith-format names, and closes the event.
func (e *Encoder) appendECSSmith(dst []byte, ev *decode.Event, m *Meta) []byte {
	dst = append(dst, `,"smith":{"data_type":"`...)
	dst = strconv.AppendUint(dst, uint64(ev.Type), 10)
	dst = append(dst, '"')
	dst = e.appendSeq(dst, m.Seq)
	dst = appendIntField(dst, "res", ev.Result)
	dst = appendUintField(dst, "pid_ns", uint64(ev.PidNS))
	dst = appendUintField(dst, "mnt_ns", uint64(ev.MntNS))
	dst = appendUintField(dst, "cgroup_id", ev.CgroupID)
	dst = appendUintField(dst, "cpu", uint64(ev.CPU))
	dst = appendRecordFlags(dst, ev.Flags)
	dst = appendECSSmithContext(dst, m)
	for id := range ev.Fields {
		f := &ev.Fields[id]
		if !f.Present || uint16(id) == decode.FieldConnectID {
			continue
		}
		if decode.Fields[id].ECS != "" {
			// Written outside smith; only the exact bytes when they
			// differ.
			dst = appendB64(dst, id, f.Value)
		} else {
			dst = appendPathField(dst, id, f.Value)
		}
		dst = appendFieldFlags(dst, id, f.Flags)
	}
	if ev.HasConnect {
		dst = appendIntField(dst, "fd", int64(ev.Connect.FD))
		dst = appendUintField(dst, "sa_family", uint64(ev.Connect.Family))
	}
	return append(dst, "}}"...)
}

// appendECSAddr appends "ip" when the address is one.
func appendECSAddr(dst []byte, c *decode.Connect, remote bool) []byte {
	a := c.Local()
	if remote {
		a = c.Remote()
	}
	if !a.IsValid() {
		return dst
	}
	dst = append(dst, `"ip":"`...)
	dst = appendIP(dst, a)
	return append(dst, '"')
}

// countArgs is the length of the args array appendArgs writes.
func countArgs(argv []byte) int {
	if len(argv) == 0 {
		return 0
	}
	return bytes.Count(trimArgv(argv), nul) + 1
}
