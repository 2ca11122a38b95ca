package decode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// ErrCorrupt is wrapped by every error about a malformed record.
var ErrCorrupt = errors.New("corrupt record")

// Kind says what Decode found.
type Kind uint8

const (
	// KindSkip: nothing to report (pad, discarded, test or unknown type).
	KindSkip Kind = iota
	// KindEvent: an event record; Event holds its header and fields.
	KindEvent
	// KindLost: a "lost N" record; Event.Lost holds N.
	KindLost
)

// Field is one decoded TLV field.  Value points into the record.
type Field struct {
	Value   []byte
	Flags   uint16
	Present bool
}

// Connect is struct smith_connect_info.
type Connect struct {
	Family     uint16 // AF_INET (2) or AF_INET6 (10)
	Protocol   uint16 // IPPROTO_TCP (6), IPPROTO_UDP (17), ...
	FD         int32
	RemoteAddr [16]byte // IPv4 in the first 4 bytes
	LocalAddr  [16]byte
	RemotePort uint16
	LocalPort  uint16
}

// Address families of Connect.Family.
const (
	AFInet  = 2
	AFInet6 = 10
)

// Remote is the remote address; invalid for an unknown family.
func (c *Connect) Remote() netip.Addr { return c.addr(&c.RemoteAddr) }

// Local is the local address after the call; invalid for an unknown family.
func (c *Connect) Local() netip.Addr { return c.addr(&c.LocalAddr) }

func (c *Connect) addr(a *[16]byte) netip.Addr {
	switch c.Family {
	case AFInet:
		return netip.AddrFrom4([4]byte(a[:4]))
	case AFInet6:
		return netip.AddrFrom16(*a)
	}
	return netip.Addr{}
}

// ExeID is struct smith_exe_id: the identity of the file a successful
// exec loaded, as the kernel read it from the inode (ABI 1.2).  A failed
// exec carries zeros.
type ExeID struct {
	Dev       uint32 // st_dev encoding of the superblock's device
	Ino       uint64
	Size      int64
	MtimeSec  int64
	MtimeNsec uint32
	CtimeSec  int64
	CtimeNsec uint32
}

// Event is a decoded record.  Byte slices point into the record bytes.
type Event struct {
	Type  uint16 // TypeExecve, TypeConnect, ...
	Flags uint16 // FlagTruncated, FlagFault, FlagExecveat, FlagCompat

	// Lost is the number of records dropped, for KindLost.
	Lost uint64

	TimeNs   uint64 // CLOCK_REALTIME
	Result   int64  // syscall return value, -errno on error
	Pid      uint32 // thread id
	Tgid     uint32 // process id
	Ppid     uint32
	Pgid     uint32
	Sid      uint32
	UID      uint32
	EUID     uint32
	GID      uint32
	PidNS    uint32
	MntNS    uint32
	CgroupID uint64
	Comm     []byte // without the NUL padding
	CPU      uint16

	// Fields by id; ids this decoder does not know are counted in Skipped.
	Fields [maxFieldID + 1]Field
	// Connect is the parsed FieldConnectID, when present.
	Connect    Connect
	HasConnect bool
	// ExeID is the parsed FieldExeID, when HasExeID (a module of ABI
	// 1.2 or later, exec events).  It is not in Fields.
	ExeID    ExeID
	HasExeID bool
	Skipped  int
}

// Field returns the field with the given id (zero Field if absent or
// unknown).
func (ev *Event) Field(id uint16) Field {
	if int(id) < len(ev.Fields) {
		return ev.Fields[id]
	}
	return Field{}
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

// RecordLen returns the length of the record that starts rec (header
// included, without alignment padding) and whether it is complete
// (committed).  It checks only the header.
func RecordLen(rec []byte) (n int, committed bool, err error) {
	if len(rec) < recHdrSize {
		return 0, false, corrupt("%d bytes, shorter than a record header", len(rec))
	}
	raw := binary.LittleEndian.Uint32(rec)
	n = int(raw & recLenMask)
	if n < recHdrSize || n > MaxRecord {
		return 0, false, corrupt("record length %d outside [%d, %d]", n, recHdrSize, MaxRecord)
	}
	return n, raw&recBusy == 0, nil
}

// Decode decodes the record at the start of rec into ev, overwriting all of
// it.  rec may be longer than the record (trailing bytes are ignored).
func Decode(rec []byte, ev *Event) (Kind, error) {
	*ev = Event{}
	if len(rec) < recHdrSize {
		return KindSkip, corrupt("%d bytes, shorter than a record header", len(rec))
	}
	raw := binary.LittleEndian.Uint32(rec)
	if raw&recBusy != 0 {
		return KindSkip, corrupt("record still busy (uncommitted)")
	}
	n := int(raw & recLenMask)
	if n < recHdrSize || n > MaxRecord || n > len(rec) {
		return KindSkip, corrupt("record length %d outside [%d, %d]", n, recHdrSize, min(MaxRecord, len(rec)))
	}
	rec = rec[:n]
	ev.Type = binary.LittleEndian.Uint16(rec[offType:])
	ev.Flags = binary.LittleEndian.Uint16(rec[offFlags:])
	if raw&recDiscard != 0 {
		return KindSkip, nil
	}
	if ev.Type == TypeLost {
		if n < lostSize {
			return KindSkip, corrupt("lost record of %d bytes, want %d", n, lostSize)
		}
		ev.Lost = binary.LittleEndian.Uint64(rec[offLostCount:])
		return KindLost, nil
	}
	if EventByType(ev.Type) == nil {
		return KindSkip, nil // pad, test, or a type of a newer module
	}
	if err := decodeEvent(rec, ev); err != nil {
		return KindSkip, err
	}
	return KindEvent, nil
}

func decodeEvent(rec []byte, ev *Event) error {
	if len(rec) < eventSize {
		return corrupt("event type %d of %d bytes, shorter than the %d-byte event header", ev.Type, len(rec), eventSize)
	}
	le := binary.LittleEndian
	ev.TimeNs = le.Uint64(rec[offTimeNs:])
	ev.Result = int64(le.Uint64(rec[offResult:]))
	ev.Pid = le.Uint32(rec[offPid:])
	ev.Tgid = le.Uint32(rec[offTgid:])
	ev.Ppid = le.Uint32(rec[offPpid:])
	ev.Pgid = le.Uint32(rec[offPgid:])
	ev.Sid = le.Uint32(rec[offSid:])
	ev.UID = le.Uint32(rec[offUID:])
	ev.EUID = le.Uint32(rec[offEUID:])
	ev.GID = le.Uint32(rec[offGID:])
	ev.PidNS = le.Uint32(rec[offPidNS:])
	ev.MntNS = le.Uint32(rec[offMntNS:])
	ev.CgroupID = le.Uint64(rec[offCgroupID:])
	comm := rec[offComm : offComm+commSize]
	for i, c := range comm {
		if c == 0 {
			comm = comm[:i]
			break
		}
	}
	ev.Comm = comm
	nfields := int(le.Uint16(rec[offNFields:]))
	ev.CPU = le.Uint16(rec[offCPU:])

	off := eventSize
	for i := 0; i < nfields; i++ {
		if len(rec)-off < fieldHdrSize {
			return corrupt("event type %d: field %d of %d header at offset %d past record end %d", ev.Type, i, nfields, off, len(rec))
		}
		id := le.Uint16(rec[off+offFieldID:])
		flags := le.Uint16(rec[off+offFieldFlags:])
		vlen := le.Uint32(rec[off+offFieldLen:])
		off += fieldHdrSize
		if uint64(vlen) > uint64(len(rec)-off) {
			return corrupt("event type %d: field id %d length %d overruns record (%d bytes left)", ev.Type, id, vlen, len(rec)-off)
		}
		val := rec[off : off+int(vlen) : off+int(vlen)]
		// The last field's padding lies beyond len; clamp.
		off = min(off+(int(vlen)+7)&^7, len(rec))
		if id == 0 || id > maxFieldID {
			ev.Skipped++
			continue
		}
		if id == FieldExeID {
			if err := decodeExeID(val, ev); err != nil {
				return err
			}
			continue
		}
		ev.Fields[id] = Field{Value: val, Flags: flags, Present: true}
		if id == FieldConnectID {
			if len(val) < connectSize {
				return corrupt("event type %d: connect field of %d bytes, want %d", ev.Type, len(val), connectSize)
			}
			c := &ev.Connect
			c.Family = le.Uint16(val[offFamily:])
			c.Protocol = le.Uint16(val[offProtocol:])
			c.FD = int32(le.Uint32(val[offFD:]))
			copy(c.RemoteAddr[:], val[offRemoteAddr:offRemoteAddr+addrSize])
			copy(c.LocalAddr[:], val[offLocalAddr:offLocalAddr+addrSize])
			c.RemotePort = le.Uint16(val[offRemotePort:])
			c.LocalPort = le.Uint16(val[offLocalPort:])
			ev.HasConnect = true
		}
	}
	return nil
}

// decodeExeID parses a FieldExeID value; a longer value (a later minor
// version) is read for the part this decoder knows.
func decodeExeID(val []byte, ev *Event) error {
	if len(val) < exeIDSize {
		return corrupt("event type %d: exe id field of %d bytes, want %d", ev.Type, len(val), exeIDSize)
	}
	le := binary.LittleEndian
	ev.ExeID = ExeID{
		Dev:       le.Uint32(val[offExeDev:]),
		Ino:       le.Uint64(val[offExeIno:]),
		Size:      int64(le.Uint64(val[offExeSize:])),
		MtimeSec:  int64(le.Uint64(val[offExeMtimeSec:])),
		MtimeNsec: le.Uint32(val[offExeMtimeNsec:]),
		CtimeSec:  int64(le.Uint64(val[offExeCtimeSec:])),
		CtimeNsec: le.Uint32(val[offExeCtimeNsec:]),
	}
	ev.HasExeID = true
	return nil
}
