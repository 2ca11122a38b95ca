package source

import (
	"bytes"
	"errors"
	"fmt"
	"sync/atomic"

	"smith/agent/metrics"
	"smith/shm"
)

// netlink reads the module's netlink transport (module parameter
// send_type=1) through a shm.Netlink.  A socket has no replay: what the
// module could not send (no listener, socket buffer full) it counts in
// netlink_failed, and what the agent read is gone from the kernel, so
// Commit has nothing to give back.
//
// Positions are a byte counter of the records received since the source
// opened, so the sequence state does not match across restarts: each
// start continues above the high-water mark.
type netlink struct {
	nl     *shm.Netlink
	ctl    *shm.Control // for ioctls (stats, version); nil if not openable
	module Module
	cons   atomic.Uint64
	lost   atomic.Uint64
}

// OpenNetlink registers with the module's netlink socket.  The device, if
// present, is opened too for the module's version and counters.
func OpenNetlink(device string) (Source, error) {
	nl, err := shm.DialNetlink()
	if err != nil {
		return nil, err
	}
	s := &netlink{nl: nl, module: Module{Transport: "netlink"}}
	// The device gives the version and counters; without it (another
	// reader holds it) records still come over netlink.
	if c, err := shm.OpenControl(device); err == nil {
		s.ctl = c
		if info, err := c.Info(); err == nil {
			s.module.Version = string(bytes.TrimRight(info.Version[:], "\x00"))
			s.module.ABI = fmt.Sprintf("%d.%d", info.ABIMajor, info.ABIMinor)
		}
	}
	return s, nil
}

// Next returns the next record of the last datagram, receiving another
// (without blocking) when it is used up.  The view is valid until the
// next receive, which happens only after the record was processed.
func (s *netlink) Next() (shm.Record, bool, error) {
	rec, ok, err := s.nl.Next()
	if errors.Is(err, shm.ErrClosed) {
		return shm.Record{}, false, nil
	}
	if ok {
		if c, isLost := rec.LostCount(); isLost {
			s.lost.Add(c)
		}
	}
	return rec, ok, err
}

// CommitTo marks the records before pos as consumed (there is nothing to
// give back to the kernel).
func (s *netlink) CommitTo(pos uint64) error {
	if pos < s.cons.Load() || pos > s.nl.ReadPos() {
		return fmt.Errorf("commit to %d: outside [%d, %d]", pos, s.cons.Load(), s.nl.ReadPos())
	}
	s.cons.Store(pos)
	return nil
}

// CommitsOnWait implements Source: Wait commits nothing.
func (s *netlink) CommitsOnWait() bool { return false }

// Wait blocks until a datagram is ready, Wake or Close.
func (s *netlink) Wait() error {
	err := s.nl.Wait()
	switch {
	case errors.Is(err, shm.ErrWoken):
		return nil
	case errors.Is(err, shm.ErrClosed):
		return ErrClosed
	}
	return err
}

func (s *netlink) ConsumerPos() uint64 { return s.cons.Load() }

// ProducerPos is 0: a socket is never read twice.
func (s *netlink) ProducerPos() uint64 { return 0 }

// Size is nominal: nothing is buffered on the agent's side.
func (s *netlink) Size() uint64 { return shm.RingDefaultSize }

// Wake makes Wait return.
func (s *netlink) Wake() { s.nl.Wake() }

// Close interrupts Wait for good and closes the socket.
func (s *netlink) Close() error { return s.nl.Close() }

// Release closes the socket and the device.
func (s *netlink) Release() error {
	errs := []error{s.nl.Close()}
	if s.ctl != nil {
		errs = append(errs, s.ctl.Close())
	}
	return errors.Join(errs...)
}

func (s *netlink) Module() Module { return s.module }

// Ring reports the module's counters (by ioctl) when the device is open.
func (s *netlink) Ring() metrics.Ring {
	r := metrics.Ring{Lost: s.lost.Load()}
	if s.ctl == nil {
		return r
	}
	st, err := s.ctl.Stats()
	if err != nil {
		return r
	}
	r.Written, r.DroppedFull, r.DroppedTooLarge, r.DroppedFault = st.Written, st.DroppedFull, st.DroppedTooLarge, st.DroppedFault
	r.NetlinkFailed = st.NetlinkFailed
	r.Truncated, r.HookMissed, r.LostRecords = st.Truncated, st.HookMissed, st.LostRecords
	return r
}
