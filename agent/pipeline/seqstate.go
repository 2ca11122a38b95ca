package pipeline

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// SeqState makes the per-host sequence numbers survive restarts without
// repeating, and without gaps when an agent is killed: a re-read record
// gets the number it had before.
//
// The file holds, in one 72-byte block written with a single pwrite
// (atomic against the process being killed):
//
//	magic | P1 | S1 | P2 | S2 | HWM | PID | STREAM | CRC-32C of the rest
//
// STREAM is a random 64-bit id that every event carries beside its
// number: (stream, seq) is unique.  A missing, unreadable or corrupt file
// starts a new stream at 1 (with a warning): numbers may then repeat
// those of the old stream, but never within one stream.
//
// "The next event from ring position P1 gets number S1" is what was
// committed.  Before the pipeline commits the ring past P2 (the end of the
// last record it read), it writes P2/S2, the position and next number
// after that record.  On restart the ring's consumer position C says
// which of the two happened: C == P1 (the commit did not) gives S1,
// C >= P2 gives S2.  Anything else (a reloaded module) continues the
// stream at HWM, a high-water mark never below any number handed out: a
// gap, but never a repeat.  A number is used only below an HWM that is
// fsynced, so not even a power loss can bring back a lower one; the HWM
// is raised (and fsynced in the background) half a block ahead of need,
// so the reader does not wait for the disk.
//
// PID is the agent that wrote the state.  What that agent read but did not
// commit is read again by the next one, whose self filter must drop the
// previous agent's own activity as it did, or the numbers would shift.
type SeqState struct {
	f                  *os.File
	mu                 sync.Mutex // the fields and the file, against the background sync
	p1, s1, p2, s2, hw uint64
	synced             uint64     // HWM fsynced: numbers below it may be used
	syncing            chan error // a background fsync in progress (nil: none)
	pid                uint64
	stream             uint64
	prevPid            uint32
	fresh              string // why a new stream started ("" if none)
}

const (
	seqMagic    = 0x33514553_48544d53 // "SMTHSEQ3"
	seqMagicV2  = 0x32514553_48544d53 // "SMTHSEQ2": no stream, no checksum
	seqReserve  = 1 << 16             // numbers reserved per HWM write
	seqV2Len    = 56
	seqStateLen = 72
)

var seqCRC = crc32.MakeTable(crc32.Castagnoli)

// OpenSeqState reads (or creates) the state in dir and returns the next
// number for the record at consumer position pos of a ring of ringSize
// bytes, and whether it had to fall back to the high-water mark.  Fresh
// tells whether a new stream started and why.
func OpenSeqState(dir string, pos, ringSize uint64) (*SeqState, uint64, bool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, 0, false, fmt.Errorf("state directory: %w", err)
	}
	path := filepath.Join(dir, "seq")
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, 0, false, fmt.Errorf("sequence state: %w", err)
	}
	st := &SeqState{f: f, pid: uint64(os.Getpid())}
	var raw [seqStateLen]byte
	n, _ := f.ReadAt(raw[:], 0)
	le := binary.LittleEndian
	switch magic := le.Uint64(raw[:]); {
	case n == seqStateLen && magic == seqMagic && crc32.Checksum(raw[:64], seqCRC) == le.Uint32(raw[64:]):
		st.load(raw[:])
		st.stream = le.Uint64(raw[56:])
	case n >= seqV2Len && magic == seqMagicV2:
		// From an agent before streams: its numbers go on, in a stream
		// of their own.
		st.load(raw[:])
		if err := st.newStream(); err != nil {
			f.Close()
			return nil, 0, false, err
		}
	default:
		switch {
		case errors.Is(statErr, fs.ErrNotExist):
			st.fresh = "no sequence state (first start, or the state directory was lost)"
		case n == 0:
			st.fresh = "sequence state file empty"
		default:
			st.fresh = "sequence state file corrupt"
		}
		if err := st.newStream(); err != nil {
			f.Close()
			return nil, 0, false, err
		}
		st.s1, st.s2, st.hw = 1, 1, 1 // sequence numbers start at 1
		st.p1, st.p2 = pos, pos
	}
	next, fellBack := st.s1, false
	switch {
	case pos == st.p1:
	case pos >= st.p2 && pos-st.p2 < ringSize:
		next = st.s2
	default:
		next, fellBack = st.hw, true
	}
	if next > st.hw {
		st.hw = next
	}
	// Nothing is numbered yet: whatever HWM the file holds is used only
	// once Reserve fsynced a higher one.
	if err := st.Write(pos, next, pos, next); err != nil {
		f.Close()
		return nil, 0, false, err
	}
	return st, next, fellBack, nil
}

func (st *SeqState) load(raw []byte) {
	le := binary.LittleEndian
	st.p1, st.s1, st.p2, st.s2, st.hw = le.Uint64(raw[8:]), le.Uint64(raw[16:]), le.Uint64(raw[24:]), le.Uint64(raw[32:]), le.Uint64(raw[40:])
	st.prevPid = uint32(le.Uint64(raw[48:]))
}

func (st *SeqState) newStream() error {
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return fmt.Errorf("stream id: %w", err)
	}
	st.stream = binary.LittleEndian.Uint64(id[:])
	return nil
}

// Stream is the stream id every event carries beside its number: 16
// hexadecimal digits.
func (st *SeqState) Stream() string {
	var id [8]byte
	binary.BigEndian.PutUint64(id[:], st.stream)
	return hex.EncodeToString(id[:])
}

// Fresh says why a new stream started at this open ("" when the state
// was read and the stream goes on).
func (st *SeqState) Fresh() string { return st.fresh }

// PreviousPID is the pid of the agent that wrote the state before this
// one (0 when unknown).
func (st *SeqState) PreviousPID() uint32 { return st.prevPid }

// Write stores committed (p1, s1) and pending (p2, s2).
func (st *SeqState) Write(p1, s1, p2, s2 uint64) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.p1, st.s1, st.p2, st.s2 = p1, s1, p2, s2
	st.hw = max(st.hw, s2)
	return st.flush()
}

// Reserve returns how far numbers from next on may be used (exclusive):
// the fsynced high-water mark.  From the middle of the reserved block on
// it raises the mark by another block and fsyncs it in the background;
// it waits for the disk only when next has reached the fsynced mark.
func (st *SeqState) Reserve(next uint64) (uint64, error) {
	for {
		st.mu.Lock()
		if st.syncing == nil && (next+seqReserve/2 >= st.hw || next >= st.synced) {
			st.hw = max(st.hw, next+seqReserve)
			if err := st.flush(); err != nil {
				st.mu.Unlock()
				return 0, err
			}
			done, target := make(chan error, 1), st.hw
			st.syncing = done
			go func() {
				err := st.f.Sync()
				st.mu.Lock()
				if err == nil {
					st.synced = max(st.synced, target)
				} else {
					err = fmt.Errorf("sync sequence state %s: %w", st.f.Name(), err)
				}
				st.syncing = nil
				st.mu.Unlock()
				done <- err
			}()
		}
		if next < st.synced {
			lim := st.synced
			st.mu.Unlock()
			return lim, nil
		}
		wait := st.syncing
		st.mu.Unlock()
		if err := <-wait; err != nil {
			return 0, err
		}
	}
}

// flush writes the block; mu held.
func (st *SeqState) flush() error {
	var raw [seqStateLen]byte
	le := binary.LittleEndian
	le.PutUint64(raw[:], seqMagic)
	le.PutUint64(raw[8:], st.p1)
	le.PutUint64(raw[16:], st.s1)
	le.PutUint64(raw[24:], st.p2)
	le.PutUint64(raw[32:], st.s2)
	le.PutUint64(raw[40:], st.hw)
	le.PutUint64(raw[48:], st.pid)
	le.PutUint64(raw[56:], st.stream)
	le.PutUint32(raw[64:], crc32.Checksum(raw[:64], seqCRC))
	if _, err := st.f.WriteAt(raw[:], 0); err != nil {
		return fmt.Errorf("write sequence state %s: %w", st.f.Name(), err)
	}
	return nil
}

// Close waits for a background sync and closes the file.
func (st *SeqState) Close() error {
	st.mu.Lock()
	wait := st.syncing
	st.mu.Unlock()
	if wait != nil {
		<-wait
	}
	return st.f.Close()
}
