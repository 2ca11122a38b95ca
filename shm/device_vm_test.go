//go:build vmtest

// Guest tests: shm against the real module, through the real mmap. They
// run inside the test VM as root (scripts/vm, the smoke scenario), load
// smith.ko (internal/kmodtest) with the parameters each needs, and leave
// it unloaded.

package shm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"smith/internal/kmodtest"
)

func TestMain(m *testing.M) {
	os.Exit(kmodtest.RunUnloaded(m))
}

func openDevice(t *testing.T) *Device {
	t.Helper()
	d, err := OpenDevice(DevicePath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func newDeviceReader(t *testing.T, d *Device) *Reader {
	t.Helper()
	rd, err := d.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rd.Close() })
	return rd
}

func emit(t *testing.T, d *Device, e EmitTest) int {
	t.Helper()
	n, err := d.EmitTest(e)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// expectTestRecords reads exactly count test records as EMIT_TEST writes
// them, then finds the ring empty.
func expectTestRecords(t *testing.T, rd *Reader, e EmitTest, count int) {
	t.Helper()
	for i := range count {
		rec, ok, err := rd.Next()
		if err != nil || !ok {
			t.Fatalf("record %d of %d: ok %v err %v", i, count, ok, err)
		}
		seq := e.FirstSeq + uint64(i)
		if err := checkEmitted(rec, e, seq); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if rec, ok, err := rd.Next(); ok || err != nil {
		t.Fatalf("after %d records: one more of type %d (err %v)", count, rec.Type, err)
	}
	rd.Commit()
}

func checkEmitted(rec Record, e EmitTest, seq uint64) error {
	if rec.Type != RecTest || len(rec.Raw) != int(e.Len) {
		return fmt.Errorf("type %d len %d, want type %d len %d", rec.Type, len(rec.Raw), RecTest, e.Len)
	}
	if p, s := binary.LittleEndian.Uint32(rec.Raw[8:]), binary.LittleEndian.Uint64(rec.Raw[16:]); p != e.Producer || s != seq {
		return fmt.Errorf("producer %d seq %d, want %d and %d", p, s, e.Producer, seq)
	}
	for i, b := range rec.Raw[SizeofTestRec:] {
		if b != byte(seq+uint64(i)) {
			return fmt.Errorf("seq %d payload byte %d = %#x, want %#x", seq, i, b, byte(seq+uint64(i)))
		}
	}
	return nil
}

func TestDeviceMetaPageDescribesTheRing(t *testing.T) {
	kmodtest.LoadT(t, "ring_size=131072")
	d := openDevice(t)
	m := d.Ring.Meta()
	info, err := d.Info()
	if err != nil {
		t.Fatal(err)
	}
	ps := uint64(os.Getpagesize())
	if m.Magic != RingMagic || m.ABIMajor != ABIMajor || m.ABIMinor != ABIMinor {
		t.Errorf("meta magic %#x ABI %d.%d, want %#x %d.%d", m.Magic, m.ABIMajor, m.ABIMinor, RingMagic, ABIMajor, ABIMinor)
	}
	if m.DataSize != 131072 || info.DataSize != m.DataSize || m.DataOffset != 2*ps || uint64(m.PageSize) != ps {
		t.Errorf("meta data size %d offset %d page %d, info data size %d; want 131072, %d, %d", m.DataSize, m.DataOffset, m.PageSize, info.DataSize, 2*ps, ps)
	}
	if m.MaxRecord != 131072/4 || info.MaxRecord != m.MaxRecord {
		t.Errorf("max_record %d (info %d), want %d", m.MaxRecord, info.MaxRecord, 131072/4)
	}
	if info.ABIMajor != ABIMajor || info.ABIMinor != ABIMinor {
		t.Errorf("info ABI %d.%d", info.ABIMajor, info.ABIMinor)
	}
}

func TestDeviceEmittedRecordsArriveIntact(t *testing.T) {
	kmodtest.LoadT(t)
	d := openDevice(t)
	rd := newDeviceReader(t, d)
	for _, e := range []EmitTest{
		{Count: 1000, Len: 100, Producer: 3, FirstSeq: 500},
		{Count: 10, Len: uint32(SizeofTestRec), Producer: 4, FirstSeq: 0},
		{Count: 10, Len: d.Ring.MaxRecord(), Producer: 5, FirstSeq: 1 << 40},
	} {
		if n := emit(t, d, e); n != int(e.Count) {
			t.Fatalf("emitted %d of %d records of %d bytes into an empty ring", n, e.Count, e.Len)
		}
		expectTestRecords(t, rd, e, int(e.Count))
	}
	c := d.Ring.Counters()
	if c.Written != 1020 || c.Dropped() != 0 {
		t.Errorf("counters %+v, want 1020 written and no drops", c)
	}
}

func TestDeviceSecondOpenIsBusy(t *testing.T) {
	kmodtest.LoadT(t)
	openDevice(t)
	if d2, err := OpenDevice(DevicePath); !errors.Is(err, unix.EBUSY) {
		if d2 != nil {
			d2.Close()
		}
		t.Fatalf("second open: %v, want EBUSY", err)
	}
}

func TestDeviceMetaAndDataAreReadOnly(t *testing.T) {
	kmodtest.LoadT(t)
	d := openDevice(t)
	ps := os.Getpagesize()
	for _, pgoff := range []int64{MmapMetaPgoff, MmapDataPgoff} {
		mem, err := unix.Mmap(d.FD(), pgoff*int64(ps), ps, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err == nil {
			unix.Munmap(mem)
			t.Errorf("page offset %d mapped writable", pgoff)
			continue
		}
		if !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EACCES) {
			t.Errorf("page offset %d writable: %v, want EPERM or EACCES", pgoff, err)
		}
	}
	// The consumer page is the reader's: writable, and only it.
	mem, err := unix.Mmap(d.FD(), MmapConsumerPgoff, ps, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatalf("consumer page not writable: %v", err)
	}
	unix.Munmap(mem)
}

func TestDevicePollWakesABlockedRead(t *testing.T) {
	kmodtest.LoadT(t)
	d := openDevice(t)
	rd := newDeviceReader(t, d)
	// Watermark 0 and no timeout to speak of: only the module's wake-up
	// can end the Read.
	if err := rd.SetWakeup(0, time.Hour); err != nil {
		t.Fatal(err)
	}
	e := EmitTest{Count: 1, Len: 64, Producer: 1, FirstSeq: 7}
	got := make(chan error, 1)
	go func() {
		rec, err := rd.Read()
		if err == nil {
			err = checkEmitted(rec, e, 7)
		}
		got <- err
	}()
	time.Sleep(100 * time.Millisecond) // let Read block in epoll
	select {
	case err := <-got:
		t.Fatalf("Read returned before any record: %v", err)
	default:
	}
	emit(t, d, e)
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		rd.Close()
		t.Fatal("a record was committed but the blocked Read was not woken")
	}
}

func TestDeviceCloseInterruptsABlockedRead(t *testing.T) {
	kmodtest.LoadT(t)
	d := openDevice(t)
	rd := newDeviceReader(t, d)
	got := make(chan error, 1)
	go func() {
		_, err := rd.Read()
		got <- err
	}()
	time.Sleep(100 * time.Millisecond)
	rd.Close()
	select {
	case err := <-got:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Read returned %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not interrupt a blocked Read")
	}
}

func TestDeviceFullRingLeadsToALostRecord(t *testing.T) {
	kmodtest.LoadT(t, "ring_size=65536")
	d := openDevice(t)
	rd := newDeviceReader(t, d)
	e := EmitTest{Count: 200, Len: 1000, Producer: 2}
	n := emit(t, d, e) // 200 KB into 64 KiB
	if n == 0 || n >= int(e.Count) {
		t.Fatalf("wrote %d of %d records of %d bytes into a 64 KiB ring", n, e.Count, e.Len)
	}
	c := d.Ring.Counters()
	if c.DroppedFull != uint64(int(e.Count)-n) || c.Written != uint64(n) {
		t.Fatalf("counters %+v, want %d written, %d dropped full", c, n, int(e.Count)-n)
	}
	expectTestRecords(t, rd, e, n)

	next := EmitTest{Count: 1, Len: 64, Producer: 2, FirstSeq: 1000}
	if emit(t, d, next) != 1 {
		t.Fatal("no room after the reader consumed everything")
	}
	rec, ok, err := rd.Next()
	if err != nil || !ok {
		t.Fatalf("lost record: ok %v err %v", ok, err)
	}
	if cnt, ok := rec.LostCount(); !ok || cnt != uint64(int(e.Count)-n) {
		t.Fatalf("record type %d count %d, want a lost record counting %d", rec.Type, cnt, int(e.Count)-n)
	}
	expectTestRecords(t, rd, next, 1)
	if c := d.Ring.Counters(); c.LostRecords != 1 {
		t.Errorf("lost_records %d, want 1", c.LostRecords)
	}
	if s := rd.Stats(); s.Lost != uint64(int(e.Count)-n) || s.LostRecords != 1 {
		t.Errorf("reader stats %+v", s)
	}
}

// devReadable polls the device without blocking.
func devReadable(t *testing.T, d *Device) bool {
	t.Helper()
	fds := []unix.PollFd{{Fd: int32(d.FD()), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	if err != nil {
		t.Fatalf("poll: %v", err)
	}
	return n == 1 && fds[0].Revents&unix.POLLIN != 0
}

// TestDevicePollFollowsTheWatermark checks the module's ready() (ABI 1.1)
// through poll(2): readable only once wakeup_bytes lie past read_pos, or
// the ring is half full, or a lost record is at read_pos; read_pos may run
// ahead of the commit position.
func TestDevicePollFollowsTheWatermark(t *testing.T) {
	kmodtest.LoadT(t, "ring_size=65536")
	d := openDevice(t)
	rd := newDeviceReader(t, d)
	rd.publish(256)
	if devReadable(t, d) {
		t.Fatal("empty ring readable")
	}
	e := EmitTest{Count: 3, Len: 64, Producer: 1}
	emit(t, d, e)
	if devReadable(t, d) {
		t.Fatal("readable with 192 bytes past read_pos, watermark 256")
	}
	emit(t, d, EmitTest{Count: 1, Len: 64, Producer: 1, FirstSeq: 3})
	if !devReadable(t, d) {
		t.Fatal("not readable with 256 bytes past read_pos, watermark 256")
	}
	// Read all, commit nothing: counted from the new read position.
	for range 4 {
		if _, ok, err := rd.Next(); !ok || err != nil {
			t.Fatalf("record: ok %v err %v", ok, err)
		}
	}
	rd.publish(256)
	if devReadable(t, d) {
		t.Fatal("readable with nothing past read_pos (commit position behind)")
	}
	emit(t, d, EmitTest{Count: 1, Len: 64, Producer: 1, FirstSeq: 4})
	if devReadable(t, d) {
		t.Fatal("readable with 64 bytes past read_pos, watermark 256")
	}
	rd.publish(0)
	if !devReadable(t, d) {
		t.Fatal("not readable with a record past read_pos, watermark 0")
	}
	// Half the ring past the commit position forces readability below the
	// watermark: 32 KiB uncommitted, read_pos 1 KiB short of producer_pos.
	rd.Commit()
	emit(t, d, EmitTest{Count: 31, Len: 1024, Producer: 1})
	for {
		if _, ok, err := rd.Next(); !ok || err != nil {
			break
		}
	}
	emit(t, d, EmitTest{Count: 1, Len: 1024, Producer: 1})
	rd.publish(8192)
	if !devReadable(t, d) {
		t.Fatalf("not readable at half full (%d bytes uncommitted)", d.Ring.ProducerPos()-d.Ring.ConsumerPos())
	}
	// A read position the module cannot accept is taken as the commit
	// position.
	d.Ring.page.ReadPos = d.Ring.ProducerPos() + 4096
	rd.Commit()
	if devReadable(t, d) {
		t.Fatal("readable with a read position past the producer (taken as the commit position, 1 KiB below the watermark)")
	}
}

// TestDeviceEventWhileTheReaderSleepsArrivesWithinTheBound: with the
// default wake-up settings (a watermark far above one record, a 100 ms
// timeout) one record written while the reader sleeps reaches it within
// the latency bound: early in the sleep through the timeout, after a
// whole idle timeout through the module's wake-up for the first record.
// The check allows ten times the bound for a loaded VM; the measured
// latency is logged.
func TestDeviceEventWhileTheReaderSleepsArrivesWithinTheBound(t *testing.T) {
	kmodtest.LoadT(t)
	d := openDevice(t)
	rd := newDeviceReader(t, d)
	for i, after := range []time.Duration{DefaultWakeupTimeout / 3, 3 * DefaultWakeupTimeout} {
		e := EmitTest{Count: 1, Len: 64, Producer: 1, FirstSeq: uint64(i)}
		type result struct {
			at  time.Time
			err error
		}
		got := make(chan result, 1)
		go func() {
			rec, err := rd.Read()
			if err == nil {
				err = checkEmitted(rec, e, e.FirstSeq)
			}
			got <- result{time.Now(), err}
		}()
		time.Sleep(after)
		sent := time.Now()
		emit(t, d, e)
		select {
		case r := <-got:
			if r.err != nil {
				t.Fatal(r.err)
			}
			lat := r.at.Sub(sent)
			t.Logf("record written %v into the reader's sleep arrived after %v (bound %v)", after, lat, DefaultWakeupTimeout)
			if lat > 10*DefaultWakeupTimeout {
				t.Fatalf("record arrived after %v, bound %v", lat, DefaultWakeupTimeout)
			}
		case <-time.After(10 * time.Second):
			rd.Close()
			t.Fatalf("record written %v into the reader's sleep never arrived", after)
		}
		rd.Commit()
	}
}
