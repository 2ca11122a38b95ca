//go:build vmtest

package kerneltest

import (
	"errors"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"smith/internal/kmodtest"
	"smith/internal/testfs"
	"smith/shm"
)

func TestDeviceNodeIsRootOnly(t *testing.T) {
	kmodtest.LoadT(t)
	fi, err := os.Stat(devPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeCharDevice == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s mode %v, want a character device 0600", devPath, fi.Mode())
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != 0 || st.Gid != 0 {
		t.Errorf("%s owned by %d:%d, want 0:0", devPath, st.Uid, st.Gid)
	}
	asNobody(t, "open-as-nobody")
}

func TestSecondOpenIsBusy(t *testing.T) {
	kmodtest.LoadT(t)
	d := open(t)
	_, err := os.OpenFile(devPath, os.O_RDWR, 0)
	if !errors.Is(err, syscall.EBUSY) {
		t.Fatalf("second open: %v, want EBUSY", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// Free again once the first reader is gone.
	open(t)
}

func TestInfoReportsParameters(t *testing.T) {
	kmodtest.LoadT(t, "ring_size=131072", "argv_cap=1000")
	in := open(t).info(t)
	if in.ABIMajor != shm.ABIMajor || in.ABIMinor != shm.ABIMinor {
		t.Errorf("abi %d.%d, want %d.%d", in.ABIMajor, in.ABIMinor, shm.ABIMajor, shm.ABIMinor)
	}
	if in.Transport != shm.TransportSHM {
		t.Errorf("transport %d, want %d (shm, the default)", in.Transport, shm.TransportSHM)
	}
	if in.DataSize != 131072 {
		t.Errorf("data_size %d, want 131072", in.DataSize)
	}
	if in.PageSize != uint32(os.Getpagesize()) {
		t.Errorf("page_size %d, want %d", in.PageSize, os.Getpagesize())
	}
	if in.ArgvCap != 1000 {
		t.Errorf("argv_cap %d, want 1000", in.ArgvCap)
	}
	if in.MaxRecord == 0 || in.MaxRecord > shm.RecMaxLen || uint64(in.MaxRecord) > in.DataSize/4 {
		t.Errorf("max_record %d out of (0, min(%d, data_size/4)]", in.MaxRecord, shm.RecMaxLen)
	}
	if in.Version[0] == 0 {
		t.Error("empty version string")
	}
	if in.HooksAttached&in.HooksFailed != 0 {
		t.Errorf("hooks both attached and failed: %#x & %#x", in.HooksAttached, in.HooksFailed)
	}
	b, err := os.ReadFile("/sys/module/smith/parameters/argv_cap")
	if err != nil || string(b) != "1000\n" {
		t.Errorf("/sys/module/smith/parameters/argv_cap = %q, %v; want 1000", b, err)
	}
}

// meta maps the producer page read-only.
func mapMeta(t *testing.T, d *device) *shm.RingMeta {
	t.Helper()
	pg := os.Getpagesize()
	b, err := syscall.Mmap(int(d.FD()), int64(shm.MmapMetaPgoff*pg), pg, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatalf("mmap meta page: %v", err)
	}
	t.Cleanup(func() { syscall.Munmap(b) })
	return (*shm.RingMeta)(unsafe.Pointer(&b[0]))
}

func TestMmapRules(t *testing.T) {
	kmodtest.LoadT(t, "ring_size=65536")
	d := open(t)
	pg := os.Getpagesize()
	total := 2*pg + 65536
	fd := int(d.FD())
	rw := syscall.PROT_READ | syscall.PROT_WRITE

	tests := []struct {
		name   string
		off    int
		length int
		prot   int
		flags  int
		want   error
	}{
		{"consumer page writable", 0, pg, rw, syscall.MAP_SHARED, nil},
		{"everything read-only", 0, total, syscall.PROT_READ, syscall.MAP_SHARED, nil},
		{"data read-only", shm.MmapDataPgoff * pg, 65536, syscall.PROT_READ, syscall.MAP_SHARED, nil},
		{"meta page writable", shm.MmapMetaPgoff * pg, pg, rw, syscall.MAP_SHARED, syscall.EPERM},
		{"data writable", shm.MmapDataPgoff * pg, 65536, rw, syscall.MAP_SHARED, syscall.EPERM},
		{"consumer and meta writable", 0, 2 * pg, rw, syscall.MAP_SHARED, syscall.EPERM},
		{"private writable consumer", 0, pg, rw, syscall.MAP_PRIVATE, syscall.EINVAL},
		{"one page past the end", 0, total + pg, syscall.PROT_READ, syscall.MAP_SHARED, syscall.EINVAL},
		{"offset past the end", total, pg, syscall.PROT_READ, syscall.MAP_SHARED, syscall.EINVAL},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := syscall.Mmap(fd, int64(tc.off), tc.length, tc.prot, tc.flags)
			if err == nil {
				syscall.Munmap(b)
			}
			if !errors.Is(err, tc.want) && !(err == nil && tc.want == nil) {
				t.Fatalf("mmap(off %d, len %d): %v, want %v", tc.off, tc.length, err, tc.want)
			}
		})
	}

	t.Run("read-only data cannot be made writable", func(t *testing.T) {
		b, err := syscall.Mmap(fd, int64(shm.MmapDataPgoff*pg), pg, syscall.PROT_READ, syscall.MAP_SHARED)
		if err != nil {
			t.Fatal(err)
		}
		defer syscall.Munmap(b)
		if err := syscall.Mprotect(b, rw); !errors.Is(err, syscall.EACCES) {
			t.Fatalf("mprotect(PROT_WRITE) on data: %v, want EACCES", err)
		}
	})

	t.Run("meta page describes the ring", func(t *testing.T) {
		m := mapMeta(t, d)
		in := d.info(t)
		if m.Magic != shm.RingMagic || m.ABIMajor != shm.ABIMajor || m.DataSize != 65536 ||
			m.PageSize != uint32(pg) || m.DataOffset != uint64(shm.MmapDataPgoff*pg) || m.MaxRecord != in.MaxRecord {
			t.Fatalf("meta %+v does not match info %+v", *m, in)
		}
	})
}

func TestEmitTestRecordsThroughMmap(t *testing.T) {
	kmodtest.LoadT(t, "ring_size=65536")
	d := open(t)
	pg := os.Getpagesize()
	data, err := syscall.Mmap(int(d.FD()), int64(shm.MmapDataPgoff*pg), 65536, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(data)
	meta := mapMeta(t, d)

	// Sizes that are and are not multiples of 8.
	lengths := []uint32{24, 25, 100, 1001, 4096}
	var off uint32
	for i, l := range lengths {
		if n := d.emit(t, 7, 1, l, uint64(100+i)); n != 1 {
			t.Fatalf("emit %d bytes wrote %d records, want 1", l, n)
		}
		if err := checkTestRecord(data[off:], l, 7, uint64(100+i)); err != nil {
			t.Fatalf("record %d at offset %d: %v", i, off, err)
		}
		off += shm.RecAlign(l)
	}
	st := d.stats(t)
	if st.Written != uint64(len(lengths)) || st.ProducerPos != uint64(off) || st.ConsumerPos != 0 {
		t.Errorf("stats written %d producer_pos %d consumer_pos %d, want %d %d 0",
			st.Written, st.ProducerPos, st.ConsumerPos, len(lengths), off)
	}
	if meta.ProducerPos != st.ProducerPos || meta.Written != st.Written {
		t.Errorf("meta page producer_pos %d written %d, ioctl says %d %d",
			meta.ProducerPos, meta.Written, st.ProducerPos, st.Written)
	}
}

func TestEmitTestFillsRingAndCountsDrops(t *testing.T) {
	kmodtest.LoadT(t, "ring_size=65536")
	d := open(t)
	const length, count = 1000, 200 // 200 KB into 64 KiB
	n := d.emit(t, 1, count, length, 0)
	st := d.stats(t)
	if n == 0 || n >= count {
		t.Fatalf("wrote %d of %d records into a ring of 64 KiB", n, count)
	}
	// Nothing was consumed, so no "lost N" record could be placed either.
	if st.Written != uint64(n) || st.LostRecords != 0 {
		t.Errorf("written %d lost records %d, want %d and 0", st.Written, st.LostRecords, n)
	}
	if st.DroppedFull != uint64(count-n) {
		t.Errorf("dropped_full %d, want %d", st.DroppedFull, count-n)
	}
	if st.ProducerPos > 65536 {
		t.Errorf("producer_pos %d beyond a ring of 65536 bytes never consumed", st.ProducerPos)
	}
}

func TestEmitTestRejectsBadRequests(t *testing.T) {
	kmodtest.LoadT(t)
	d := open(t)
	for _, e := range []shm.EmitTest{
		{Count: 1, Len: uint32(unsafe.Sizeof(shm.TestRec{})) - 1},
		{Count: 1, Len: shm.RecMaxLen + 1},
		{Count: 1<<20 + 1, Len: 64},
	} {
		if _, err := d.EmitTest(e); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("EMIT_TEST count %d len %d: %v, want EINVAL", e.Count, e.Len, err)
		}
	}
	if st := d.stats(t); st.Written != 0 {
		t.Errorf("rejected requests wrote %d records", st.Written)
	}
}

// Without test_records, the module writes no record that a hook did not
// see: EMIT_TEST is refused and nothing reaches the ring.
func TestEmitTestNeedsTestRecords(t *testing.T) {
	kmodtest.LoadT(t, "test_records=0")
	d := open(t)
	if _, err := d.EmitTest(shm.EmitTest{Count: 4, Len: 64}); !errors.Is(err, syscall.EPERM) {
		t.Errorf("EMIT_TEST without test_records: %v, want EPERM", err)
	}
	if st := d.stats(t); st.Written != 0 {
		t.Errorf("a refused EMIT_TEST wrote %d records", st.Written)
	}
}

func TestUnknownIoctl(t *testing.T) {
	kmodtest.LoadT(t)
	d := open(t)
	var buf [64]byte
	for _, req := range []uint32{0, shm.IocMagic<<8 | 99, shm.IocGetStats + 1<<16} {
		if err := d.rawIoctl(req, unsafe.Pointer(&buf[0])); !errors.Is(err, syscall.ENOTTY) {
			t.Errorf("ioctl %#x: %v, want ENOTTY", req, err)
		}
	}
	if _, err := d.Latency(shm.HookCount); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("GET_LATENCY of hook %d: %v, want EINVAL", shm.HookCount, err)
	}
	if err := d.rawIoctl(shm.IocGetStats, nil); !errors.Is(err, syscall.EFAULT) {
		t.Errorf("GET_STATS into NULL: %v, want EFAULT", err)
	}
}

func TestLatencyIoctls(t *testing.T) {
	kmodtest.LoadT(t, "measure_latency=1")
	d := open(t)
	for h := uint32(0); h < shm.HookCount; h++ {
		l := d.latency(t, h)
		if l.Count > 0 && !(l.MedianNs <= l.P95Ns && l.P95Ns <= l.P99Ns && l.P99Ns <= l.MaxNs) {
			t.Errorf("hook %d: median %d p95 %d p99 %d max %d not ordered", h, l.MedianNs, l.P95Ns, l.P99Ns, l.MaxNs)
		}
	}
	if err := d.ResetLatency(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/sys/module/smith/parameters/measure_latency")
	if err != nil || string(b) != "Y\n" {
		t.Errorf("measure_latency parameter %q, %v; want Y", b, err)
	}
}

func pollIn(t *testing.T, d *device, timeout time.Duration) bool {
	t.Helper()
	fds := []unix.PollFd{{Fd: int32(d.FD()), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int(timeout/time.Millisecond))
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			t.Fatalf("poll: %v", err)
		}
		return n == 1 && fds[0].Revents&unix.POLLIN != 0
	}
}

func TestPollWakesOnRecord(t *testing.T) {
	kmodtest.LoadT(t)
	d := open(t)
	if pollIn(t, d, 0) {
		t.Fatal("empty ring polls readable")
	}
	// A poll asleep before the record exists must be woken by it
	// (through the module's irq_work). Without a wake-up it would still
	// report the record, but only when its timeout ends and the kernel
	// looks once more: so it must return well before the timeout.
	const timeout = 20 * time.Second
	type result struct {
		readable bool
		took     time.Duration
	}
	woke := make(chan result, 1)
	go func() {
		start := time.Now()
		r := pollIn(t, d, timeout)
		woke <- result{r, time.Since(start)}
	}()
	time.Sleep(300 * time.Millisecond)
	if n := d.emit(t, 1, 1, 64, 0); n != 1 {
		t.Fatalf("emit wrote %d records", n)
	}
	r := <-woke
	if !r.readable || r.took >= timeout {
		t.Fatalf("poll returned readable=%v after %v: not woken by the new record", r.readable, r.took)
	}
	if !pollIn(t, d, 0) {
		t.Fatal("ring with an unread record does not poll readable")
	}
}

func TestReopenKeepsUnreadRecords(t *testing.T) {
	kmodtest.LoadT(t)
	d := open(t)
	d.emit(t, 1, 10, 64, 0)
	before := d.stats(t)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = open(t)
	after := d.stats(t)
	if after.ProducerPos != before.ProducerPos || after.Written != before.Written || after.ConsumerPos != 0 {
		t.Fatalf("reopen changed the ring: %+v -> %+v", before, after)
	}
	if !pollIn(t, d, 0) {
		t.Fatal("records left by the previous reader do not poll readable")
	}
}

func TestRecordingFollowsReader(t *testing.T) {
	for _, tc := range []struct {
		param      string
		afterClose string
	}{
		{"record_without_reader=1", "1"},
		{"record_without_reader=0", "0"},
	} {
		t.Run(tc.param, func(t *testing.T) {
			kmodtest.LoadT(t, tc.param)
			if got := debugfsStat(t, "recording"); got != "0" {
				t.Fatalf("recording %s before any reader, want 0", got)
			}
			d := open(t)
			if got := debugfsStat(t, "recording"); got != "1" {
				t.Fatalf("recording %s with a reader, want 1", got)
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			if got := debugfsStat(t, "recording"); got != tc.afterClose {
				t.Fatalf("recording %s after the reader left, want %s", got, tc.afterClose)
			}
		})
	}
}

func TestDebugfsStatsMatchIoctl(t *testing.T) {
	kmodtest.LoadT(t)
	d := open(t)
	d.emit(t, 1, 5, 128, 0)
	st := d.stats(t)
	for name, want := range map[string]uint64{
		"written":      st.Written,
		"producer_pos": st.ProducerPos,
		"dropped_full": st.DroppedFull,
	} {
		if got := debugfsStat(t, name); got != strconv.FormatUint(want, 10) {
			t.Errorf("debugfs %s = %s, ioctl says %d", name, got, want)
		}
	}
}

// The consumer page is user memory. A corrupt consumer position written
// through the mmap (ahead of the producer, more than the ring behind it)
// must not make the module write over unread records or trust it: it
// drops and counts. A reader (a restarted agent) goes on at the producer
// position with a gap record, the module writes again, and its "lost N"
// reports what it dropped; a page changed behind a waiting reader is
// stored back.
func TestCorruptConsumerPositionThroughMmap(t *testing.T) {
	kmodtest.LoadT(t, "ring_size=65536")
	dev, err := shm.OpenDevice(devPath)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	d := &device{&dev.Control}
	pg := os.Getpagesize()
	page, err := syscall.Mmap(int(d.FD()), int64(shm.MmapConsumerPgoff*pg), pg, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(page)
	cons := (*uint64)(unsafe.Pointer(&page[0]))

	// Move the producer more than a ring past 0, reading as we go.
	rd, err := dev.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	for dev.Ring.ProducerPos() < 2*65536 {
		d.emit(t, 1, 32, 1000, 0)
		drainTestRecords(t, rd, -1)
		rd.Commit()
	}
	for _, tc := range []struct {
		name string
		pos  func(prod uint64) uint64
	}{
		{"ahead of the producer", func(p uint64) uint64 { return p + 1<<20 }},
		{"more than the ring behind", func(p uint64) uint64 { return p - 65536 - 8 }},
		{"misaligned and ahead", func(p uint64) uint64 { return p + 4 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := d.stats(t)
			atomic.StoreUint64(cons, tc.pos(before.ProducerPos))
			if n := d.emit(t, 2, 3, 64, 0); n != 0 {
				t.Fatalf("module wrote %d records with consumer_pos %d, producer_pos %d", n, *cons, before.ProducerPos)
			}
			after := d.stats(t)
			if after.ProducerPos != before.ProducerPos || after.DroppedFull-before.DroppedFull != 3 {
				t.Fatalf("producer_pos %d -> %d, dropped_full +%d; want unchanged and +3", before.ProducerPos, after.ProducerPos, after.DroppedFull-before.DroppedFull)
			}
			// A restarted reader: it resynchronises at once.
			rd2, err := shm.NewReader(dev.Ring, nil)
			if err != nil {
				t.Fatalf("reader on a corrupt consumer position: %v", err)
			}
			if got := atomic.LoadUint64(cons); got != after.ProducerPos {
				t.Fatalf("consumer_pos %d after the reader started, want the producer's %d", got, after.ProducerPos)
			}
			gap, ok, err := rd2.Next()
			if err != nil || !ok || gap.Resync == nil || gap.End() != after.ProducerPos {
				t.Fatalf("first record %+v (ok %v, err %v): want the gap record up to %d", gap, ok, err, after.ProducerPos)
			}
			if d.emit(t, 3, 2, 64, 50) != 2 {
				t.Fatal("the module does not write after the reader resynchronised")
			}
			if lost := drainTestRecords(t, rd2, 50); lost < 3 {
				t.Fatalf("lost %d records reported, want at least the 3 dropped", lost)
			}
			rd2.Commit()
		})
	}

	// While a reader waits: the page is stored back, the module writes on.
	rd3, err := dev.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	defer rd3.Close()
	drainTestRecords(t, rd3, -1)
	rd3.Commit()
	atomic.StoreUint64(cons, 1<<50)
	if n := d.emit(t, 4, 1, 64, 0); n != 0 {
		t.Fatalf("module wrote %d records with consumer_pos far ahead", n)
	}
	rd3.SetDeadline(time.Now().Add(20 * time.Second))
	if err := rd3.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	gap, ok, err := rd3.Next()
	if err != nil || !ok || gap.Resync == nil || gap.Resync.Bytes != 0 {
		t.Fatalf("after Wait: %+v (ok %v, err %v), want a gap record of 0 bytes", gap, ok, err)
	}
	if got := atomic.LoadUint64(cons); got != rd3.CommitPos() {
		t.Fatalf("consumer_pos %d, want %d stored back", got, rd3.CommitPos())
	}
	if d.emit(t, 5, 1, 64, 70) != 1 {
		t.Fatal("the module does not write after the page was stored back")
	}
	if lost := drainTestRecords(t, rd3, 70); lost < 1 {
		t.Fatalf("lost %d, want the drop reported", lost)
	}
}

// drainTestRecords reads every record there is and returns the sum of the
// "lost N" counts. With firstSeq >= 0 the test records read must be the
// ones from that sequence number on, in order, and at least one must be
// there; other records (a hook's) are skipped.
func drainTestRecords(t *testing.T, rd *shm.Reader, firstSeq int) uint64 {
	t.Helper()
	var lost uint64
	seq, seen := uint64(firstSeq), 0
	for rec := range testfs.Records(t, rd.Next) {
		if n, isLost := rec.LostCount(); isLost {
			lost += n
			continue
		}
		if rec.Type != shm.RecTest || firstSeq < 0 {
			continue
		}
		if err := checkTestRecord(rec.Raw, uint32(len(rec.Raw)), (*shm.TestRec)(unsafe.Pointer(&rec.Raw[0])).Producer, seq); err != nil {
			t.Fatalf("record at %d: %v", rec.Pos, err)
		}
		seq++
		seen++
	}
	if firstSeq >= 0 && seen == 0 {
		t.Fatalf("no test record from seq %d", firstSeq)
	}
	return lost
}
