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
	stats    ReaderStats
	err      error
}

// readTestRecords reads until Close, committing every batch records, and
// checks per-producer order and every payload.
func readTestRecords(rd *Reader, producers, batch int) readResult {
	res := readResult{received: make([]uint64, producers)}
	next := make([]uint64, producers) // lowest seq the next record may have
	n := 0
	for {
		rec, err := rd.Read()
		if errors.Is(err, ErrClosed) {
			res.stats = rd.Stats()
			return res
		}
		if err != nil {
			res.err = err
			return res
		}
		switch rec.Type {
		case RecLost:
		case RecTest:
			p, seq, err := checkTestRecord(rec, producers)
			if err != nil {
				res.err = err
				return res
			}
			if seq < next[p] {
				res.err = fmt.Errorf("producer %d: seq %d arrived after seq %d", p, seq, next[p]-1)
				return res
			}
			next[p] = seq + 1
			res.received[p]++
		default:
			res.err = fmt.Errorf("record at %d has type %d, want test or lost", rec.Pos, rec.Type)
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
// page alike.
func TestCProducerGoReaderStress(t *testing.T) {
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
	done := make(chan readResult, 1)
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

	// The reader is woken only by the producers' commits, so it must drain
	// the ring by itself: if it sits asleep with records left, a wake-up
	// was missed. The limit only bounds a hang, it does not time anything.
	ring := fr.Ring
	deadline := time.Now().Add(30 * time.Second)
	for ring.ConsumerPos() != ring.ProducerPos() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	drained := ring.ConsumerPos() == ring.ProducerPos()
	rd.Close()
	res := <-done
	if res.err != nil {
		t.Fatalf("reader: %v", res.err)
	}
	if !drained {
		t.Fatalf("reader asleep with %d bytes unread after the producers finished: a wake-up was missed",
			ring.ProducerPos()-ring.ConsumerPos())
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
	c := r.Counters()
	if c.Written == 0 || c.DroppedFull == 0 || c.DroppedTooLarge == 0 || c.DroppedFault == 0 || c.Discarded == 0 || c.LostRecords == 0 {
		t.Errorf("the script did not exercise every path: %+v", c)
	}
	t.Logf("%d operations, counters %+v", strings.Count(script.String(), "\n"), c)
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
