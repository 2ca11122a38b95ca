package decode

import "encoding/binary"

// RawField is a field for AppendEvent beyond those in Event.Fields, for
// example an id this decoder does not know.
type RawField struct {
	ID    uint16
	Flags uint16
	Value []byte
}

// AppendEvent appends ev as the module writes it: struct smith_event, then
// the present fields in id order (the connect field from ev.Connect when
// HasConnect is set, the exe id from ev.ExeID when HasExeID), then extra, each padded to 8 bytes.  The record's len
// excludes the final padding, as in the ring.  Lost and Skipped are
// ignored.
func AppendEvent(dst []byte, ev *Event, extra ...RawField) []byte {
	le := binary.LittleEndian
	start := len(dst)
	var hdr [eventSize]byte
	le.PutUint16(hdr[offType:], ev.Type)
	le.PutUint16(hdr[offFlags:], ev.Flags)
	le.PutUint64(hdr[offTimeNs:], ev.TimeNs)
	le.PutUint64(hdr[offResult:], uint64(ev.Result))
	for _, f := range [...]struct {
		off int
		v   uint32
	}{
		{offPid, ev.Pid}, {offTgid, ev.Tgid}, {offPpid, ev.Ppid}, {offPgid, ev.Pgid}, {offSid, ev.Sid},
		{offUID, ev.UID}, {offEUID, ev.EUID}, {offGID, ev.GID}, {offPidNS, ev.PidNS}, {offMntNS, ev.MntNS},
	} {
		le.PutUint32(hdr[f.off:], f.v)
	}
	le.PutUint64(hdr[offCgroupID:], ev.CgroupID)
	copy(hdr[offComm:offComm+commSize], ev.Comm)
	le.PutUint16(hdr[offCPU:], ev.CPU)
	dst = append(dst, hdr[:]...)

	nfields, end := 0, len(dst)
	var conn [connectSize]byte
	var xid [exeIDSize]byte
	for id := uint16(1); id <= maxFieldID; id++ {
		f := ev.Fields[id]
		if id == FieldConnectID && ev.HasConnect {
			c := &ev.Connect
			le.PutUint16(conn[offFamily:], c.Family)
			le.PutUint16(conn[offProtocol:], c.Protocol)
			le.PutUint32(conn[offFD:], uint32(c.FD))
			copy(conn[offRemoteAddr:offRemoteAddr+addrSize], c.RemoteAddr[:])
			copy(conn[offLocalAddr:offLocalAddr+addrSize], c.LocalAddr[:])
			le.PutUint16(conn[offRemotePort:], c.RemotePort)
			le.PutUint16(conn[offLocalPort:], c.LocalPort)
			f = Field{Value: conn[:], Flags: f.Flags, Present: true}
		}
		if id == FieldExeID && ev.HasExeID {
			putExeID(&xid, &ev.ExeID)
			f = Field{Value: xid[:], Flags: f.Flags, Present: true}
		}
		if !f.Present {
			continue
		}
		dst, end = appendField(dst, start, id, f.Flags, f.Value)
		nfields++
	}
	for _, f := range extra {
		dst, end = appendField(dst, start, f.ID, f.Flags, f.Value)
		nfields++
	}
	le.PutUint16(dst[start+offNFields:], uint16(nfields))
	le.PutUint32(dst[start:], uint32(end-start))
	return dst
}

func putExeID(b *[exeIDSize]byte, x *ExeID) {
	le := binary.LittleEndian
	le.PutUint32(b[offExeDev:], x.Dev)
	le.PutUint64(b[offExeIno:], x.Ino)
	le.PutUint64(b[offExeSize:], uint64(x.Size))
	le.PutUint64(b[offExeMtimeSec:], uint64(x.MtimeSec))
	le.PutUint32(b[offExeMtimeNsec:], x.MtimeNsec)
	le.PutUint64(b[offExeCtimeSec:], uint64(x.CtimeSec))
	le.PutUint32(b[offExeCtimeNsec:], x.CtimeNsec)
}

// AppendLost appends a "lost N" record.
func AppendLost(dst []byte, count uint64) []byte {
	var rec [lostSize]byte
	le := binary.LittleEndian
	le.PutUint32(rec[0:], uint32(lostSize))
	le.PutUint16(rec[offType:], TypeLost)
	le.PutUint64(rec[offLostCount:], count)
	return append(dst, rec[:]...)
}

// appendField appends one field padded to 8 bytes from start and returns
// the end of its value (the record's len when it is the last field).
func appendField(dst []byte, start int, id, flags uint16, v []byte) ([]byte, int) {
	var h [fieldHdrSize]byte
	binary.LittleEndian.PutUint16(h[offFieldID:], id)
	binary.LittleEndian.PutUint16(h[offFieldFlags:], flags)
	binary.LittleEndian.PutUint32(h[offFieldLen:], uint32(len(v)))
	dst = append(dst, h[:]...)
	dst = append(dst, v...)
	end := len(dst)
	for (len(dst)-start)%8 != 0 {
		dst = append(dst, 0)
	}
	return dst, end
}
