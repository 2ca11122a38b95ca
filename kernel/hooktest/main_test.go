//go:build vmtest

// Package hooktest checks the hooks of smith.ko inside a test VM: every
// hooked call the test makes (exec, connect, module loads) must come back
// as a record whose fields match what the test knows about itself. Each
// test loads the module with the parameters it needs and unloads it, so
// the binary runs as root with the module not loaded;
// scripts/vm/scenarios/hooks.sh runs it.
package hooktest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"smith/shm"
)

const devPath = "/dev/" + shm.DeviceName

// The module and the test module, where the initramfs puts them.
func koPath(name string) string {
	if d := os.Getenv("SMITH_KO_DIR"); d != "" {
		return d + "/" + name
	}
	return "/" + name
}

// helperEnv makes the test binary run one step in a child process instead
// of the tests (see runHelper); the step name is its value.
const helperEnv = "SMITH_HOOKTEST_HELPER"

// cgroupRoot is where TestMain mounts cgroup2, to know our cgroup's id.
const cgroupRoot = "/tmp/hooktest-cgroup"

func TestMain(m *testing.M) {
	if step := os.Getenv(helperEnv); step != "" {
		os.Exit(runHelper(step))
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "hooktest: must run as root inside the test VM")
		os.Exit(1)
	}
	// A module loaded by the scenario is unloaded first (each test loads
	// its own) and loaded again at the end, as it was found.
	_, err := os.Stat("/sys/module/smith")
	wasLoaded := err == nil
	_ = rmmod("smith")
	if err := os.MkdirAll(cgroupRoot, 0o755); err == nil {
		_ = unix.Mount("cgroup2", cgroupRoot, "cgroup2", 0, "")
	}
	code := m.Run()
	_ = unix.Unmount(cgroupRoot, 0)
	if wasLoaded {
		if err := insmod(koPath("smith.ko")); err != nil {
			fmt.Fprintln(os.Stderr, "hooktest:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func insmod(path string, params ...string) error {
	out, err := exec.Command("insmod", append([]string{path}, params...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("insmod %s %s: %v: %s", path, strings.Join(params, " "), err, out)
	}
	return nil
}

func rmmod(name string) error {
	return unix.DeleteModule(name, 0)
}

// A source of records: the shm ring or the netlink socket.
type source interface {
	// next returns a copy of the next record, or nil when none came
	// within the timeout.
	next(timeout time.Duration) ([]byte, error)
	close()
}

type shmSource struct {
	dev *shm.Device
	r   *shm.Reader
}

func (s *shmSource) next(timeout time.Duration) ([]byte, error) {
	deadline := time.Now().Add(timeout)
	for {
		rec, ok, err := s.r.Next()
		if err != nil {
			return nil, err
		}
		if ok {
			b := append([]byte(nil), rec.Raw...)
			s.r.Commit()
			return b, nil
		}
		if time.Now().After(deadline) {
			return nil, nil
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (s *shmSource) close() {
	s.r.Close()
	s.dev.Close()
}

type netlinkSource struct {
	fd      int
	pending [][]byte
	buf     []byte
}

func openNetlink() (*netlinkSource, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, shm.NetlinkProto)
	if err != nil {
		return nil, fmt.Errorf("netlink socket, protocol %d: %w", shm.NetlinkProto, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink bind: %w", err)
	}
	// A large receive buffer: records arrive one message each.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
	hello := make([]byte, unix.NLMSG_HDRLEN)
	h := (*unix.NlMsghdr)(unsafe.Pointer(&hello[0]))
	h.Len = uint32(len(hello))
	h.Type = shm.NlmsgHello
	h.Seq = 1
	if err := unix.Sendto(fd, hello, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink hello: %w", err)
	}
	tv := unix.NsecToTimeval(int64(50 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink receive timeout: %w", err)
	}
	return &netlinkSource{fd: fd, buf: make([]byte, 1<<20)}, nil
}

func (s *netlinkSource) next(timeout time.Duration) ([]byte, error) {
	deadline := time.Now().Add(timeout)
	for len(s.pending) == 0 {
		n, _, err := unix.Recvfrom(s.fd, s.buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			if time.Now().After(deadline) {
				return nil, nil
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("netlink receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(s.buf[:n])
		if err != nil {
			return nil, fmt.Errorf("netlink parse: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Type == shm.NlmsgRecord {
				s.pending = append(s.pending, append([]byte(nil), m.Data...))
			}
		}
	}
	b := s.pending[0]
	s.pending = s.pending[1:]
	return b, nil
}

func (s *netlinkSource) close() { unix.Close(s.fd) }

// session is the module loaded with some parameters and a reader attached.
type session struct {
	t       *testing.T
	src     source
	dev     *shm.Device // the shm device, also open for ioctls
	backlog []*event
	lost    uint64 // sum of "lost N" records seen
	records uint64 // records read, lost records included
}

// open loads the module with params and attaches a reader: the shm ring,
// or netlink when params select it (send_type=1).
func open(t *testing.T, params ...string) *session {
	t.Helper()
	_ = rmmod("smith")
	if err := insmod(koPath("smith.ko"), params...); err != nil {
		t.Fatal(err)
	}
	s := &session{t: t}
	netlink := false
	for _, p := range params {
		netlink = netlink || p == fmt.Sprintf("send_type=%d", shm.TransportNetlink)
	}
	dev, err := shm.OpenDevice(devPath)
	if err != nil {
		_ = rmmod("smith")
		t.Fatal(err)
	}
	s.dev = dev
	if netlink {
		nl, err := openNetlink()
		if err != nil {
			dev.Close()
			_ = rmmod("smith")
			t.Fatal(err)
		}
		s.src = nl
	} else {
		r, err := dev.NewReader()
		if err != nil {
			dev.Close()
			_ = rmmod("smith")
			t.Fatal(err)
		}
		s.src = &shmSource{dev: dev, r: r}
	}
	t.Cleanup(func() {
		s.src.close()
		if netlink {
			dev.Close()
		}
		if err := rmmod("smith"); err != nil {
			t.Errorf("rmmod smith: %v", err)
		}
	})
	return s
}

func (s *session) info() shm.Info {
	s.t.Helper()
	in, err := s.dev.Info()
	if err != nil {
		s.t.Fatalf("SMITH_IOC_GET_INFO: %v", err)
	}
	return in
}

func (s *session) stats() shm.Stats {
	s.t.Helper()
	st, err := s.dev.Stats()
	if err != nil {
		s.t.Fatalf("SMITH_IOC_GET_STATS: %v", err)
	}
	return st
}

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

// read returns the next event record; lost records are counted.
func (s *session) read(timeout time.Duration) (*event, error) {
	for {
		b, err := s.src.next(timeout)
		if err != nil || b == nil {
			return nil, err
		}
		s.records++
		e, err := decode(b)
		if err != nil {
			return nil, err
		}
		if e.Hdr.Type == shm.RecLost {
			s.lost += e.lostCount
			continue
		}
		if e.isEvent() {
			return e, nil
		}
	}
}

type field struct {
	flags shm.FieldFlags
	val   []byte
}

// event is a decoded record: header, common event header and fields.
type event struct {
	shm.Event
	raw       []byte
	fields    map[shm.FieldID]field
	order     []shm.FieldID
	lostCount uint64
}

func (e *event) isEvent() bool {
	switch e.Hdr.Type {
	case shm.EvExecve, shm.EvConnect, shm.EvInitModule, shm.EvFinitModule:
		return true
	}
	return false
}

func (e *event) str(id shm.FieldID) string { return string(e.fields[id].val) }

func (e *event) has(id shm.FieldID) bool {
	_, ok := e.fields[id]
	return ok
}

func (e *event) comm() string {
	return string(bytes.TrimRight(e.Comm[:], "\x00"))
}

func (e *event) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "type %d flags %#x result %d pid %d tgid %d ppid %d comm %q",
		e.Hdr.Type, e.Hdr.Flags, e.Result, e.PID, e.TGID, e.PPID, e.comm())
	for _, id := range e.order {
		f := e.fields[id]
		fmt.Fprintf(&b, " [%d %#x %q]", id, f.flags, f.val)
	}
	return b.String()
}

// decode checks a record's framing per smith_abi.h and splits it.
func decode(b []byte) (*event, error) {
	var e event
	e.raw = b
	if len(b) < shm.SizeofRecHdr {
		return nil, fmt.Errorf("record of %d bytes, shorter than its header", len(b))
	}
	if err := binary.Read(bytes.NewReader(b), binary.LittleEndian, &e.Hdr); err != nil {
		return nil, fmt.Errorf("record header: %w", err)
	}
	if int(e.Hdr.Len&shm.RecLenMask) != len(b) {
		return nil, fmt.Errorf("record len %d, got %d bytes", e.Hdr.Len&shm.RecLenMask, len(b))
	}
	if e.Hdr.Type == shm.RecLost {
		if len(b) < 16 {
			return nil, fmt.Errorf("lost record of %d bytes", len(b))
		}
		e.lostCount = binary.LittleEndian.Uint64(b[8:])
		return &e, nil
	}
	if !e.isEvent() {
		return &e, nil
	}
	hl := int(unsafe.Sizeof(shm.Event{}))
	if len(b) < hl {
		return nil, fmt.Errorf("event record of %d bytes, header is %d", len(b), hl)
	}
	if err := binary.Read(bytes.NewReader(b[:hl]), binary.LittleEndian, &e.Event); err != nil {
		return nil, fmt.Errorf("event header: %w", err)
	}
	e.fields = make(map[shm.FieldID]field)
	off := hl
	for i := 0; i < int(e.NFields); i++ {
		if off+8 > len(b) {
			return nil, fmt.Errorf("field %d header at %d beyond the record (%d bytes)", i, off, len(b))
		}
		id := shm.FieldID(binary.LittleEndian.Uint16(b[off:]))
		fl := shm.FieldFlags(binary.LittleEndian.Uint16(b[off+2:]))
		n := int(binary.LittleEndian.Uint32(b[off+4:]))
		if off+8+n > len(b) {
			return nil, fmt.Errorf("field %d (id %d) of %d bytes beyond the record", i, id, n)
		}
		if _, dup := e.fields[id]; dup {
			return nil, fmt.Errorf("field id %d twice", id)
		}
		e.fields[id] = field{flags: fl, val: b[off+8 : off+8+n]}
		e.order = append(e.order, id)
		off = int(shm.RecAlign(uint32(off + 8 + n)))
	}
	if off < len(b) {
		return nil, fmt.Errorf("%d bytes after the last field", len(b)-off)
	}
	return &e, nil
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
	if want := nsInode(t, os.Getpid(), "mnt"); e.MntNs != want {
		t.Errorf("mnt_ns %d, want %d", e.MntNs, want)
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
