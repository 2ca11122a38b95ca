package pipeline

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
)

// SeqState makes the per-host sequence numbers survive restarts without
// repeating, and without gaps when an agent is killed: a re-read record
// gets the number it had before.
//
// The file holds, in one 56-byte block written with a single pwrite
// (atomic against the process being killed):
//
//	magic | P1 | S1 | P2 | S2 | HWM | PID
//
// "The next event from ring position P1 gets number S1" is what was
// committed.  Before the pipeline commits the ring past P2 (the end of the
// last record it read), it writes P2/S2, the position and next number
// after that record.  On restart the ring's consumer position C says
// which of the two happened: C == P1 (the commit did not) gives S1,
// C >= P2 gives S2.  Anything else (a reloaded module, a lost file) starts
// at HWM, a high-water mark never below any number handed out: a gap, but
// never a repeat.
//
// PID is the agent that wrote the state.  What that agent read but did not
// commit is read again by the next one, whose self filter must drop the
// previous agent's own activity as it did, or the numbers would shift.
type SeqState struct {
	f                  *os.File
	p1, s1, p2, s2, hw uint64
	pid                uint64
	prevPid            uint32
}

const (
	seqMagic   = 0x32514553_48544d53 // "SMTHSEQ2"
	seqReserve = 1 << 16             // numbers reserved per HWM write
)

// OpenSeqState reads (or creates) the state in dir and returns the next
// number for the record at consumer position pos of a ring of ringSize
// bytes, and whether it had to fall back to the high-water mark.
func OpenSeqState(dir string, pos, ringSize uint64) (*SeqState, uint64, bool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, 0, false, fmt.Errorf("state directory: %w", err)
	}
	path := filepath.Join(dir, "seq")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, 0, false, fmt.Errorf("sequence state: %w", err)
	}
	st := &SeqState{f: f, pid: uint64(os.Getpid())}
	var raw [56]byte
	n, _ := f.ReadAt(raw[:], 0)
	le := binary.LittleEndian
	if n == len(raw) && le.Uint64(raw[:]) == seqMagic {
		st.p1, st.s1, st.p2, st.s2, st.hw = le.Uint64(raw[8:]), le.Uint64(raw[16:]), le.Uint64(raw[24:]), le.Uint64(raw[32:]), le.Uint64(raw[40:])
		st.prevPid = uint32(le.Uint64(raw[48:]))
	} else {
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
	if err := st.Write(pos, next, pos, next); err != nil {
		f.Close()
		return nil, 0, false, err
	}
	return st, next, fellBack, nil
}

// PreviousPID is the pid of the agent that wrote the state before this
// one (0 when unknown).
func (st *SeqState) PreviousPID() uint32 { return st.prevPid }

// Write stores committed (p1, s1) and pending (p2, s2).
func (st *SeqState) Write(p1, s1, p2, s2 uint64) error {
	st.p1, st.s1, st.p2, st.s2 = p1, s1, p2, s2
	if s2 >= st.hw {
		st.hw = s2 + seqReserve
	}
	return st.flush()
}

// Reserve makes sure every number below next is under the high-water mark
// before it is handed out.
func (st *SeqState) Reserve(next uint64) error {
	if next < st.hw {
		return nil
	}
	st.hw = next + seqReserve
	return st.flush()
}

func (st *SeqState) flush() error {
	var raw [56]byte
	le := binary.LittleEndian
	le.PutUint64(raw[:], seqMagic)
	le.PutUint64(raw[48:], st.pid)
	le.PutUint64(raw[8:], st.p1)
	le.PutUint64(raw[16:], st.s1)
	le.PutUint64(raw[24:], st.p2)
	le.PutUint64(raw[32:], st.s2)
	le.PutUint64(raw[40:], st.hw)
	if _, err := st.f.WriteAt(raw[:], 0); err != nil {
		return fmt.Errorf("write sequence state %s: %w", st.f.Name(), err)
	}
	return nil
}

// Close closes the file.
func (st *SeqState) Close() error { return st.f.Close() }
