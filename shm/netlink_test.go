//go:build !vmtest

package shm

import (
	"encoding/binary"
	"errors"
	"testing"
)

// nlmsg frames payload as one netlink message of type typ, padded to 4.
func nlmsg(typ uint16, payload []byte) []byte {
	const hdr = 16
	b := make([]byte, (hdr+len(payload)+3)&^3)
	binary.NativeEndian.PutUint32(b[0:], uint32(hdr+len(payload)))
	binary.NativeEndian.PutUint16(b[4:], typ)
	copy(b[hdr:], payload)
	return b
}

func TestNetlinkParsesADatagram(t *testing.T) {
	lost := make([]byte, SizeofLost)
	binary.LittleEndian.PutUint32(lost, uint32(SizeofLost))
	binary.LittleEndian.PutUint16(lost[4:], uint16(RecLost))
	binary.LittleEndian.PutUint64(lost[8:], 7)
	rec := testRec(77, 3, 9)
	binary.LittleEndian.PutUint32(rec, 77)
	var dgram []byte
	dgram = append(dgram, nlmsg(NlmsgRecord, rec)...)
	dgram = append(dgram, nlmsg(0x3, []byte{1, 2, 3})...) // another type: skipped
	dgram = append(dgram, nlmsg(NlmsgRecord, lost)...)

	n := &Netlink{msgs: dgram}
	r, ok, err := n.parse()
	if err != nil || !ok || r.Type != RecTest || len(r.Raw) != 77 || r.Pos != 0 {
		t.Fatalf("first: %+v ok %v err %v", r, ok, err)
	}
	r, ok, err = n.parse()
	if err != nil || !ok || r.Type != RecLost || r.Pos != uint64(RecAlign(77)) {
		t.Fatalf("second: %+v ok %v err %v", r, ok, err)
	}
	if _, ok, err := n.parse(); ok || err != nil {
		t.Fatalf("after the last message: ok %v err %v", ok, err)
	}
	want := NetlinkStats{Records: 2, LostRecords: 1, Lost: 7, Skipped: 1}
	if n.Stats() != want {
		t.Fatalf("stats %+v, want %+v", n.Stats(), want)
	}
}

func TestNetlinkRejectsBadMessages(t *testing.T) {
	short := testRec(24, 0, 0)
	binary.LittleEndian.PutUint32(short, 32) // says 32, message holds 24
	trunc := nlmsg(NlmsgRecord, testRec(24, 0, 0))
	binary.NativeEndian.PutUint32(trunc, 200) // message longer than the datagram
	for name, dgram := range map[string][]byte{
		"record longer than its message": nlmsg(NlmsgRecord, short),
		"message longer than datagram":   trunc,
		"message shorter than a header":  nlmsg(NlmsgRecord, []byte{1, 2, 3}),
	} {
		n := &Netlink{msgs: dgram}
		if _, ok, err := n.parse(); ok || !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: ok %v err %v, want ErrCorrupt", name, ok, err)
		}
	}
}
