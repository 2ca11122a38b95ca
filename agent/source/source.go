// Package source reads records from the kernel module: the shared-memory
// ring of /dev/smith (default), or, without a kernel, a ring in a shared
// file that shm's Go producer fills (tests, benchmarks, demos).
//
// Records are zero-copy views into the ring, valid until Commit.  The
// pipeline commits only once every event read is durable in its sinks, so
// a restarted agent reads again what a killed one had not delivered.
package source

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"smith/agent/metrics"
	"smith/shm"
)

// ErrClosed is returned by Wait after Close.
var ErrClosed = shm.ErrClosed

// Module describes the producer, for the heartbeat.
type Module struct {
	Version   string // module version string; "" without a module
	ABI       string // "MAJOR.MINOR"
	Transport string // "shm", "netlink", or "file"
}

// Source is a stream of records.  Next, CommitTo, Wait and ConsumerPos
// belong to the reading goroutine; Close, Ring and Module may be called
// from any goroutine.
type Source interface {
	// Next returns the next record without blocking; ok is false when
	// none is ready.  The view is valid until it is committed (and, for
	// netlink, until the next Next).
	Next() (rec shm.Record, ok bool, err error)
	// CommitTo hands the records before pos back to the producer: pos is
	// the End of a record returned by Next, or the commit position.
	CommitTo(pos uint64) error
	// Wait blocks until records are due (the ring's watermark, or at most
	// shm.DefaultWakeupTimeout with one ready), Wake or Close
	// (ErrClosed).  It does not commit, unless CommitsOnWait.  It may
	// return early: the caller calls Next again.
	Wait() error
	// CommitsOnWait is true for a ring whose module predates ABI 1.1: it
	// wakes a reader only at the commit position, so Wait commits all
	// that was read, and what was read must be durable before Wait.
	CommitsOnWait() bool
	// Wake makes Wait return (other work is waiting for the reader).
	Wake()
	// ConsumerPos is the committed position (positions never wrap).
	ConsumerPos() uint64
	// Size is the ring's data size in bytes.
	Size() uint64
	// ProducerPos is where the producer will write next (0 for netlink).
	ProducerPos() uint64
	// Close interrupts Wait; Release frees the ring once the reading
	// goroutine has returned.
	Close() error
	Release() error
	Ring() metrics.Ring
	Module() Module
}

// ring implements Source over a shm.Reader, whose Wake interrupts its Wait
// (shm.ErrWoken).  The reader keeps its default wake-up: a watermark of a
// quarter of the ring, a 100 ms bound.
type ring struct {
	rd      *shm.Reader
	r       *shm.Ring
	lost    atomic.Uint64
	resyncs atomic.Uint64 // gap records of the reader (shm.Resync)
	resyncB atomic.Uint64 // their bytes
	release func() error
	module  Module
}

func (s *ring) Next() (shm.Record, bool, error) {
	rec, ok, err := s.rd.Next()
	if ok {
		if n, isLost := rec.LostCount(); isLost {
			s.lost.Add(n)
		}
		if g := rec.Resync; g != nil {
			s.resyncs.Add(1)
			s.resyncB.Add(g.Bytes)
		}
	}
	return rec, ok, err
}

func (s *ring) CommitTo(pos uint64) error { return s.rd.CommitTo(pos) }
func (s *ring) Wake()                     { s.rd.Wake() }
func (s *ring) CommitsOnWait() bool       { return s.r.Meta().ABIMinor < 1 }

func (s *ring) Wait() error {
	if err := s.rd.Wait(); err != nil && !errors.Is(err, shm.ErrWoken) {
		return err
	}
	return nil
}
func (s *ring) ConsumerPos() uint64 { return s.r.ConsumerPos() }
func (s *ring) Size() uint64        { return s.r.Size() }
func (s *ring) ProducerPos() uint64 { return s.r.ProducerPos() }
func (s *ring) Close() error        { return s.rd.Close() }
func (s *ring) Release() error      { return s.release() }
func (s *ring) Module() Module      { return s.module }

// Ring reads the meta page: safe from any goroutine (atomic loads).
func (s *ring) Ring() metrics.Ring {
	c := s.r.Counters()
	fill := 0.0
	if size := s.r.Size(); size > 0 {
		fill = float64(s.r.ProducerPos()-s.r.ConsumerPos()) / float64(size)
	}
	return metrics.Ring{
		Fill: fill, Written: c.Written, DroppedFull: c.DroppedFull, DroppedTooLarge: c.DroppedTooLarge,
		DroppedFault: c.DroppedFault, Truncated: c.Truncated, HookMissed: c.HookMissed,
		LostRecords: c.LostRecords, Lost: s.lost.Load(),
		Resyncs: s.resyncs.Load(), ResyncBytes: s.resyncB.Load(),
	}
}

// OpenDevice opens the module's ring device (normally /dev/smith).
func OpenDevice(path string) (Source, error) {
	d, err := shm.OpenDevice(path)
	if err != nil {
		return nil, fmt.Errorf("%w (is the smith module loaded? modprobe smith)", err)
	}
	info, err := d.Info()
	if err != nil {
		d.Close()
		return nil, err
	}
	if info.ABIMajor != shm.ABIMajor {
		d.Close()
		return nil, fmt.Errorf("module ABI %d.%d, this agent reads %d.x: upgrade together", info.ABIMajor, info.ABIMinor, shm.ABIMajor)
	}
	// The device is readable when the module has records due past the
	// reader's read position (smith_abi.h, ready()).
	rd, err := d.NewReader()
	if err != nil {
		d.Close()
		return nil, err
	}
	transport := "shm"
	if info.Transport == shm.TransportNetlink {
		transport = "netlink"
	}
	return &ring{rd: rd, r: d.Ring, release: d.Close, module: Module{
		Version:   string(bytes.TrimRight(info.Version[:], "\x00")),
		ABI:       fmt.Sprintf("%d.%d", info.ABIMajor, info.ABIMinor),
		Transport: transport,
	}}, nil
}

// OpenFile opens a ring in a shared file (kernel-free mode).  A file has
// no wake-up: Wait looks again after the poll interval, or sooner when
// the rate the file's producer writes at says the watermark comes first
// (shm.IntervalWaiter), as the device would wake the reader.
func OpenFile(path string, poll time.Duration) (Source, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open ring file: %w", err)
	}
	fr, err := shm.OpenFileRing(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	w := shm.NewIntervalWaiter(poll)
	rd, err := shm.NewReader(fr.Ring, w)
	if err != nil {
		w.Close()
		fr.Close()
		f.Close()
		return nil, fmt.Errorf("ring reader on %s: %w", path, err)
	}
	m := fr.Ring.Meta()
	return &ring{rd: rd, r: fr.Ring, release: func() error {
		return errors.Join(fr.Close(), f.Close())
	}, module: Module{ABI: fmt.Sprintf("%d.%d", m.ABIMajor, m.ABIMinor), Transport: "file"}}, nil
}
