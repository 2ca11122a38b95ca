//go:build vmtest

package kerneltest

import (
	"errors"
	"syscall"
	"testing"
	"time"

	"smith/internal/kmodtest"
	"smith/shm"
)

// readRecords reads records until want arrived or the socket stays
// silent for a second; a message of another type fails the test.
func readRecords(t *testing.T, nl *shm.Netlink, want int) [][]byte {
	t.Helper()
	var recs [][]byte
	for len(recs) < want {
		nl.SetDeadline(time.Now().Add(time.Second))
		rec, err := nl.Read()
		if errors.Is(err, shm.ErrDeadline) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, append([]byte(nil), rec.Raw...))
	}
	if n := nl.Stats().Skipped; n != 0 {
		t.Fatalf("%d netlink messages of another type than %#x", n, shm.NlmsgRecord)
	}
	return recs
}

func TestNetlinkDeliversTestRecords(t *testing.T) {
	kmodtest.LoadT(t, "send_type=1")
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

	s, err := shm.DialNetlink()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
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
	kmodtest.LoadT(t, "send_type=1")
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
	kmodtest.LoadT(t, "send_type=1", "record_without_reader=0")
	d := open(t)
	s, err := shm.DialNetlink()
	if err != nil {
		t.Fatal(err)
	}
	if n := d.emit(t, 1, 1, 64, 0); n != 1 {
		t.Fatalf("emit with a listener sent %d", n)
	}
	s.Close()
	if got := debugfsStat(t, "recording"); got != "0" {
		t.Fatalf("recording %s after the listener closed with record_without_reader=0", got)
	}
	if n := d.emit(t, 1, 1, 64, 1); n != 0 {
		t.Fatalf("emit after the listener closed sent %d", n)
	}
}

func TestUnloadRefusedWhileNetlinkSocketOpen(t *testing.T) {
	if err := kmodtest.Load("send_type=1"); err != nil {
		t.Fatal(err)
	}
	s, err := shm.DialNetlink()
	if err != nil {
		kmodtest.Unload()
		t.Fatal(err)
	}
	if err := kmodtest.TryUnload(); !kmodtest.IsBusy(err) {
		s.Close()
		t.Fatalf("rmmod with a netlink socket open: %v, want EWOULDBLOCK or EBUSY", err)
	}
	s.Close()
	if err := kmodtest.Unload(); err != nil {
		t.Fatalf("rmmod after closing the netlink socket: %v", err)
	}
}

func TestNoNetlinkProtocolInShmMode(t *testing.T) {
	kmodtest.LoadT(t)
	s, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, shm.NetlinkProto)
	if err == nil {
		syscall.Close(s)
		t.Fatalf("netlink protocol %d exists with send_type=2", shm.NetlinkProto)
	}
}
