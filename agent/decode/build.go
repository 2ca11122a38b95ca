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
// HasConnect is set), then extra, each padded to 8 bytes.  The record's len
// excludes the final padding, as in the ring.  Lost and Skipped are
// ignored.
func AppendEvent(dst []byte, ev *Event, extra ...RawField) []byte {
	le := binary.LittleEndian
	start := len(dst)
	var hdr [eventSize]byte
	le.PutUint16(hdr[4:], ev.Type)
	le.PutUint16(hdr[6:], ev.Flags)
	le.PutUint64(hdr[8:], ev.TimeNs)
	le.PutUint64(hdr[16:], uint64(ev.Result))
	for i, v := range [...]uint32{ev.Pid, ev.Tgid, ev.Ppid, ev.Pgid, ev.Sid, ev.UID, ev.EUID, ev.GID, ev.PidNS, ev.MntNS} {
		le.PutUint32(hdr[24+4*i:], v)
	}
	le.PutUint64(hdr[64:], ev.CgroupID)
	copy(hdr[72:72+commSize], ev.Comm)
	le.PutUint16(hdr[90:], ev.CPU)
	dst = append(dst, hdr[:]...)

	nfields, end := 0, len(dst)
	var conn [connectSize]byte
	for id := uint16(1); id <= maxFieldID; id++ {
		f := ev.Fields[id]
		if id == FieldConnectID && ev.HasConnect {
			c := &ev.Connect
			le.PutUint16(conn[0:], c.Family)
			le.PutUint16(conn[2:], c.Protocol)
			le.PutUint32(conn[4:], uint32(c.FD))
			copy(conn[8:24], c.RemoteAddr[:])
			copy(conn[24:40], c.LocalAddr[:])
			le.PutUint16(conn[40:], c.RemotePort)
			le.PutUint16(conn[42:], c.LocalPort)
			f = Field{Value: conn[:], Flags: f.Flags, Present: true}
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
	le.PutUint16(dst[start+88:], uint16(nfields))
	le.PutUint32(dst[start:], uint32(end-start))
	return dst
}

// AppendLost appends a "lost N" record.
func AppendLost(dst []byte, count uint64) []byte {
	var rec [lostSize]byte
	le := binary.LittleEndian
	le.PutUint32(rec[0:], uint32(lostSize))
	le.PutUint16(rec[4:], TypeLost)
	le.PutUint64(rec[8:], count)
	return append(dst, rec[:]...)
}

// appendField appends one field padded to 8 bytes from start and returns
// the end of its value (the record's len when it is the last field).
func appendField(dst []byte, start int, id, flags uint16, v []byte) ([]byte, int) {
	var h [fieldHdrSize]byte
	binary.LittleEndian.PutUint16(h[0:], id)
	binary.LittleEndian.PutUint16(h[2:], flags)
	binary.LittleEndian.PutUint32(h[4:], uint32(len(v)))
	dst = append(dst, h[:]...)
	dst = append(dst, v...)
	end := len(dst)
	for (len(dst)-start)%8 != 0 {
		dst = append(dst, 0)
	}
	return dst, end
}
