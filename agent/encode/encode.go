// Package encode writes events as JSON into reused buffers: the flat
// `smith` format (the seed's field names) and `ecs` (Elastic Common Schema).
// docs/EVENTS.md lists every field of both.
//
// An Encoder appends to a caller-owned []byte and allocates nothing per
// event, so the reader can encode straight from a ring lease and keep only
// the JSON.  Output is valid JSON whatever bytes a record holds: invalid
// UTF-8 becomes U+FFFD and the exact bytes are added in base64 (argv_b64,
// exe_b64, ...), so argv and paths always round-trip.
package encode

import (
	"fmt"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"smith/agent/decode"
)

// Format names an output format.
type Format string

// The formats.
const (
	FormatSmith Format = "smith"
	FormatECS   Format = "ecs"
)

// Host is the identity stamped on every event.
type Host struct {
	Name string   // host name (os.Hostname)
	IPs  []string // local addresses, the primary one first
}

// Meta is what the agent adds to a record: its sequence number and what
// enrichment found.  Empty strings are left out of the event.
type Meta struct {
	// Seq numbers every event of this host: consecutive, never reused,
	// kept across restarts, so a consumer sees gaps and duplicates.
	Seq           uint64
	Username      string
	ContainerID   string
	ContainerName string
	PodName       string

	// Context (agent/enrich): container runtime and pod, the executable's
	// hash and the ancestry (context.go writes them).
	ContainerRuntime string
	PodNamespace     string
	PodUID           string
	ExeHash          string // sha256, hex; "" with ExeHashStatus saying why
	ExeHashStatus    string
	Ancestors        []Ancestor // [0] is the parent; empty when unknown

	// cache holds the JSON of the last process and ancestry encoded
	// with this Meta (context.go): reuse one Meta for the events of a
	// goroutine, never one Meta in two goroutines at once.
	cache *metaCache
}

// DataTypeTask is the data_type of asset-collection results.
const DataTypeTask = "detection_module"

// Encoder writes events in one format.  It is safe for concurrent use (it
// holds no per-event state).
type Encoder struct {
	format Format
	// hostJSON is the precomputed host part of every event (SetHost
	// replaces it while events are encoded).
	hostJSON atomic.Pointer[[]byte]
	// streamJSON is `,"stream":"<id>"` (SetStream), after every seq.
	streamJSON []byte
}

// New returns an encoder for the named format.
func New(format Format, host Host) (*Encoder, error) {
	if format != FormatSmith && format != FormatECS {
		return nil, fmt.Errorf("unknown event format %q (want %q or %q)", format, FormatSmith, FormatECS)
	}
	e := &Encoder{format: format}
	e.SetHost(host)
	return e, nil
}

// SetStream sets the stream id written beside every sequence number (see
// docs/EVENTS.md); call it before the first event.
func (e *Encoder) SetStream(id string) {
	e.streamJSON = appendString([]byte(`,"stream":`), id)
}

// appendSeq appends the "seq" and "stream" fields.
func (e *Encoder) appendSeq(dst []byte, seq uint64) []byte {
	dst = appendUintField(dst, "seq", seq)
	return append(dst, e.streamJSON...)
}

// SetHost changes the host name and addresses of the events encoded from
// now on (the agent refreshes them as the heartbeat does).
func (e *Encoder) SetHost(host Host) {
	var hostJSON []byte
	switch e.format {
	case FormatSmith:
		b := appendStrField([]byte{'{'}, "hostname", host.Name)
		primary := ""
		if len(host.IPs) > 0 {
			primary = host.IPs[0]
		}
		b = appendStrField(b, "local_ip", primary)
		hostJSON = b[1:]
	case FormatECS:
		b := append([]byte(nil), `"host":{"name":`...)
		b = appendString(b, host.Name)
		b = append(b, `,"hostname":`...)
		b = appendString(b, host.Name)
		b = append(b, `,"ip":[`...)
		for i, ip := range host.IPs {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, ip)
		}
		hostJSON = append(b, "]}"...)
	}
	e.hostJSON.Store(&hostJSON)
}

// Format is the encoder's format.
func (e *Encoder) Format() Format { return e.format }

// AppendEvent appends ev as one JSON object (no newline).
func (e *Encoder) AppendEvent(dst []byte, ev *decode.Event, m *Meta) []byte {
	if e.format == FormatECS {
		return e.appendECS(dst, ev, m)
	}
	return e.appendSmith(dst, ev, m)
}

// AppendLost appends the event that reports count records lost before they
// reached the agent (a "lost N" record of the ring), at timeNs.
func (e *Encoder) AppendLost(dst []byte, seq, count uint64, timeNs int64) []byte {
	return e.appendLost(dst, seq, count, timeNs, false, 0)
}

// AppendGap appends the lost event that reports a gap the reader skipped
// (shm.Resync): gap_bytes bytes of records given up, how many records
// unknown, so lost is 0.
func (e *Encoder) AppendGap(dst []byte, seq, gapBytes uint64, timeNs int64) []byte {
	return e.appendLost(dst, seq, 0, timeNs, true, gapBytes)
}

func (e *Encoder) appendLost(dst []byte, seq, count uint64, timeNs int64, gap bool, gapBytes uint64) []byte {
	end := "}"
	if e.format == FormatECS {
		dst = e.appendECSHead(dst, seq, timeNs, `"kind":"metric","action":"lost","dataset":"smith.lost"`, decode.DataTypeLost)
		end = "}}"
	} else {
		dst = e.appendSmithHead(dst, seq, timeNs, decode.DataTypeLost)
	}
	dst = appendUintField(dst, "lost", count)
	if gap {
		dst = appendUintField(dst, "gap_bytes", gapBytes)
	}
	return append(dst, end...)
}

// appendECSHead appends the start of an ECS event that is not a record:
// @timestamp, ecs, event (the members given, then sequence), host, and
// the smith object's data_type, seq and stream; the rest of smith follows.
func (e *Encoder) appendECSHead(dst []byte, seq uint64, timeNs int64, event, dataType string) []byte {
	dst = append(dst, `{"@timestamp":`...)
	dst = appendTime(dst, timeNs)
	dst = append(dst, ecsHead...)
	dst = append(dst, `,"event":{`...)
	dst = append(dst, event...)
	dst = append(dst, `,"sequence":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, "},"...)
	dst = append(dst, *e.hostJSON.Load()...)
	dst = append(dst, `,"smith":{"data_type":`...)
	dst = appendString(dst, dataType)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	return append(dst, e.streamJSON...)
}

// appendSmithHead appends a smith-format event that is not a record up to
// its own members: data_type, seq, stream, time and host.
func (e *Encoder) appendSmithHead(dst []byte, seq uint64, timeNs int64, dataType string) []byte {
	dst = append(dst, `{"data_type":`...)
	dst = appendString(dst, dataType)
	dst = e.appendSeq(dst, seq)
	dst = appendIntField(dst, "time", timeNs/1e6)
	dst = appendIntField(dst, "time_ns", timeNs)
	dst = append(dst, ',')
	return append(dst, *e.hostJSON.Load()...)
}

// TaskItem is one item of an asset-collection task result (one listening
// socket, one user, ...), shipped as a data_type "detection_module" event.
type TaskItem struct {
	TaskID string
	Kind   string
	// Fields are the item's properties, written in order.
	Fields [][2]string
}

// AppendTaskItem appends one task result item.  Not on the hot path.
func (e *Encoder) AppendTaskItem(dst []byte, seq uint64, timeNs int64, it *TaskItem) []byte {
	if e.format == FormatECS {
		event := appendString([]byte(`"kind":"state","action":`), it.Kind)
		event = append(event, `,"dataset":"smith.detection_module"`...)
		dst = e.appendECSHead(dst, seq, timeNs, string(event), DataTypeTask)
		return append(appendTaskFields(dst, it), "}}"...)
	}
	dst = e.appendSmithHead(dst, seq, timeNs, DataTypeTask)
	return append(appendTaskFields(dst, it), '}')
}

// appendTaskFields appends a task item's id, kind and fields.
func appendTaskFields(dst []byte, it *TaskItem) []byte {
	dst = appendStrField(dst, "task_id", it.TaskID)
	dst = appendStrField(dst, "task_kind", it.Kind)
	for _, f := range it.Fields {
		dst = appendStrField(dst, f[0], f[1])
	}
	return dst
}

// truncatedNames, faultNames and b64Names are the keys of a field's flags
// and exact bytes, by id (decode.Fields), precomputed so that writing them
// does not allocate.
var truncatedNames, faultNames, b64Names [len(decode.Fields)]string

func init() {
	for id, f := range decode.Fields {
		if f.Name != "" {
			truncatedNames[id] = f.Name + "_truncated"
			faultNames[id] = f.Name + "_fault"
			b64Names[id] = f.Name + "_b64"
		}
	}
}

func (e *Encoder) appendSmith(dst []byte, ev *decode.Event, m *Meta) []byte {
	dst = append(dst, `{"data_type":"`...)
	dst = strconv.AppendUint(dst, uint64(ev.Type), 10)
	dst = append(dst, '"')
	dst = e.appendSeq(dst, m.Seq)
	dst = appendTimeFields(dst, ev.TimeNs)
	dst = append(dst, ',')
	dst = append(dst, *e.hostJSON.Load()...)
	dst = m.appendSmithProcess(dst, ev)
	dst = appendUintField(dst, "cpu", uint64(ev.CPU))
	if m.ContainerID != "" {
		dst = appendStrField(dst, "container_id", m.ContainerID)
	}
	if m.ContainerName != "" {
		dst = appendStrField(dst, "container_name", m.ContainerName)
	}
	if m.PodName != "" {
		dst = appendStrField(dst, "pod_name", m.PodName)
	}
	dst = appendSmithContext(dst, m)
	dst = appendRecordFlags(dst, ev.Flags)
	for id := range ev.Fields {
		f := &ev.Fields[id]
		if !f.Present || uint16(id) == decode.FieldConnectID {
			continue
		}
		if uint16(id) == decode.FieldArgv {
			dst = appendKey(dst, "argv")
			dst = appendCommandLine(dst, f.Value)
			dst = appendKey(dst, "args")
			var valid bool
			dst, valid = appendArgsValid(dst, f.Value)
			dst = appendExact(dst, id, f.Value, valid)
		} else {
			dst = appendPathField(dst, id, f.Value)
		}
		dst = appendFieldFlags(dst, id, f.Flags)
	}
	if ev.HasConnect {
		c := &ev.Connect
		dst = appendUintField(dst, "sa_family", uint64(c.Family))
		dst = appendKey(dst, "protocol")
		dst = appendProtocol(dst, c.Protocol)
		dst = appendIntField(dst, "fd", int64(c.FD))
		dst = appendKey(dst, "sip")
		dst = appendAddr(dst, c, false)
		dst = appendUintField(dst, "sport", uint64(c.LocalPort))
		dst = appendKey(dst, "dip")
		dst = appendAddr(dst, c, true)
		dst = appendUintField(dst, "dport", uint64(c.RemotePort))
	}
	return append(dst, '}')
}

// appendTimeFields appends time (ms) and time_ns: the digits of ns once,
// time being them without the last six.
func appendTimeFields(dst []byte, ns uint64) []byte {
	var a [20]byte
	d := strconv.AppendUint(a[:0], ns, 10)
	dst = appendKey(dst, "time")
	if len(d) > 6 {
		dst = append(dst, d[:len(d)-6]...)
	} else {
		dst = append(dst, '0')
	}
	return append(appendKey(dst, "time_ns"), d...)
}

// appendSmithProcessFields appends the smith members of ev's process
// from uid to cgroup_id.
func appendSmithProcessFields(dst []byte, ev *decode.Event, username string) []byte {
	dst = appendUintField(dst, "uid", uint64(ev.UID))
	dst = appendUintField(dst, "euid", uint64(ev.EUID))
	dst = appendUintField(dst, "gid", uint64(ev.GID))
	if username != "" {
		dst = appendStrField(dst, "username", username)
	}
	dst = appendUintField(dst, "pid", uint64(ev.Pid))
	dst = appendUintField(dst, "tgid", uint64(ev.Tgid))
	dst = appendUintField(dst, "ppid", uint64(ev.Ppid))
	dst = appendUintField(dst, "pgid", uint64(ev.Pgid))
	dst = appendUintField(dst, "sid", uint64(ev.Sid))
	dst = appendStrField(dst, "comm", ev.Comm)
	dst = appendIntField(dst, "res", ev.Result)
	dst = appendUintField(dst, "pid_ns", uint64(ev.PidNS))
	dst = appendUintField(dst, "mnt_ns", uint64(ev.MntNS))
	return appendUintField(dst, "cgroup_id", ev.CgroupID)
}

func appendRecordFlags(dst []byte, flags uint16) []byte {
	if flags == 0 {
		return dst // the common case: no table walk
	}
	for _, f := range decode.RecordFlags {
		if flags&f.Flag != 0 {
			dst = appendBoolField(dst, f.Name, true)
		}
	}
	return dst
}

func appendFieldFlags(dst []byte, id int, flags uint16) []byte {
	if flags&decode.FieldTruncated != 0 {
		dst = appendBoolField(dst, truncatedNames[id], true)
	}
	if flags&decode.FieldFault != 0 {
		dst = appendBoolField(dst, faultNames[id], true)
	}
	return dst
}

func appendProtocol(dst []byte, p uint16) []byte {
	switch p {
	case 6:
		return append(dst, `"tcp"`...)
	case 17:
		return append(dst, `"udp"`...)
	case 1:
		return append(dst, `"icmp"`...)
	case 58:
		return append(dst, `"ipv6-icmp"`...)
	}
	dst = append(dst, '"')
	dst = strconv.AppendUint(dst, uint64(p), 10)
	return append(dst, '"')
}

// appendAddr appends the remote or local address as a JSON string ("" for
// an unknown family).
func appendAddr(dst []byte, c *decode.Connect, remote bool) []byte {
	a := c.Local()
	if remote {
		a = c.Remote()
	}
	dst = append(dst, '"')
	if a.IsValid() {
		dst = appendIP(dst, a)
	}
	return append(dst, '"')
}

// octets are the decimal forms of 0 to 255.
var octets = func() (o [256]string) {
	for i := range o {
		o[i] = strconv.Itoa(i)
	}
	return o
}()

// appendIP appends a as netip.Addr.AppendTo does, an IPv4 address by
// table (the common case; four lookups, not four conversions).
func appendIP(dst []byte, a netip.Addr) []byte {
	if !a.Is4() {
		return a.AppendTo(dst)
	}
	b := a.As4()
	dst = append(dst, octets[b[0]]...)
	dst = append(dst, '.')
	dst = append(dst, octets[b[1]]...)
	dst = append(dst, '.')
	dst = append(dst, octets[b[2]]...)
	dst = append(dst, '.')
	return append(dst, octets[b[3]]...)
}

func appendTime(dst []byte, ns int64) []byte {
	dst = append(dst, '"')
	dst = time.Unix(0, ns).UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"')
}
