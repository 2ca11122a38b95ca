//go:build !vmtest

package shm

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// buildRingStress compiles kernel/ring.c with ring_user.h and the stress
// producer into a temporary directory.
func buildRingStress(t *testing.T) string {
	t.Helper()
	// Opening the sources here makes go test's cache notice when they change.
	for _, src := range []string{"testdata/ringstress.c", "../kernel/ring.c", "../kernel/ring.h", "../kernel/ring_user.h", abiHeader} {
		if _, err := os.ReadFile(src); err != nil {
			t.Fatalf("C producer source: %v", err)
		}
	}
	bin := filepath.Join(t.TempDir(), "ringstress")
	out, err := exec.Command(gccPath(t), "-O2", "-Wall", "-Wextra", "-Werror", "-pthread",
		"-I../kernel", "-o", bin, "testdata/ringstress.c", "../kernel/ring.c").CombinedOutput()
	if err != nil {
		t.Fatalf("build the C producer: %v\n%s", err, out)
	}
	return bin
}

// stressRecords is how many records each C producer attempts; the default
// keeps the test well under 30 s on two cores, SMITH_RING_STRESS_RECORDS
// asks for a longer run.
func stressRecords(t *testing.T) int {
	if s := os.Getenv("SMITH_RING_STRESS_RECORDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("SMITH_RING_STRESS_RECORDS=%q: want a positive number", s)
		}
		return n
	}
	if testing.Short() {
		return 50_000
	}
	return 500_000
}

type cProducerReport struct {
	attempts, dropped, tooLarge, faults, discarded, extraDropped uint64
}

func parseStressReport(t *testing.T, out string, producers int) ([]cProducerReport, uint64) {
	t.Helper()
	reps := make([]cProducerReport, producers)
	var lostPending uint64
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var id int
		var r cProducerReport
		if n, _ := fmt.Sscanf(line, "producer %d attempts %d dropped %d too_large %d faults %d discarded %d extra_dropped %d",
			&id, &r.attempts, &r.dropped, &r.tooLarge, &r.faults, &r.discarded, &r.extraDropped); n == 7 {
			if id < 0 || id >= producers {
				t.Fatalf("report names producer %d of %d", id, producers)
			}
			reps[id] = r
			seen++
			continue
		}
		if n, _ := fmt.Sscanf(line, "lost_pending %d", &lostPending); n == 1 {
			continue
		}
		t.Fatalf("unexpected line from the C producer: %q", line)
	}
	if seen != producers {
		t.Fatalf("C producer reported %d producers, want %d:\n%s", seen, producers, out)
	}
	return reps, lostPending
}

// checkTestRecord verifies a SMITH_REC_TEST record's header, producer, seq
// and payload pattern, and returns its producer and seq.
func checkTestRecord(rec Record, producers int) (int, uint64, error) {
	if len(rec.Raw) < SizeofTestRec {
		return 0, 0, fmt.Errorf("test record at %d is %d bytes, shorter than its header", rec.Pos, len(rec.Raw))
	}
	p := binary.LittleEndian.Uint32(rec.Raw[8:])
	seq := binary.LittleEndian.Uint64(rec.Raw[16:])
	if int(p) >= producers {
		return 0, 0, fmt.Errorf("test record at %d from producer %d of %d", rec.Pos, p, producers)
	}
	if rec.Flags != RecFlags(seq&0xff) {
		return 0, 0, fmt.Errorf("test record at %d (producer %d seq %d) has flags %#x, want %#x", rec.Pos, p, seq, rec.Flags, seq&0xff)
	}
	for i, b := range rec.Raw[SizeofTestRec:] {
		if b != byte(seq+uint64(i)) {
			return 0, 0, fmt.Errorf("test record at %d (producer %d seq %d len %d): payload byte %d is %#x, want %#x",
				rec.Pos, p, seq, len(rec.Raw), i, b, byte(seq+uint64(i)))
		}
	}
	return int(p), seq, nil
}

type readResult struct {
	received []uint64 // per producer
	next     []uint64 // per producer: lowest seq the next record may have
	stats    ReaderStats
	err      error
}

// check verifies one record: per-producer order and its payload.
func (res *readResult) check(rec Record, producers int) error {
	switch rec.Type {
	case RecLost:
	case RecTest:
		p, seq, err := checkTestRecord(rec, producers)
		if err != nil {
			return err
		}
		if seq < res.next[p] {
			return fmt.Errorf("producer %d: seq %d arrived after seq %d", p, seq, res.next[p]-1)
		}
		res.next[p] = seq + 1
		res.received[p]++
	default:
		return fmt.Errorf("record at %d has type %d, want test or lost", rec.Pos, rec.Type)
	}
	return nil
}

// readTestRecords reads until Close, committing every batch records, and
// checks per-producer order and every payload.
func readTestRecords(rd *Reader, producers, batch int) *readResult {
	res := &readResult{received: make([]uint64, producers), next: make([]uint64, producers)}
	n := 0
	for {
		rec, err := rd.Read()
		if errors.Is(err, ErrClosed) {
			res.stats = rd.Stats()
			return res
		}
		if err == nil {
			err = res.check(rec, producers)
		}
		if err != nil {
			res.err = err
			return res
		}
		if n++; n%batch == 0 {
			rd.Commit()
		}
	}
}

// TestCProducerGoReaderStress runs kernel/ring.c (user-space build) in
// several threads of a separate process against the Go reader over one
// shared memfd mapping, with eventfd wake-ups decided by ring.c. Every
// record must arrive intact and in per-producer order, and every attempt
// must be either read or counted as dropped, in the stream and the meta
// page alike. The reader commits only every 64 records, so its read
// position runs ahead of its commit position; it runs once waking on the
// first record (watermark 0) and once with a watermark, both with a
// timeout far beyond the test, so only ring.c's wake-ups move it.
func TestCProducerGoReaderStress(t *testing.T) {
	for _, wakeup := range []uint64{0, 4096} {
		t.Run(fmt.Sprintf("watermark=%d", wakeup), func(t *testing.T) { cProducerGoReaderStress(t, wakeup) })
	}
}

func cProducerGoReaderStress(t *testing.T, wakeup uint64) {
	const (
		producers = 4
		dataSize  = 256 << 10 // small, so the ring wraps and fills often
	)
	records := stressRecords(t)
	bin := buildRingStress(t)

	memfd, err := unix.MemfdCreate("smith-ring", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatalf("memfd_create: %v", err)
	}
	ringFile := os.NewFile(uintptr(memfd), "smith-ring")
	defer ringFile.Close()
	ps := int64(os.Getpagesize())
	if err := ringFile.Truncate(2*ps + dataSize); err != nil {
		t.Fatal(err)
	}
	ev, err := NewEventfd()
	if err != nil {
		t.Fatal(err)
	}
	evDup, err := unix.Dup(ev.FD())
	if err != nil {
		t.Fatal(err)
	}
	evFile := os.NewFile(uintptr(evDup), "eventfd")

	var stderr bytes.Buffer
	cmd := exec.Command(bin, "3", "4", strconv.Itoa(dataSize), strconv.Itoa(producers),
		strconv.Itoa(records), "1")
	cmd.ExtraFiles = []*os.File{ringFile, evFile}
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start C producer: %v", err)
	}
	evFile.Close()
	out := bufio.NewReader(stdout)
	if line, err := out.ReadString('\n'); err != nil || line != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("C producer did not get ready (%q, %v): %s", line, err, stderr.String())
	}

	fr, err := OpenFileRing(ringFile)
	if err != nil {
		t.Fatal(err)
	}
	defer fr.Close()
	rd, err := NewReader(fr.Ring, ev)
	if err != nil {
		t.Fatal(err)
	}
	if err := rd.SetWakeup(wakeup, time.Hour); err != nil {
		t.Fatal(err)
	}
	done := make(chan *readResult, 1)
	go func() { done <- readTestRecords(rd, producers, 64) }()

	start := time.Now()
	report, err := io.ReadAll(out)
	if err != nil {
		t.Fatalf("read C producer report: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		rd.Close()
		<-done
		t.Fatalf("C producer: %v\n%s", err, stderr.String())
	}
	produced := time.Since(start)

	// The reader is woken only by the producers' commits, so it must read
	// on by itself until less than its watermark is left past its read
	// position: if it sits asleep with more, a wake-up was missed. The
	// limit only bounds a hang, it does not time anything.
	ring := fr.Ring
	caughtUp := func() bool { return ring.ProducerPos()-ring.ReadPos() <= wakeup }
	if wakeup > 0 {
		caughtUp = func() bool { return ring.ProducerPos()-ring.ReadPos() < wakeup }
	}
	deadline := time.Now().Add(30 * time.Second)
	for !caughtUp() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	drained := caughtUp()
	rd.Close()
	res := <-done
	if res.err != nil {
		t.Fatalf("reader: %v", res.err)
	}
	if !drained {
		t.Fatalf("reader asleep with %d bytes unread past its read position (watermark %d) after the producers finished: a wake-up was missed",
			ring.ProducerPos()-ring.ReadPos(), wakeup)
	}
	// What lies below the watermark is read now, without waiting.
	for {
		rec, ok, err := rd.Next()
		if err != nil {
			t.Fatalf("reader: %v", err)
		}
		if !ok {
			break
		}
		if err := res.check(rec, producers); err != nil {
			t.Fatalf("reader: %v", err)
		}
	}
	res.stats = rd.Stats()
	if rd.ReadPos() != ring.ProducerPos() {
		t.Fatalf("read position %d, producer %d: records left unread", rd.ReadPos(), ring.ProducerPos())
	}

	reps, lostPending := parseStressReport(t, string(report), producers)
	var attempts, received, dropped, tooLarge, faults, discarded uint64
	for p, r := range reps {
		if res.received[p]+r.dropped+r.faults != r.attempts {
			t.Errorf("producer %d: read %d + dropped %d + faults %d != attempted %d",
				p, res.received[p], r.dropped, r.faults, r.attempts)
		}
		attempts += r.attempts
		received += res.received[p]
		dropped += r.dropped + r.extraDropped
		tooLarge += r.tooLarge
		faults += r.faults
		discarded += r.discarded
	}
	c := ring.Counters()
	check := func(what string, got, want uint64) {
		t.Helper()
		if got != want {
			t.Errorf("%s: %d, want %d", what, got, want)
		}
	}
	check("meta written vs records read", c.Written, received)
	check("meta dropped (full + too large) vs producer drops", c.DroppedFull+c.DroppedTooLarge, dropped)
	check("meta dropped_too_large vs producer count", c.DroppedTooLarge, tooLarge)
	check("meta dropped_fault vs producer count", c.DroppedFault, faults)
	check("meta discarded vs producer count", c.Discarded, discarded)
	check("meta lost_records vs lost records read", c.LostRecords, res.stats.LostRecords)
	check("lost counts in the stream + pending vs all drops", res.stats.Lost+lostPending, c.Dropped())
	if tooLarge == 0 || faults == 0 || discarded == 0 {
		t.Errorf("the run did not exercise every path: too large %d, faults %d, discarded %d", tooLarge, faults, discarded)
	}
	t.Logf("%d producers x %d records in %v: read %d, dropped full %d, too large %d, faults %d, discarded %d, lost records %d, pads skipped %d",
		producers, records, produced.Round(time.Millisecond), received, c.DroppedFull, c.DroppedTooLarge, c.DroppedFault,
		c.Discarded, c.LostRecords, res.stats.Skipped)
}

// TestGoProducerMatchesCProducer replays one random script of producer
// operations (writes, reservations committed or discarded in order,
// drops of every kind, the reader catching up) through kernel/ring.c and
// through the Go Producer: every decision (written or dropped, wake-up or
// not) and every byte of the resulting memory must be the same.
func TestGoProducerMatchesCProducer(t *testing.T) {
	const size = RingMinSize
	for _, src := range []string{"testdata/ringscript.c", "../kernel/ring.c", "../kernel/ring.h", "../kernel/ring_user.h"} {
		if _, err := os.ReadFile(src); err != nil {
			t.Fatalf("C source: %v", err)
		}
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "ringscript")
	if out, err := exec.Command(gccPath(t), "-O2", "-Wall", "-Wextra", "-Werror", "-I../kernel", "-o", bin,
		"testdata/ringscript.c", "../kernel/ring.c").CombinedOutput(); err != nil {
		t.Fatalf("build ringscript: %v\n%s", err, out)
	}

	words := make([]uint64, (2*memPageSize+size)/8)
	mem := unsafeBytes(words)
	r, err := InitRing(mem[:memPageSize], mem[memPageSize:2*memPageSize], mem[2*memPageSize:], memPageSize)
	if err != nil {
		t.Fatal(err)
	}
	p := NewProducer(r)
	maxRec := int(r.MaxRecord())

	rng := uint64(0x5eed)
	rnd := func(n int) int {
		rng ^= rng << 13
		rng ^= rng >> 7
		rng ^= rng << 17
		return int(rng % uint64(n))
	}
	recLen := func() int {
		switch rnd(40) {
		case 0:
			return maxRec + 1 + rnd(64) // too large
		case 1:
			return maxRec
		case 2, 3:
			return SizeofTestRec + rnd(maxRec-SizeofTestRec)
		default:
			return SizeofTestRec + rnd(300)
		}
	}
	var script, want strings.Builder
	var held []Reservation
	b2i := func(b bool) int {
		if b {
			return 1
		}
		return 0
	}
	for seq := uint64(0); seq < 20000; seq++ {
		switch op := rnd(100); {
		case op < 60:
			n, flags := recLen(), uint16(rnd(16))
			rec := testRec(n, 1, seq)
			binary.LittleEndian.PutUint16(rec[6:], flags)
			ok, wake := p.Write(rec)
			fmt.Fprintf(&script, "w %d %d %d\n", n, flags, seq)
			fmt.Fprintf(&want, "w %d %d\n", b2i(ok), b2i(wake))
		case op < 70 && len(held) < 8:
			n := recLen()
			if n > maxRec+8 {
				n = maxRec + 8
			}
			res, ok := p.Reserve(uint32(n), RecTest, 0)
			if ok {
				copy(res.Raw[SizeofRecHdr:], testRec(n, 1, seq)[SizeofRecHdr:])
				held = append(held, res)
			}
			fmt.Fprintf(&script, "r %d %d\n", n, seq)
			fmt.Fprintf(&want, "r %d\n", b2i(ok))
		case op < 82 && len(held) > 0:
			var wake bool
			if op < 78 {
				wake = p.Commit(held[0])
				script.WriteString("c\n")
				fmt.Fprintf(&want, "c %d\n", b2i(wake))
			} else {
				wake = p.Discard(held[0])
				script.WriteString("d\n")
				fmt.Fprintf(&want, "d %d\n", b2i(wake))
			}
			held = held[1:]
		case op < 84:
			p.CountFault()
			script.WriteString("f\n")
			want.WriteString("f\n")
		case op < 94 && len(held) == 0:
			*r.cons = r.ProducerPos()
			script.WriteString("a\n")
			want.WriteString("a\n")
		case op < 100:
			// The reader publishes a read position and a watermark:
			// mostly sane ones, sometimes anything (the kernel must
			// not trust them).
			c, prod := r.ConsumerPos(), r.ProducerPos()
			var rp, wb uint64
			switch rnd(5) {
			case 0:
				rp = prod
			case 1:
				rp = c
			case 2:
				rp = c + (prod-c)/2&^7
			case 3:
				rp = uint64(rnd(1<<30)) * 8
			default:
				rp = prod - uint64(rnd(64))*8
			}
			switch rnd(5) {
			case 0:
				wb = 0
			case 1:
				wb = uint64(rnd(512))
			case 2:
				wb = uint64(rnd(size))
			case 3:
				wb = 1 << 62
			default:
				wb = 4096
			}
			r.page.ReadPos, r.page.WakeupBytes = rp, wb
			fmt.Fprintf(&script, "s %d %d\n", rp, wb)
			want.WriteString("s\n")
		}
	}

	dump := filepath.Join(dir, "dump")
	cmd := exec.Command(bin, strconv.Itoa(size), dump)
	cmd.Stdin = strings.NewReader(script.String())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	got, err := cmd.Output()
	if err != nil {
		t.Fatalf("ringscript: %v\n%s", err, stderr.String())
	}
	gotLines := strings.Split(string(got), "\n")
	wantLines := strings.Split(want.String(), "\n")
	for i := range min(len(gotLines), len(wantLines)) {
		if gotLines[i] != wantLines[i] {
			t.Fatalf("operation %d (%q): C says %q, Go says %q", i, strings.Split(script.String(), "\n")[i], gotLines[i], wantLines[i])
		}
	}
	if len(gotLines) != len(wantLines) {
		t.Fatalf("C gave %d results, Go %d", len(gotLines), len(wantLines))
	}
	cmem, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	if len(cmem) != len(mem) {
		t.Fatalf("C memory is %d bytes, Go's %d", len(cmem), len(mem))
	}
	for i := range mem {
		if cmem[i] != mem[i] {
			t.Fatalf("memory differs first at byte %d (page %d, offset %d): C %#x, Go %#x", i, i/memPageSize, i%memPageSize, cmem[i], mem[i])
		}
	}
	wakes, noWakes := 0, 0
	for _, l := range wantLines {
		if len(l) > 0 && strings.ContainsRune("wcd", rune(l[0])) {
			if strings.HasSuffix(l, " 1") && l != "w 0 1" {
				wakes++
			} else if strings.HasSuffix(l, " 0") {
				noWakes++
			}
		}
	}
	if wakes == 0 || noWakes == 0 {
		t.Errorf("the script did not exercise both wake-up decisions: %d wake-ups, %d none", wakes, noWakes)
	}
	c := r.Counters()
	if c.Written == 0 || c.DroppedFull == 0 || c.DroppedTooLarge == 0 || c.DroppedFault == 0 || c.Discarded == 0 || c.LostRecords == 0 {
		t.Errorf("the script did not exercise every path: %+v", c)
	}
	t.Logf("%d operations, %d wake-ups, counters %+v", strings.Count(script.String(), "\n"), wakes, c)
}

// TestRingBenchRuns keeps the C producer benchmark of docs/BENCHMARKS.md
// (testdata/ringbench.c) building and working: a short run must move every
// record through a ring large enough to hold them all.
func TestRingBenchRuns(t *testing.T) {
	if _, err := os.ReadFile("testdata/ringbench.c"); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "ringbench")
	if out, err := exec.Command(gccPath(t), "-O2", "-Wall", "-Wextra", "-Werror", "-pthread", "-I../kernel", "-o", bin,
		"testdata/ringbench.c", "../kernel/ring.c").CombinedOutput(); err != nil {
		t.Fatalf("build ringbench: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, strconv.Itoa(RingMinSize*16), "2", "2000", "64").Output()
	if err != nil {
		t.Fatalf("ringbench: %v", err)
	}
	var cpu, wall float64
	var dropped int
	if n, _ := fmt.Sscanf(string(out), "cpu_ns_per_record %f wall_ns_per_record %f dropped %d", &cpu, &wall, &dropped); n != 3 {
		t.Fatalf("ringbench output %q", out)
	}
	if dropped != 0 || cpu <= 0 || wall <= 0 {
		t.Fatalf("ringbench: %q; want no drops (4000 records of 64 bytes fit) and positive times", out)
	}
}
