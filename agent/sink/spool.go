package sink

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Spool is a bounded, ordered, on-disk queue of events: what Kafka could
// not take yet.  It lives in a directory of segment files named by a
// growing number; a record is framed
//
//	u32 magic "SMSP" | u32 length | u32 CRC-32C of length and event | event
//
// so that whatever is not a whole record (a tail torn by a crash, a tail
// the file system zero-filled after a power loss, a record damaged in the
// middle) is recognised: it is skipped up to the next valid frame and
// counted (Corrupt), never returned as an event and never fatal.  An event
// is never empty.
//
// Append writes a whole batch with one write(2): once it returns the
// events survive the agent being killed (not a power loss: the spool does
// not fsync, see docs/AGENT.md).  A cursor file holds the read position
// (segment, offset); Advance moves it after Kafka acknowledged what Peek
// returned, and deletes segments read to their end.  On open, a record
// torn by a crash at the tail is cut off.
type Spool struct {
	mu       sync.Mutex
	dir      string
	maxBytes int64
	segBytes int64

	segs   []segment // oldest first; the last one is being written
	w      *os.File  // the last segment, append-only
	bytes  int64     // size of all segments
	events int64     // events after the cursor
	cur    Cursor
	crc    *crc32.Table
	hdr    []byte // scratch for Append
	// corrupt counts the damaged regions skipped since open (each may
	// have held one or more events; a torn tail counts as one).
	corrupt int64
	// write is the segment write (a field so that tests can fail it).
	writeFn func(f *os.File, p []byte) (int, error)
}

type segment struct {
	id   uint64
	size int64
}

// Cursor is a read position in the spool.
type Cursor struct {
	Seg uint64
	Off int64
	// skipped counts the damaged regions Peek stepped over to get here;
	// Advance adds them to Corrupt.
	skipped int64
}

const (
	spoolRecHdr = 12
	spoolMagic  = 0x50534d53 // "SMSP" little-endian
)

// ErrSpoolFull is returned when an event does not fit under the bound.
var ErrSpoolFull = errors.New("spool full")

// OpenSpool opens or creates the spool in dir, bounded to maxBytes on
// disk, in segments of about segBytes.
func OpenSpool(dir string, maxBytes, segBytes int64) (*Spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool directory: %w", err)
	}
	s := &Spool{dir: dir, maxBytes: maxBytes, segBytes: segBytes, crc: crc32.MakeTable(crc32.Castagnoli),
		writeFn: func(f *os.File, p []byte) (int, error) { return f.Write(p) }}
	if err := s.load(); err != nil {
		return nil, fmt.Errorf("open spool %s: %w", dir, err)
	}
	return s, nil
}

func (s *Spool) segPath(id uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%020d.seg", id))
}

func (s *Spool) load() error {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".seg")
		if !ok {
			continue
		}
		id, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			continue
		}
		s.segs = append(s.segs, segment{id: id})
	}
	sort.Slice(s.segs, func(i, j int) bool { return s.segs[i].id < s.segs[j].id })
	if raw, err := os.ReadFile(filepath.Join(s.dir, "cursor")); err == nil && len(raw) == 16 {
		s.cur = Cursor{Seg: binary.LittleEndian.Uint64(raw), Off: int64(binary.LittleEndian.Uint64(raw[8:]))}
	}
	// Drop segments before the cursor (a crash between Advance's cursor
	// write and the delete).
	for len(s.segs) > 0 && s.segs[0].id < s.cur.Seg {
		os.Remove(s.segPath(s.segs[0].id))
		s.segs = s.segs[1:]
	}
	if len(s.segs) == 0 || s.segs[0].id != s.cur.Seg {
		s.cur = Cursor{Seg: s.cur.Seg, Off: 0}
		if len(s.segs) > 0 {
			s.cur.Seg = s.segs[0].id
		}
	}
	// Scan every segment: sizes, the event count after the cursor, and a
	// torn record at the tail of the last one.
	for i := range s.segs {
		from := int64(0)
		if s.segs[i].id == s.cur.Seg {
			from = s.cur.Off
		}
		n, end, size, err := s.scan(s.segs[i].id, from)
		if err != nil {
			return err
		}
		if i < len(s.segs)-1 {
			// Damage inside an older segment is met (and counted) by Peek.
			end = size
		} else if end < size {
			s.corrupt++ // a torn or zero-filled tail, cut below
		}
		s.events += n
		s.segs[i].size = end
		s.bytes += end
	}
	if len(s.segs) == 0 {
		s.segs = append(s.segs, segment{id: s.cur.Seg + 1})
		s.cur = Cursor{Seg: s.cur.Seg + 1}
	}
	last := s.segs[len(s.segs)-1]
	w, err := os.OpenFile(s.segPath(last.id), os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	// Cut a torn tail so appends continue at a record boundary.
	if err := w.Truncate(last.size); err != nil {
		w.Close()
		return err
	}
	if _, err := w.Seek(last.size, io.SeekStart); err != nil {
		w.Close()
		return err
	}
	s.w = w
	return s.writeCursor()
}

// scan counts the valid records of a segment from offset from and returns
// where the last valid one ends and the file's size.
func (s *Spool) scan(id uint64, from int64) (n, end, size int64, err error) {
	raw, err := os.ReadFile(s.segPath(id))
	if err != nil {
		return 0, 0, 0, err
	}
	var off int64
	for off < int64(len(raw)) {
		l, ok := s.frame(raw[off:])
		if !ok {
			if off = s.resync(raw, off+1); off < 0 {
				break
			}
			continue
		}
		if off >= from {
			n++
		}
		off += spoolRecHdr + l
		end = off
	}
	return n, end, int64(len(raw)), nil
}

// frame checks the record at the start of p and returns its event length.
func (s *Spool) frame(p []byte) (int64, bool) {
	if len(p) < spoolRecHdr || binary.LittleEndian.Uint32(p) != spoolMagic {
		return 0, false
	}
	l := int64(binary.LittleEndian.Uint32(p[4:]))
	if l == 0 || l > int64(len(p))-spoolRecHdr {
		return 0, false
	}
	if s.checksum(p[4:8], p[spoolRecHdr:spoolRecHdr+l]) != binary.LittleEndian.Uint32(p[8:]) {
		return 0, false
	}
	return l, true
}

func (s *Spool) checksum(length, ev []byte) uint32 {
	return crc32.Update(crc32.Checksum(length, s.crc), s.crc, ev)
}

// resync returns the offset of the first valid record at or after from in
// raw, or -1.
func (s *Spool) resync(raw []byte, from int64) int64 {
	magic := []byte{'S', 'M', 'S', 'P'}
	for from < int64(len(raw)) {
		i := bytes.Index(raw[from:], magic)
		if i < 0 {
			return -1
		}
		if _, ok := s.frame(raw[from+int64(i):]); ok {
			return from + int64(i)
		}
		from += int64(i) + 1
	}
	return -1
}

func (s *Spool) writeCursor() error {
	var raw [16]byte
	binary.LittleEndian.PutUint64(raw[:], s.cur.Seg)
	binary.LittleEndian.PutUint64(raw[8:], uint64(s.cur.Off))
	// One small pwrite: atomic against the process being killed.
	f, err := os.OpenFile(filepath.Join(s.dir, "cursor"), os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("spool cursor: %w", err)
	}
	_, err = f.WriteAt(raw[:], 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("spool cursor: %w", err)
	}
	return nil
}

// Append writes events[i] for i in [from, b.Len()) in order, as many as fit
// under the bound, and returns how many it wrote.  Events that do not fit
// are the caller's to count as dropped.  Past the bound, the events b
// marks with Keep (those that report a loss) are still written while they
// fit in the reserve above it: a full spool drops events, never the news
// of an earlier loss.
func (s *Spool) Append(b *Batch, from int) (int, error) {
	n, _, _, err := s.appendEvents(b.Len()-from, func(i int) []byte { return b.Event(from + i) }, b.keep, from)
	return n, err
}

// AppendSpan is Append for events, and also returns where the first
// written event starts and where the last ends: a span the replay can be
// told to skip (Reached, Advance).  It stops at the bound, reserve
// unused: the events are a copy of a batch still in flight, not a drop.
func (s *Spool) AppendSpan(events [][]byte) (n int, start, end Cursor, err error) {
	return s.appendEvents(len(events), func(i int) []byte { return events[i] }, nil, 0)
}

// reserve is the room above the bound kept for the events that report a
// loss (Batch.Keep): a sixteenth of the bound, at most 1 MiB (about 4,000
// "lost N" events).
func (s *Spool) reserve() int64 { return min(s.maxBytes/16, 1<<20) }

// appendEvents writes event(i) for i in [0, count) while they fit under
// the bound; after the first that does not, only the kept ones (i+base in
// keep, rising), while they fit in the reserve.
func (s *Spool) appendEvents(count int, event func(int) []byte, keep []int, base int) (n int, start, end Cursor, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	buf := s.hdr[:0]
	first := true
	limit, full := s.maxBytes, false
	for i := range count {
		for len(keep) > 0 && keep[0] < i+base {
			keep = keep[1:]
		}
		if full && len(keep) == 0 {
			break
		}
		kept := len(keep) > 0 && keep[0] == i+base
		if full && !kept {
			continue
		}
		ev := event(i)
		size := int64(spoolRecHdr + len(ev))
		if s.bytes+int64(len(buf))+size > limit {
			if !full {
				full, limit = true, s.maxBytes+s.reserve()
			}
			if !kept || s.bytes+int64(len(buf))+size > limit {
				continue
			}
		}
		if last := s.segs[len(s.segs)-1]; len(buf) > 0 && last.size+int64(len(buf))+size > s.segBytes {
			// Write what we have, then start the next segment.
			if err := s.write(buf); err != nil {
				return n - countIn(buf), start, end, err
			}
			buf = buf[:0]
		}
		if last := s.segs[len(s.segs)-1]; last.size > 0 && last.size+size > s.segBytes {
			if err := s.rollover(); err != nil {
				return n, start, end, err
			}
		}
		if len(ev) == 0 {
			n++ // nothing to keep (encoders never make one)
			continue
		}
		if first {
			last := s.segs[len(s.segs)-1]
			start, first = Cursor{Seg: last.id, Off: last.size + int64(len(buf))}, false
		}
		var h [spoolRecHdr]byte
		binary.LittleEndian.PutUint32(h[:], spoolMagic)
		binary.LittleEndian.PutUint32(h[4:], uint32(len(ev)))
		binary.LittleEndian.PutUint32(h[8:], s.checksum(h[4:8], ev))
		buf = append(buf, h[:]...)
		buf = append(buf, ev...)
		n++
	}
	s.hdr = buf
	if len(buf) > 0 {
		if err := s.write(buf); err != nil {
			return n - countIn(buf), start, end, err
		}
	}
	last := s.segs[len(s.segs)-1]
	end = Cursor{Seg: last.id, Off: last.size}
	if first {
		start = end
	}
	if n < count {
		return n, start, end, ErrSpoolFull
	}
	return n, start, end, nil
}

// countIn counts the records in an unwritten buffer.
func countIn(buf []byte) int {
	n := 0
	for len(buf) >= spoolRecHdr {
		l := int(binary.LittleEndian.Uint32(buf[4:]))
		buf = buf[min(len(buf), spoolRecHdr+l):]
		n++
	}
	return n
}

func (s *Spool) write(buf []byte) error {
	if _, err := s.writeFn(s.w, buf); err != nil {
		// A partial write leaves a torn record that the next open cuts;
		// the file offset is now unknown, so reopen at the known size.
		last := &s.segs[len(s.segs)-1]
		s.w.Truncate(last.size)
		s.w.Seek(last.size, io.SeekStart)
		return fmt.Errorf("spool write %s: %w", s.segPath(last.id), err)
	}
	s.segs[len(s.segs)-1].size += int64(len(buf))
	s.bytes += int64(len(buf))
	s.events += int64(countIn(buf))
	return nil
}

func (s *Spool) rollover() error {
	id := s.segs[len(s.segs)-1].id + 1
	w, err := os.OpenFile(s.segPath(id), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("spool segment: %w", err)
	}
	s.w.Close()
	s.w = w
	s.segs = append(s.segs, segment{id: id})
	return nil
}

// Peek reads up to max events from the cursor into buf (reused) and
// returns them with the cursor after the last one.  The events stay in the
// spool until Advance.  A damaged region is skipped up to the next valid
// record (Advance counts it); only an I/O error is returned.
func (s *Spool) Peek(max int, buf []byte, events [][]byte) ([][]byte, []byte, Cursor, error) {
	return s.PeekBefore(max, Cursor{Seg: math.MaxUint64}, buf, events)
}

// PeekBefore is Peek that stops at stop (the start of a span from
// AppendSpan): no event at or after it is returned.  The records are read
// a region at a time (peekBytes, one pread), not one by one, and the
// events returned point into buf.
func (s *Spool) PeekBefore(max int, stop Cursor, buf []byte, events [][]byte) ([][]byte, []byte, Cursor, error) {
	s.mu.Lock()
	cur := s.cur
	segs := append([]segment(nil), s.segs...)
	s.mu.Unlock()
	buf = buf[:0]
	events = events[:0]
	var spans []int // start and length in buf of each event
	for i := 0; i < len(segs) && len(spans)/2 < max && cur.before(stop); i++ {
		sg := segs[i]
		if sg.id < cur.Seg {
			continue
		}
		if sg.id > cur.Seg {
			cur = Cursor{Seg: sg.id, skipped: cur.skipped}
		}
		end := sg.size
		if stop.Seg == sg.id {
			end = min(end, stop.Off)
		}
		f, err := os.Open(s.segPath(sg.id))
		if err != nil {
			return nil, buf, s.cur, fmt.Errorf("spool read: %w", err)
		}
		var next int64
		spans, buf, next, err = s.peekSegment(f, cur.Off, end, sg.size, max, spans, buf)
		if next < 0 {
			// Damaged at cur: step to the next valid record in this
			// segment.
			off := -next - 1
			rest := make([]byte, sg.size-off)
			if _, err = f.ReadAt(rest, off); err == nil {
				cur.skipped++
				if n := s.resync(rest, 1); n < 0 {
					cur.Off = sg.size
				} else {
					cur.Off = off + n
				}
				i-- // go on in this segment
			}
		} else {
			cur.Off = next
		}
		f.Close()
		if err != nil {
			return nil, buf, s.cur, fmt.Errorf("spool read %s: %w", s.segPath(sg.id), err)
		}
	}
	for k := 0; k < len(spans); k += 2 {
		events = append(events, buf[spans[k]:spans[k]+spans[k+1]:spans[k]+spans[k+1]])
	}
	return events, buf, cur, nil
}

// peekBytes is how much of a segment one read of PeekBefore takes.
const peekBytes = 256 << 10

// peekSegment reads the records of f from off up to end (size: the
// segment's) until spans holds limit events, appending the records to buf
// and each event's start and length to spans.  It returns the offset after
// the last record read, or -(offset+1) of a damaged record.
func (s *Spool) peekSegment(f *os.File, off, end, size int64, limit int, spans []int, buf []byte) ([]int, []byte, int64, error) {
	need := int64(0) // a record longer than one read: its whole length
	for len(spans)/2 < limit && off < end {
		start := len(buf)
		want := max(min(end-off, peekBytes), need)
		need = 0
		buf = slices.Grow(buf, int(want))[:start+int(want)]
		if _, err := f.ReadAt(buf[start:], off); err != nil {
			return spans, buf[:start], off, err
		}
		region := buf[start:]
		pos := 0
		for len(spans)/2 < limit && pos+spoolRecHdr <= len(region) {
			hdr := region[pos : pos+spoolRecHdr]
			l := int(binary.LittleEndian.Uint32(hdr[4:]))
			if binary.LittleEndian.Uint32(hdr) != spoolMagic || l == 0 || off+int64(pos+spoolRecHdr+l) > size {
				return spans, buf[:start+pos], -(off + int64(pos)) - 1, nil
			}
			if pos+spoolRecHdr+l > len(region) {
				need = int64(spoolRecHdr + l)
				break // read again from here
			}
			ev := region[pos+spoolRecHdr : pos+spoolRecHdr+l]
			if s.checksum(hdr[4:8], ev) != binary.LittleEndian.Uint32(hdr[8:]) {
				return spans, buf[:start+pos], -(off + int64(pos)) - 1, nil
			}
			spans = append(spans, start+pos+spoolRecHdr, l)
			pos += spoolRecHdr + l
		}
		buf = buf[:start+pos]
		if pos == 0 && (need == 0 || need > end-off) {
			// Less than a header left before the end (a torn tail), or
			// a record across stop (never written so).
			if need == 0 && end == size {
				return spans, buf, -off - 1, nil
			}
			break
		}
		off += int64(pos)
	}
	return spans, buf, off, nil
}

// Advance moves the cursor to c (from Peek), after its events were
// delivered, and deletes the segments read to their end.
func (s *Spool) Advance(c Cursor, n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.corrupt += c.skipped
	c.skipped = 0
	s.cur = c
	s.events = max(0, s.events-int64(n))
	for len(s.segs) > 1 && s.segs[0].id < c.Seg {
		s.bytes -= s.segs[0].size
		os.Remove(s.segPath(s.segs[0].id))
		s.segs = s.segs[1:]
	}
	if last := s.segs[len(s.segs)-1]; len(s.segs) == 1 && c.Seg == last.id && c.Off == last.size && last.size > 0 {
		// Everything read: start an empty segment so the disk space
		// goes back at once.
		if err := s.rollover(); err != nil {
			return err
		}
		s.bytes -= s.segs[0].size
		os.Remove(s.segPath(s.segs[0].id))
		s.segs = s.segs[1:]
		s.cur = Cursor{Seg: s.segs[0].id}
		s.events = 0
	}
	return s.writeCursor()
}

// before reports whether c is before d.
func (c Cursor) before(d Cursor) bool {
	return c.Seg < d.Seg || c.Seg == d.Seg && c.Off < d.Off
}

// Reached reports whether the cursor is at c or past it: nothing but
// read records and empty segment ends lie between them.
func (s *Spool) Reached(c Cursor) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.cur
	if !cur.before(c) {
		return true
	}
	for _, sg := range s.segs {
		switch {
		case sg.id < cur.Seg:
		case sg.id == cur.Seg:
			if sg.id == c.Seg || cur.Off < sg.size {
				return false
			}
		case sg.id < c.Seg:
			if sg.size > 0 {
				return false
			}
		default:
			return sg.id == c.Seg && c.Off == 0
		}
	}
	return false
}

// Past reports whether the cursor is beyond c: records after c were
// read.
func (s *Spool) Past(c Cursor) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return c.before(s.cur)
}

func (s *Spool) cursor() Cursor {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// Corrupt is the number of damaged regions skipped since open: a torn or
// zero-filled tail, or records whose frame or checksum is wrong.
func (s *Spool) Corrupt() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.corrupt
}

// Len returns the events and bytes waiting.
func (s *Spool) Len() (events, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.events, s.bytes
}

// Close closes the segment being written.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.w.Close(); err != nil {
		return fmt.Errorf("close spool: %w", err)
	}
	return nil
}
