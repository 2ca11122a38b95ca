package sink

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Spool is a bounded, ordered, on-disk queue of events: what Kafka could
// not take yet.  It lives in a directory of segment files named by a
// growing number; a record is
//
//	u32 length | u32 CRC-32C of the event | event bytes
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
}

type segment struct {
	id   uint64
	size int64
}

// Cursor is a read position in the spool.
type Cursor struct {
	Seg uint64
	Off int64
}

const spoolRecHdr = 8

// ErrSpoolFull is returned when an event does not fit under the bound.
var ErrSpoolFull = errors.New("spool full")

// OpenSpool opens or creates the spool in dir, bounded to maxBytes on
// disk, in segments of about segBytes.
func OpenSpool(dir string, maxBytes, segBytes int64) (*Spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool directory: %w", err)
	}
	s := &Spool{dir: dir, maxBytes: maxBytes, segBytes: segBytes, crc: crc32.MakeTable(crc32.Castagnoli)}
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
		n, end, err := s.scan(s.segs[i].id, from)
		if err != nil {
			return err
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
// where the valid part ends.
func (s *Spool) scan(id uint64, from int64) (n, end int64, err error) {
	f, err := os.Open(s.segPath(id))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<16)
	var hdr [spoolRecHdr]byte
	var off int64
	var buf []byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return n, off, nil
		}
		l := int64(binary.LittleEndian.Uint32(hdr[:]))
		if l > s.segBytes+(1<<20) {
			return n, off, nil
		}
		if int64(cap(buf)) < l {
			buf = make([]byte, l)
		}
		buf = buf[:l]
		if _, err := io.ReadFull(r, buf); err != nil {
			return n, off, nil
		}
		if crc32.Checksum(buf, s.crc) != binary.LittleEndian.Uint32(hdr[4:]) {
			return n, off, nil
		}
		if off >= from {
			n++
		}
		off += spoolRecHdr + l
	}
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
// are the caller's to count as dropped.
func (s *Spool) Append(b *Batch, from int) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	buf := s.hdr[:0]
	n := 0
	for i := from; i < b.Len(); i++ {
		ev := b.Event(i)
		size := int64(spoolRecHdr + len(ev))
		if s.bytes+int64(len(buf))+size > s.maxBytes {
			break
		}
		if last := s.segs[len(s.segs)-1]; len(buf) > 0 && last.size+int64(len(buf))+size > s.segBytes {
			// Write what we have, then start the next segment.
			if err := s.write(buf); err != nil {
				return n - countIn(buf), err
			}
			buf = buf[:0]
		}
		if last := s.segs[len(s.segs)-1]; last.size > 0 && last.size+size > s.segBytes {
			if err := s.rollover(); err != nil {
				return n, err
			}
		}
		var h [spoolRecHdr]byte
		binary.LittleEndian.PutUint32(h[:], uint32(len(ev)))
		binary.LittleEndian.PutUint32(h[4:], crc32.Checksum(ev, s.crc))
		buf = append(buf, h[:]...)
		buf = append(buf, ev...)
		n++
	}
	s.hdr = buf
	if len(buf) > 0 {
		if err := s.write(buf); err != nil {
			return n - countIn(buf), err
		}
	}
	if n < b.Len()-from {
		return n, ErrSpoolFull
	}
	return n, nil
}

// countIn counts the records in an unwritten buffer.
func countIn(buf []byte) int {
	n := 0
	for len(buf) >= spoolRecHdr {
		l := int(binary.LittleEndian.Uint32(buf))
		buf = buf[min(len(buf), spoolRecHdr+l):]
		n++
	}
	return n
}

func (s *Spool) write(buf []byte) error {
	if _, err := s.w.Write(buf); err != nil {
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
// spool until Advance.
func (s *Spool) Peek(max int, buf []byte, events [][]byte) ([][]byte, []byte, Cursor, error) {
	s.mu.Lock()
	cur := s.cur
	segs := append([]segment(nil), s.segs...)
	s.mu.Unlock()
	buf = buf[:0]
	var lens []int
	for i := 0; i < len(segs) && len(lens) < max; i++ {
		sg := segs[i]
		if sg.id < cur.Seg {
			continue
		}
		if sg.id > cur.Seg {
			cur = Cursor{Seg: sg.id}
		}
		f, err := os.Open(s.segPath(sg.id))
		if err != nil {
			return nil, buf, s.cur, fmt.Errorf("spool read: %w", err)
		}
		var hdr [spoolRecHdr]byte
		for len(lens) < max && cur.Off+spoolRecHdr <= sg.size {
			if _, err := f.ReadAt(hdr[:], cur.Off); err != nil {
				f.Close()
				return nil, buf, s.cur, fmt.Errorf("spool read %s: %w", s.segPath(sg.id), err)
			}
			l := int(binary.LittleEndian.Uint32(hdr[:]))
			if cur.Off+spoolRecHdr+int64(l) > sg.size {
				break
			}
			start := len(buf)
			buf = append(buf, make([]byte, l)...)
			if _, err := f.ReadAt(buf[start:], cur.Off+spoolRecHdr); err != nil {
				f.Close()
				return nil, buf, s.cur, fmt.Errorf("spool read %s: %w", s.segPath(sg.id), err)
			}
			if crc32.Checksum(buf[start:], s.crc) != binary.LittleEndian.Uint32(hdr[4:]) {
				f.Close()
				return nil, buf, s.cur, fmt.Errorf("spool record at %s:%d: checksum mismatch", s.segPath(sg.id), cur.Off)
			}
			lens = append(lens, l)
			cur.Off += spoolRecHdr + int64(l)
		}
		f.Close()
	}
	events = events[:0]
	off := 0
	for _, l := range lens {
		events = append(events, buf[off:off+l:off+l])
		off += l
	}
	return events, buf, cur, nil
}

// Advance moves the cursor to c (from Peek), after its events were
// delivered, and deletes the segments read to their end.
func (s *Spool) Advance(c Cursor, n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur = c
	s.events -= int64(n)
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
