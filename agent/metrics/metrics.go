// Package metrics holds the agent's counters and serves them in the
// Prometheus format.  Counters are plain atomics that the pipeline, the
// sinks and the heartbeat share; Prometheus and the heartbeat read the same
// values, so the two never disagree.
package metrics

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Drop is a reason an event was lost inside the agent.
type Drop int

// Agent-side drop reasons.
const (
	DropDecode     Drop = iota // a record the decoder refused (corrupt)
	DropSpoolFull              // Kafka down and the spool at its bound
	DropTooLarge               // event longer than kafka.max_message_bytes
	DropSink                   // a sink failed to write (stdout, file)
	DropSpoolError             // Kafka down and the spool write failed (disk full, I/O error)
	numDrops
)

// DropNames are the reason labels, by Drop.
var DropNames = [numDrops]string{"decode_error", "spool_full", "message_too_large", "sink_error", "spool_error"}

// Filter is a reason an event was not reported on purpose.
type Filter int

// Filter reasons.
const (
	FilterSelf Filter = iota // the agent or its children
	FilterExe                // filter.exe_allow
	FilterArgv               // filter.argv_allow
	numFilters
)

// FilterNames are the reason labels, by Filter.
var FilterNames = [numFilters]string{"self", "exe_allow", "argv_allow"}

// The Prometheus series the endpoint serves: what scrapers (tests,
// benchmarks, the soak) look up, so that a rename is one edit.
const (
	NameRead            = "smith_events_read_total"
	NameSent            = "smith_events_sent_total"
	NameAcked           = "smith_kafka_acked_total"
	NameSpoolCorrupt    = "smith_spool_corrupt_total"
	NameSpooled         = "smith_events_spooled_total"
	NameReplayed        = "smith_events_replayed_total"
	NameSpilled         = "smith_events_spilled_total"
	NameSpillAcked      = "smith_events_spill_acked_total"
	NameDropped         = "smith_events_dropped_total"  // by LabelReason: DropNames and the ring's RingDrop* reasons
	NameFiltered        = "smith_events_filtered_total" // by LabelReason: FilterNames
	NameRingLost        = "smith_ring_lost_total"
	NameRingResyncs     = "smith_ring_resyncs_total"
	NameRingResyncBytes = "smith_ring_resync_bytes_total"
	NameRingFill        = "smith_ring_fill_ratio"
	NameModuleWritten   = "smith_module_records_written_total"
	NameModuleTruncated = "smith_module_truncated_total"
	NameSpoolBytes      = "smith_spool_bytes"
	NameSpoolEvents     = "smith_spool_events"
	// LabelReason is the label of NameDropped and NameFiltered.
	LabelReason = "reason"
)

// The module-side drop reasons of NameDropped (totals since it loaded).
const (
	RingDropFull      = "ring_full"
	RingDropTooLarge  = "ring_too_large"
	RingDropFault     = "ring_fault"
	RingHookMissed    = "hook_missed"
	RingNetlinkFailed = "netlink_failed"
)

// String is the reason label of d.
func (d Drop) String() string { return DropNames[d] }

// Ring is what the source reports about the kernel side.
type Ring struct {
	Fill float64 // 0..1 of the ring holding unread records
	// Totals since the module loaded (the meta page's counters).
	Written, DroppedFull, DroppedTooLarge, DroppedFault uint64
	Truncated, HookMissed, LostRecords                  uint64
	// NetlinkFailed: records the netlink transport could not send.
	NetlinkFailed uint64
	// Lost is the sum of "lost N" counts this agent read.
	Lost uint64
	// Resyncs: times this agent found its ring position corrupt and went
	// on at the producer's (shm.Resync); ResyncBytes: the bytes skipped.
	Resyncs, ResyncBytes uint64
}

// Counters are the agent's totals since it started.
type Counters struct {
	Read    atomic.Uint64 // events decoded (lost records included)
	Sent    atomic.Uint64 // events every sink took (acked, written or spooled), once per event
	Acked   atomic.Uint64 // events Kafka acknowledged, replayed ones included
	Spooled atomic.Uint64 // events written to the spool
	// Spilled counts events written to the spool while their requests
	// were in flight (the ring filling behind Kafka); SpillAcked those
	// of them Kafka acknowledged, which the replay then skips.
	Spilled    atomic.Uint64
	SpillAcked atomic.Uint64
	Replayed   atomic.Uint64 // events sent to Kafka from the spool
	drops      [numDrops]atomic.Uint64
	filtered   [numFilters]atomic.Uint64

	// Gauges.
	SpoolBytes  atomic.Uint64
	SpoolEvents atomic.Uint64
	// SpoolCorrupt: damaged spool regions skipped since start.
	SpoolCorrupt atomic.Uint64

	// RingStats, when set, reads the source's ring state.
	RingStats atomic.Pointer[func() Ring]

	// persist, when set (Persist), keeps the drop counters on disk.
	persistMu  sync.Mutex
	persist    atomic.Pointer[os.File]
	persistErr error
}

// AddDrop counts n events dropped for reason d.  With Persist, the count
// is on disk when AddDrop returns: a sink drops, counts, and only then
// lets the ring be committed past the events, so no kill can lose a drop
// without its count.
func (c *Counters) AddDrop(d Drop, n uint64) {
	c.drops[d].Add(n)
	if c.persist.Load() != nil {
		c.persistDrops()
	}
}

// dropFile is the on-disk form of the drop counters: one block written
// with a single pwrite (atomic against the process being killed).
//
//	magic | count of reasons | the counters by Drop | CRC-32C of the rest
const dropMagic = 0x31504f52_44485453 // "STHDROP1"

// Persist makes the agent's drop counters survive it: they are read from
// path (a missing or unreadable file starts at 0; the returned note says
// so), counted on from there, and written back at every drop.  Metrics
// and the heartbeat then report totals over every run that used the file.
func (c *Counters) Persist(path string) (note string, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return "", fmt.Errorf("drop counters: %w", err)
	}
	raw := make([]byte, 16+8*nDrops+4)
	n, _ := f.ReadAt(raw, 0)
	le := binary.LittleEndian
	switch {
	case n == 0:
		note = "no saved drop counters (first start, or the state directory was lost): counting from 0"
	case n >= 20 && le.Uint64(raw) == dropMagic:
		k := min(int(le.Uint64(raw[8:])), nDrops)
		end := 16 + 8*int(le.Uint64(raw[8:]))
		if end+4 > n || crc32.Checksum(raw[:end], dropCRC) != le.Uint32(raw[end:]) {
			note = "saved drop counters corrupt: counting from 0"
			break
		}
		for i := range k {
			c.drops[i].Add(le.Uint64(raw[16+8*i:]))
		}
	default:
		note = "saved drop counters corrupt: counting from 0"
	}
	c.persist.Store(f)
	c.persistDrops()
	return note, c.persistErr
}

var dropCRC = crc32.MakeTable(crc32.Castagnoli)

const nDrops = int(numDrops)

func (c *Counters) persistDrops() {
	c.persistMu.Lock()
	defer c.persistMu.Unlock()
	var raw [16 + 8*nDrops + 4]byte
	le := binary.LittleEndian
	le.PutUint64(raw[:], dropMagic)
	le.PutUint64(raw[8:], uint64(nDrops))
	for i := range nDrops {
		le.PutUint64(raw[16+8*i:], c.drops[i].Load())
	}
	le.PutUint32(raw[16+8*nDrops:], crc32.Checksum(raw[:16+8*nDrops], dropCRC))
	if _, err := c.persist.Load().WriteAt(raw[:], 0); err != nil {
		c.persistErr = fmt.Errorf("save drop counters: %w", err)
	}
}

// PersistError is the last failure to save the drop counters (nil: none).
func (c *Counters) PersistError() error {
	c.persistMu.Lock()
	defer c.persistMu.Unlock()
	return c.persistErr
}

// Dropped returns the count for reason d.
func (c *Counters) Dropped(d Drop) uint64 { return c.drops[d].Load() }

// AddFiltered counts an event filtered for reason f.
func (c *Counters) AddFiltered(f Filter) { c.filtered[f].Add(1) }

// Filtered returns the count for reason f.
func (c *Counters) Filtered(f Filter) uint64 { return c.filtered[f].Load() }

// Ring returns the ring's state, zero without a source.
func (c *Counters) Ring() Ring {
	if f := c.RingStats.Load(); f != nil {
		return (*f)()
	}
	return Ring{}
}

// Drops returns every drop counter by reason name, the ring's included, as
// the heartbeat reports them.
func (c *Counters) Drops() map[string]uint64 {
	r := c.Ring()
	m := map[string]uint64{
		RingDropFull:      r.DroppedFull,
		RingDropTooLarge:  r.DroppedTooLarge,
		RingDropFault:     r.DroppedFault,
		RingHookMissed:    r.HookMissed,
		RingNetlinkFailed: r.NetlinkFailed,
	}
	for i, name := range DropNames {
		m[name] = c.drops[i].Load()
	}
	return m
}

type collector struct {
	c    *Counters
	desc map[string]*prometheus.Desc
}

func newCollector(c *Counters) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &collector{c: c, desc: map[string]*prometheus.Desc{
		"read":      d(NameRead, "Events decoded from the ring, lost records included."),
		"sent":      d(NameSent, "Events taken by every sink (acknowledged, written or spooled)."),
		"acked":     d(NameAcked, "Events Kafka acknowledged, replayed ones included."),
		"corrupt":   d(NameSpoolCorrupt, "Damaged spool regions skipped (a torn or zero-filled tail, a record whose frame or checksum is wrong); each held one or more events."),
		"spooled":   d(NameSpooled, "Events written to the disk spool because Kafka could not take them."),
		"replayed":  d(NameReplayed, "Events sent to Kafka from the spool."),
		"spilled":   d(NameSpilled, "Events written to the disk spool while Kafka had them in flight, because the ring filled behind its acknowledgements."),
		"spillAck":  d(NameSpillAcked, "Spilled events Kafka then acknowledged: the replay steps over them instead of sending them again."),
		"dropped":   d(NameDropped, "Events lost, by reason (ring_* and hook_missed are the module's totals since it loaded).", LabelReason),
		"filtered":  d(NameFiltered, "Events not reported on purpose, by filter.", LabelReason),
		"lost":      d(NameRingLost, "Records the module reported lost in \"lost N\" records this agent read."),
		"resyncs":   d(NameRingResyncs, "Times the reader found its ring position corrupt and resynchronised to the producer's."),
		"resyncB":   d(NameRingResyncBytes, "Bytes of ring records the reader skipped when it resynchronised."),
		"fill":      d(NameRingFill, "Fraction of the ring holding records not yet consumed."),
		"written":   d(NameModuleWritten, "Records the module committed to the ring since it loaded."),
		"truncated": d(NameModuleTruncated, "Records written with at least one field cut at its cap."),
		"spoolB":    d(NameSpoolBytes, "Bytes waiting in the disk spool."),
		"spoolN":    d(NameSpoolEvents, "Events waiting in the disk spool."),
	}}
}

func (k *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range k.desc {
		ch <- d
	}
}

func (k *collector) Collect(ch chan<- prometheus.Metric) {
	c := k.c
	counter := func(name string, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(k.desc[name], prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(name string, v float64) {
		ch <- prometheus.MustNewConstMetric(k.desc[name], prometheus.GaugeValue, v)
	}
	counter("read", c.Read.Load())
	counter("sent", c.Sent.Load())
	counter("acked", c.Acked.Load())
	counter("corrupt", c.SpoolCorrupt.Load())
	counter("spooled", c.Spooled.Load())
	counter("replayed", c.Replayed.Load())
	counter("spilled", c.Spilled.Load())
	counter("spillAck", c.SpillAcked.Load())
	for reason, v := range c.Drops() {
		counter("dropped", v, reason)
	}
	for i, name := range FilterNames {
		counter("filtered", c.filtered[i].Load(), name)
	}
	r := c.Ring()
	counter("lost", r.Lost)
	counter("resyncs", r.Resyncs)
	counter("resyncB", r.ResyncBytes)
	gauge("fill", r.Fill)
	counter("written", r.Written)
	counter("truncated", r.Truncated)
	gauge("spoolB", float64(c.SpoolBytes.Load()))
	gauge("spoolN", float64(c.SpoolEvents.Load()))
}

// Path is where Serve answers.
const Path = "/metrics"

// Server serves /metrics.
type Server struct {
	srv *http.Server
	ln  net.Listener
	err chan error
}

// Serve starts serving c on addr (host:port; port 0 picks one).
func Serve(addr string, c *Counters) (*Server, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(newCollector(c)); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle(Path, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	s := &Server{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, ln: ln, err: make(chan error, 1)}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.err <- err
	}()
	return s, nil
}

// Addr is the address being served.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server and waits for it.
func (s *Server) Close(ctx context.Context) error {
	if err := s.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("stop metrics server: %w", err)
	}
	return <-s.err
}
