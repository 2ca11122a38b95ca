//go:build vmtest

package kerneltest

import (
	"fmt"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"smith/shm"
)

// netlinkHello opens a socket of the module's protocol and registers it.
func netlinkHello() (int, error) {
	s, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, shm.NetlinkProto)
	if err != nil {
		return -1, fmt.Errorf("netlink socket, protocol %d: %w", shm.NetlinkProto, err)
	}
	if err := syscall.Bind(s, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		syscall.Close(s)
		return -1, fmt.Errorf("netlink bind: %w", err)
	}
	hello := make([]byte, syscall.NLMSG_HDRLEN)
	h := (*syscall.NlMsghdr)(unsafe.Pointer(&hello[0]))
	h.Len = uint32(len(hello))
	h.Type = shm.NlmsgHello
	h.Seq = 1
	if err := syscall.Sendto(s, hello, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		syscall.Close(s)
		return -1, fmt.Errorf("netlink hello: %w", err)
	}
	return s, nil
}

// readRecords reads netlink messages until want records arrived or the
// socket stays silent for a second.
func readRecords(t *testing.T, s int, want int) [][]byte {
	t.Helper()
	tv := syscall.NsecToTimeval(int64(time.Second))
	if err := syscall.SetsockoptTimeval(s, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	var recs [][]byte
	buf := make([]byte, 1<<17)
	for len(recs) < want {
		n, _, err := syscall.Recvfrom(s, buf, 0)
		if err != nil {
			break
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			t.Fatalf("parse netlink messages: %v", err)
		}
		for _, m := range msgs {
			if m.Header.Type != shm.NlmsgRecord {
				t.Fatalf("netlink message type %#x, want %#x", m.Header.Type, shm.NlmsgRecord)
			}
			recs = append(recs, append([]byte(nil), m.Data...))
		}
	}
	return recs
}

func TestNetlinkDeliversTestRecords(t *testing.T) {
	load(t, "send_type=1")
	d := open(t)
	if in := d.info(t); in.Transport != shm.TransportNetlink {
		t.Fatalf("transport %d, want %d", in.Transport, shm.TransportNetlink)
	}

	// Nobody registered yet: every record fails, and is counted.
	if n := d.emit(t, 1, 3, 64, 0); n != 0 {
		t.Fatalf("emit without a netlink listener wrote %d records", n)
	}
	if st := d.stats(t); st.NetlinkFailed != 3 || st.NetlinkSent != 0 {
		t.Fatalf("netlink sent %d failed %d, want 0 3", st.NetlinkSent, st.NetlinkFailed)
	}
	if got := debugfsStat(t, "recording"); got != "0" {
		t.Fatalf("recording %s before the netlink hello, want 0", got)
	}

	s, err := netlinkHello()
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(s)
	if got := debugfsStat(t, "recording"); got != "1" {
		t.Fatalf("recording %s after the netlink hello, want 1", got)
	}

	lengths := []uint32{24, 77, 1000, 4096}
	for i, l := range lengths {
		if n := d.emit(t, 9, 1, l, uint64(i)); n != 1 {
			t.Fatalf("emit of %d bytes sent %d records", l, n)
		}
	}
	recs := readRecords(t, s, len(lengths))
	if len(recs) != len(lengths) {
		t.Fatalf("got %d records, want %d", len(recs), len(lengths))
	}
	for i, r := range recs {
		if len(r) != int(lengths[i]) {
			t.Errorf("record %d: message of %d bytes, want %d", i, len(r), lengths[i])
		}
		if err := checkTestRecord(r, lengths[i], 9, uint64(i)); err != nil {
			t.Errorf("record %d: %v", i, err)
		}
	}
	st := d.stats(t)
	if st.NetlinkSent != uint64(len(lengths)) || st.NetlinkFailed != 3 {
		t.Errorf("netlink sent %d failed %d, want %d 3", st.NetlinkSent, st.NetlinkFailed, len(lengths))
	}
	if st.Written != 0 || st.ProducerPos != 0 {
		t.Errorf("netlink mode wrote into the ring: written %d producer_pos %d", st.Written, st.ProducerPos)
	}
}

func TestNetlinkHelloNeedsPrivilege(t *testing.T) {
	load(t, "send_type=1")
	d := open(t)
	asNobody(t, "netlink-hello-as-nobody")
	if got := debugfsStat(t, "recording"); got != "0" {
		t.Fatalf("recording %s after an unprivileged hello, want 0", got)
	}
	if n := d.emit(t, 1, 1, 64, 0); n != 0 {
		t.Fatalf("an unprivileged hello registered a listener: %d records sent", n)
	}
}

func TestNetlinkListenerGoneStopsSending(t *testing.T) {
	load(t, "send_type=1", "record_without_reader=0")
	d := open(t)
	s, err := netlinkHello()
	if err != nil {
		t.Fatal(err)
	}
	if n := d.emit(t, 1, 1, 64, 0); n != 1 {
		t.Fatalf("emit with a listener sent %d", n)
	}
	syscall.Close(s)
	if got := debugfsStat(t, "recording"); got != "0" {
		t.Fatalf("recording %s after the listener closed with record_without_reader=0", got)
	}
	if n := d.emit(t, 1, 1, 64, 1); n != 0 {
		t.Fatalf("emit after the listener closed sent %d", n)
	}
}

func TestUnloadRefusedWhileNetlinkSocketOpen(t *testing.T) {
	if err := insmod("send_type=1"); err != nil {
		t.Fatal(err)
	}
	s, err := netlinkHello()
	if err != nil {
		rmmodWait()
		t.Fatal(err)
	}
	if err := rmmod(); !isBusy(err) {
		syscall.Close(s)
		t.Fatalf("rmmod with a netlink socket open: %v, want EWOULDBLOCK or EBUSY", err)
	}
	syscall.Close(s)
	if err := rmmodWait(); err != nil {
		t.Fatalf("rmmod after closing the netlink socket: %v", err)
	}
}

func TestNoNetlinkProtocolInShmMode(t *testing.T) {
	load(t)
	s, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, shm.NetlinkProto)
	if err == nil {
		syscall.Close(s)
		t.Fatalf("netlink protocol %d exists with send_type=2", shm.NetlinkProto)
	}
}
