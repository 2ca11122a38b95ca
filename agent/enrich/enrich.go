// Package enrich adds what the kernel record does not carry: the user
// name, the container and the Kubernetes pod, and the host's identity.
// Nothing shells out; every cache is bounded; a cache hit allocates
// nothing, so enrichment stays off the per-event allocation budget.
package enrich

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"smith/agent/decode"
	"smith/agent/encode"
)

// Options configure an Enricher.
type Options struct {
	ProcDir    string
	PasswdFile string
	DockerDir  string
	KubeletDir string
	CacheSize  int
	Usernames  bool
	Containers bool

	// ContainerdDir and CrioDirs hold the runtimes' container specs
	// (container_cri.go).
	ContainerdDir string
	CrioDirs      []string
	// Ancestry is how many ancestors events carry (0: none);
	// ProcessTableSize bounds the process table (proctable.go).
	Ancestry         int
	ProcessTableSize int
	// Hash configures the executable hash of exec events (exehash.go).
	Hash HashOptions
}

// Enricher fills encode.Meta.  Not safe for concurrent use: the reader
// goroutine owns it.
type Enricher struct {
	opt Options

	users       *bounded[uint32, string]
	passwdStamp time.Time // mtime of the passwd file the cache reflects
	passwdCheck time.Time

	containers *bounded[uint64, containerEntry]
	hostMntNS  uint32

	procs  *procTable
	anc    []encode.Ancestor
	hasher *exeHasher
	now    func() time.Time // time.Now; tests replace it
}

// containerEntry is a cached lookup.  One that failed (the process gone
// before its cgroup was read, the runtime's metadata not written yet) is
// tried again after containerRetry, not kept as "no container".
type containerEntry struct {
	c       Container
	retryAt time.Time // zero: final
}

const containerRetry = 2 * time.Second

// New returns an Enricher.
func New(opt Options) *Enricher {
	e := &Enricher{
		opt:        opt,
		users:      newBounded[uint32, string](opt.CacheSize),
		containers: newBounded[uint64, containerEntry](opt.CacheSize),
		now:        time.Now,
	}
	// Processes in the agent's own mount namespace are on the host: no
	// container lookup for them.
	if fi, err := os.Stat(filepath.Join(opt.ProcDir, "self/ns/mnt")); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			e.hostMntNS = uint32(st.Ino)
		}
	}
	e.startContext()
	return e
}

// Enrich fills m from ev (everything but Seq).  It reads the clock once:
// every cache it consults ages by that one reading (a clock read costs
// as much as a cache hit).
func (e *Enricher) Enrich(ev *decode.Event, m *encode.Meta) {
	now := e.now()
	m.Username, m.ContainerID, m.ContainerName, m.PodName = "", "", "", ""
	if e.opt.Usernames {
		m.Username = e.username(ev.UID, now)
	}
	if e.opt.Containers && ev.MntNS != 0 && ev.MntNS != e.hostMntNS {
		c := e.container(ev, now)
		m.ContainerID, m.ContainerName, m.PodName = c.ID, c.Name, c.PodName
		m.ContainerRuntime, m.PodNamespace, m.PodUID = c.Runtime, c.PodNamespace, c.PodUID
	} else {
		m.ContainerRuntime, m.PodNamespace, m.PodUID = "", "", ""
	}
	e.enrichContext(ev, m, now)
}

// username returns the name of uid from the passwd file ("" if unknown).
// The cache is dropped when the file changes (checked at most every 5 s
// by the clock reading now).
func (e *Enricher) username(uid uint32, now time.Time) string {
	if now.Sub(e.passwdCheck) > 5*time.Second {
		e.passwdCheck = now
		if fi, err := os.Stat(e.opt.PasswdFile); err == nil && !fi.ModTime().Equal(e.passwdStamp) {
			e.passwdStamp = fi.ModTime()
			e.users.clear()
		}
	}
	if name, ok := e.users.get(uid); ok {
		return name
	}
	name := lookupPasswd(e.opt.PasswdFile, uid)
	e.users.put(uid, name)
	return name
}

func lookupPasswd(path string, uid uint32) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	want := strconv.FormatUint(uint64(uid), 10)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// name:password:uid:gid:gecos:home:shell
		fields := bytes.SplitN(sc.Bytes(), []byte(":"), 4)
		if len(fields) >= 3 && string(fields[2]) == want {
			return string(fields[0])
		}
	}
	return ""
}

// container looks the container up by cgroup id (cgroup v2) or mount
// namespace (cgroup v1, where the record's cgroup id is 0), at the clock
// reading now.
func (e *Enricher) container(ev *decode.Event, now time.Time) Container {
	key := ev.CgroupID
	if key == 0 {
		key = uint64(ev.MntNS) | 1<<63
	}
	ent, ok := e.containers.get(key)
	if ok && (ent.retryAt.IsZero() || now.Before(ent.retryAt)) {
		return ent.c
	}
	c, final := e.lookupContainer(ev.Tgid)
	ent = containerEntry{c: c}
	if !final {
		ent.retryAt = now.Add(containerRetry)
	}
	e.containers.put(key, ent)
	return c
}

// lookupContainer reads the container of pid; final is false when
// something could not be read and a later event should try again.
func (e *Enricher) lookupContainer(pid uint32) (c Container, final bool) {
	raw, err := readLimited(filepath.Join(e.opt.ProcDir, strconv.FormatUint(uint64(pid), 10), "cgroup"), 64<<10)
	if err != nil {
		// Gone already: the next event of the same cgroup tries again.
		return Container{}, false
	}
	c, ok := ParseCgroup(raw)
	if !ok {
		return Container{}, true // not in a container: that is an answer
	}
	final = true
	e.runtimeMeta(&c)
	if c.Name == "" && c.Runtime != "" {
		final = false // the runtime writes its metadata as the container starts
	}
	if c.PodUID != "" && c.PodName == "" {
		if c.PodName = podName(e.opt.KubeletDir, c.PodUID); c.PodName == "" {
			final = false
		}
	}
	return c, final
}

// bounded is a map that never holds more than max entries: when full, it
// forgets half of them (cheap, and a miss only costs a lookup again).
type bounded[K comparable, V any] struct {
	mu  sync.Mutex
	m   map[K]V
	max int
}

func newBounded[K comparable, V any](max int) *bounded[K, V] {
	return &bounded[K, V]{m: make(map[K]V), max: max}
}

func (b *bounded[K, V]) get(k K) (V, bool) {
	b.mu.Lock()
	v, ok := b.m[k]
	b.mu.Unlock()
	return v, ok
}

func (b *bounded[K, V]) put(k K, v V) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.m) >= b.max {
		n := 0
		for key := range b.m {
			delete(b.m, key)
			if n++; n >= b.max/2+1 {
				break
			}
		}
	}
	b.m[k] = v
}

func (b *bounded[K, V]) clear() {
	b.mu.Lock()
	clear(b.m)
	b.mu.Unlock()
}

func (b *bounded[K, V]) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}

// HostIdentity returns the host name (override when not empty) and the
// local addresses, global unicast first, without shelling out.
func HostIdentity(override string) (encode.Host, error) {
	h := encode.Host{Name: override}
	if h.Name == "" {
		name, err := os.Hostname()
		if err != nil {
			return h, fmt.Errorf("host name: %w", err)
		}
		h.Name = name
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return h, fmt.Errorf("local addresses: %w", err)
	}
	var global, other []string
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() {
			continue
		}
		if ipn.IP.IsGlobalUnicast() {
			global = append(global, ipn.IP.String())
		} else {
			other = append(other, ipn.IP.String())
		}
	}
	h.IPs = append(global, other...)
	return h, nil
}
