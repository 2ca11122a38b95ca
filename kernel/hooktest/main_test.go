//go:build vmtest

// Package hooktest checks the hooks of smith.ko inside a test VM: every
// hooked call the test makes (exec, connect, module loads) must come back
// as a record whose fields match what the test knows about itself. Each
// test loads the module with the parameters it needs and unloads it, so
// the binary runs as root with the module not loaded;
// scripts/vm/scenarios/hooks.sh runs it.
package hooktest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"smith/agent/decode"
	"smith/internal/kmodtest"
	"smith/shm"
)

const devPath = shm.DevicePath

// cgroupRoot is where TestMain mounts cgroup2, to know our cgroup's id.
const cgroupRoot = "/tmp/hooktest-cgroup"

func TestMain(m *testing.M) {
	// A step run in a child process (helper, runHelper).
	if step := kmodtest.Step(); step != "" {
		os.Exit(runHelper(step))
	}
	if err := os.MkdirAll(cgroupRoot, 0o755); err == nil {
		_ = unix.Mount("cgroup2", cgroupRoot, "cgroup2", 0, "")
	}
	// A module loaded by the scenario is unloaded first (each test loads
	// its own) and loaded again at the end, as it was found.
	code := kmodtest.RunUnloaded(m)
	_ = unix.Unmount(cgroupRoot, 0)
	os.Exit(code)
}

// A source of records: the shm ring's Reader or the netlink connection.
type source interface {
	SetDeadline(time.Time)
	Read() (shm.Record, error)
	Close() error
}

// session is the module loaded with some parameters and a reader attached.
type session struct {
	t       *testing.T
	src     source
	ring    *shm.Reader  // src when reading the ring, to commit
	dev     *shm.Control // the device's ioctls
	backlog []*event
	lost    uint64 // sum of "lost N" records seen
	records uint64 // records read, lost records included
}

// open loads the module with params and attaches a reader: the shm ring,
// or netlink when params select it (send_type=1).
func open(t *testing.T, params ...string) *session {
	t.Helper()
	if kmodtest.Loaded() {
		if err := kmodtest.Unload(); err != nil {
			t.Fatal(err)
		}
	}
	kmodtest.LoadT(t, params...)
	s := &session{t: t}
	netlink := slices.Contains(params, fmt.Sprintf("send_type=%d", shm.TransportNetlink))
	if netlink {
		ctl := kmodtest.Must(t, func() (*shm.Control, error) { return shm.OpenControl(devPath) })
		t.Cleanup(func() { ctl.Close() })
		s.src, s.dev = kmodtest.Must(t, shm.DialNetlink), ctl
	} else {
		dev := kmodtest.Must(t, func() (*shm.Device, error) { return shm.OpenDevice(devPath) })
		t.Cleanup(func() { dev.Close() })
		r := kmodtest.Must(t, dev.NewReader)
		// Woken by the first record: the tests wait for one at a time.
		if err := r.SetWakeup(0, shm.DefaultWakeupTimeout); err != nil {
			t.Fatal(err)
		}
		s.src, s.ring, s.dev = r, r, &dev.Control
	}
	// Cleanups run last-in first-out: the reader closes, then the device,
	// then the module unloads.
	t.Cleanup(func() { s.src.Close() })
	return s
}

func (s *session) info() shm.Info   { s.t.Helper(); return kmodtest.Must(s.t, s.dev.Info) }
func (s *session) stats() shm.Stats { s.t.Helper(); return kmodtest.Must(s.t, s.dev.Stats) }

// recordWait bounds the wait for one record: TCG emulation is slow.
const recordWait = 20 * time.Second

// find returns the first record, read earlier or now, that pred accepts.
func (s *session) find(what string, pred func(*event) bool) *event {
	s.t.Helper()
	for i, e := range s.backlog {
		if pred(e) {
			s.backlog = append(s.backlog[:i], s.backlog[i+1:]...)
			return e
		}
	}
	deadline := time.Now().Add(recordWait)
	for time.Now().Before(deadline) {
		e, err := s.read(time.Until(deadline))
		if err != nil {
			s.t.Fatal(err)
		}
		if e == nil {
			break
		}
		if pred(e) {
			return e
		}
		// Bounded: records of other processes are not kept forever.
		if len(s.backlog) < 4096 {
			s.backlog = append(s.backlog, e)
		}
	}
	s.t.Fatalf("no %s record within %v", what, recordWait)
	return nil
}

// read returns the next event record; lost records are counted. It
// returns nil when none came within the timeout.
func (s *session) read(timeout time.Duration) (*event, error) {
	s.src.SetDeadline(time.Now().Add(timeout))
	for {
		rec, err := s.src.Read()
		if errors.Is(err, shm.ErrDeadline) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		rec.Raw = append([]byte(nil), rec.Raw...)
		if s.ring != nil {
			s.ring.Commit()
		}
		s.records++
		e, err := decodeRecord(rec)
		if err != nil {
			return nil, err
		}
		switch e.kind {
		case decode.KindLost:
			s.lost += e.Lost
		case decode.KindEvent:
			return e, nil
		}
	}
}

type field struct {
	flags shm.FieldFlags
	val   []byte
}

// event is a record as agent/decode reads it, with its header as the
// source returned it and its fields by id.
type event struct {
	decode.Event
	Hdr    shm.RecHdr
	kind   decode.Kind
	raw    []byte
	fields map[shm.FieldID]field
	order  []shm.FieldID // the ids present, ascending
}

func (e *event) str(id shm.FieldID) string { return string(e.fields[id].val) }

func (e *event) has(id shm.FieldID) bool {
	_, ok := e.fields[id]
	return ok
}

func (e *event) comm() string { return string(e.Comm) }

func (e *event) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "type %d flags %#x result %d pid %d tgid %d ppid %d comm %q",
		e.Hdr.Type, e.Hdr.Flags, e.Result, e.Pid, e.Tgid, e.Ppid, e.comm())
	for _, id := range e.order {
		f := e.fields[id]
		fmt.Fprintf(&b, " [%d %#x %q]", id, f.flags, f.val)
	}
	return b.String()
}

// decodeRecord decodes a record with agent/decode and checks what the
// agent's decoder tolerates but the module never writes: a field id it
// does not know, one twice, bytes after the last field.
func decodeRecord(rec shm.Record) (*event, error) {
	e := &event{raw: rec.Raw, Hdr: shm.RecHdr{Len: uint32(len(rec.Raw)), Type: rec.Type, Flags: rec.Flags}}
	kind, err := decode.Decode(rec.Raw, &e.Event)
	if err != nil {
		return nil, fmt.Errorf("record type %d of %d bytes: %w", rec.Type, len(rec.Raw), err)
	}
	e.kind = kind
	if kind != decode.KindEvent {
		return e, nil
	}
	if e.Skipped != 0 {
		return nil, fmt.Errorf("%d fields of unknown ids: %v", e.Skipped, e)
	}
	e.fields = make(map[shm.FieldID]field)
	for id, f := range e.Fields {
		if !f.Present {
			continue
		}
		e.fields[shm.FieldID(id)] = field{flags: shm.FieldFlags(f.Flags), val: f.Value}
		e.order = append(e.order, shm.FieldID(id))
	}
	nf := int(binary.LittleEndian.Uint16(rec.Raw[unsafe.Offsetof(shm.Event{}.NFields):]))
	// The end of the last field, from the field headers (Decode checked
	// that they stay inside the record): an empty value has no bytes whose
	// address would say where its header was.
	end := int(unsafe.Sizeof(shm.Event{}))
	fh, lenAt := int(unsafe.Sizeof(shm.Field{})), int(unsafe.Offsetof(shm.Field{}.Len))
	for off, i := end, 0; i < nf && off+fh <= len(rec.Raw); i++ {
		vlen := int(binary.LittleEndian.Uint32(rec.Raw[off+lenAt:]))
		end = off + fh + vlen
		off += fh + (vlen+7)&^7
	}
	ids := len(e.order)
	if e.HasExeID { // decoded into ExeID, not kept in Fields
		ids++
	}
	if nf != ids {
		return nil, fmt.Errorf("%d fields in the header, %d distinct ids: %v", nf, ids, e)
	}
	if a := int(shm.RecAlign(uint32(end))); a < len(rec.Raw) {
		return nil, fmt.Errorf("%d bytes after the last field: %v", len(rec.Raw)-a, e)
	}
	return e, nil
}

// nsInode is the inode number of one of our namespaces (pid, mnt, uts).
func nsInode(t *testing.T, pid int, ns string) uint32 {
	t.Helper()
	var st unix.Stat_t
	p := fmt.Sprintf("/proc/%d/ns/%s", pid, ns)
	if err := unix.Stat(p, &st); err != nil {
		t.Fatalf("stat %s: %v", p, err)
	}
	return uint32(st.Ino)
}

// cgroupID is the id of our cgroup v2 (its directory's inode), 0 when
// cgroup2 could not be mounted.
func cgroupID(t *testing.T) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	path := ""
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "0::") {
			path = strings.TrimPrefix(l, "0::")
		}
	}
	var st unix.Stat_t
	if err := unix.Stat(cgroupRoot+path, &st); err != nil {
		return 0
	}
	return st.Ino
}

// checkCommon checks the header fields every record of a process of ours
// carries: credentials, namespaces, cgroup, nodename, time, cpu.
func checkCommon(t *testing.T, e *event, before, after time.Time) {
	t.Helper()
	if e.UID != 0 || e.EUID != 0 || e.GID != 0 {
		t.Errorf("uid %d euid %d gid %d, want 0 0 0", e.UID, e.EUID, e.GID)
	}
	if want := nsInode(t, os.Getpid(), "mnt"); e.MntNS != want {
		t.Errorf("mnt_ns %d, want %d", e.MntNS, want)
	}
	if id := cgroupID(t); id != 0 && e.CgroupID != id {
		t.Errorf("cgroup_id %d, want %d", e.CgroupID, id)
	}
	ts := time.Unix(0, int64(e.TimeNs))
	if ts.Before(before.Add(-time.Second)) || ts.After(after.Add(time.Second)) {
		t.Errorf("time %v not between %v and %v", ts, before, after)
	}
	if int(e.CPU) >= 1024 {
		t.Errorf("cpu %d", e.CPU)
	}
	if !e.has(shm.FNodename) {
		t.Errorf("no nodename field: %v", e)
	}
	for id, f := range e.fields {
		if f.flags&shm.FFFault != 0 {
			t.Errorf("field %d flagged as a fault: %v", id, e)
		}
	}
}

func expectEq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}

func expectStr(t *testing.T, e *event, id shm.FieldID, what, want string) {
	t.Helper()
	f, ok := e.fields[id]
	if !ok {
		t.Errorf("%s: no field %d in %v", what, id, e)
		return
	}
	if string(f.val) != want {
		t.Errorf("%s: got %q, want %q", what, f.val, want)
	}
}
