//go:build linux

package main

import (
	"fmt"
	"os"
	"time"

	"smith/benchmark/internal/results"
	"smith/internal/harness"
	"smith/shm"
)

// transports measures, for shm and then netlink, the producer's cost per
// record and the highest offered rate carried before the first drop.
func (b *bench) transports() error {
	for _, t := range []struct {
		name   string
		config string
	}{{"shm", results.ConfigShm}, {"netlink", results.ConfigNetlink}} {
		fmt.Fprintf(os.Stderr, "smith-bench-guest: transport %s\n", t.name)
		if err := b.transport(t.name, t.config); err != nil {
			return fmt.Errorf("transport %s: %w", t.name, err)
		}
		b.checkpoint()
	}
	return b.m.unload()
}

func (b *bench) transport(name, config string) error {
	s, err := b.start(config)
	if err != nil {
		return err
	}
	defer s.Close()
	dev, ok := s.dev.(*shm.Control)
	if !ok {
		return fmt.Errorf("configuration %s has no device to emit test records through", config)
	}
	e := &emitter{b: b, name: name, dev: dev, cons: s.cons}
	for round := 1; round <= b.o.rounds; round++ {
		c, err := e.cost(uint32(b.o.emitCount), uint32(b.o.emitLen))
		if err != nil {
			return err
		}
		c.Transport, c.Round = name, round
		b.res.Cost = append(b.res.Cost, c)
	}
	step := time.Duration(b.o.stepSeconds * float64(time.Second))
	for _, rate := range offeredRates(b.o.maxRate) {
		st, err := e.step(rate, step, uint32(b.o.emitLen))
		if err != nil {
			return err
		}
		st.Transport = name
		b.res.Saturation = append(b.res.Saturation, st)
		fmt.Fprintf(os.Stderr, "smith-bench-guest: %s offered %.0f/s achieved %.0f/s carried %.0f/s dropped %d\n",
			name, st.Offered, st.Achieved, st.Carried, st.Dropped)
		// One step past the first drop shows the trend; more only
		// spend time.
		if st.Dropped > 0 || st.Achieved < 0.5*st.Offered {
			break
		}
	}
	if b.o.stormProcs > 0 {
		st, err := b.storm(name, s)
		if err != nil {
			return err
		}
		b.res.Storms = append(b.res.Storms, st)
		fmt.Fprintf(os.Stderr, "smith-bench-guest: %s storm: %d connects in %.1f s, %d records, %d received, %d dropped\n",
			name, st.Calls, st.Seconds, st.Records, st.Received, st.Dropped)
	}
	b.note("%s consumer after the transport runs: %s", name, s.cons.status())
	return nil
}

// storm runs stormProcs connect loops at once and counts what the module
// produced and the consumer received.
func (b *bench) storm(name string, s *session) (results.Storm, error) {
	st := results.Storm{Transport: name, Procs: b.o.stormProcs}
	before, err := s.dev.Stats()
	if err != nil {
		return st, err
	}
	got0 := s.cons.received()
	t0 := time.Now()
	errs := make(chan error, b.o.stormProcs)
	for range b.o.stormProcs {
		go func() {
			_, _, err := b.loop("connect", b.o.stormN, false)
			errs <- err
		}()
	}
	var firstErr error
	for range b.o.stormProcs {
		if err := <-errs; err != nil && firstErr == nil {
			firstErr = err
		}
	}
	st.Seconds = time.Since(t0).Seconds()
	if firstErr != nil {
		return st, fmt.Errorf("storm: %w", firstErr)
	}
	// Let the consumer catch up with what the module handed over.
	time.Sleep(500 * time.Millisecond)
	after, err := s.dev.Stats()
	if err != nil {
		return st, err
	}
	st.Calls = uint64(b.o.stormProcs * (b.o.stormN + 1)) // +1: hookloop's untimed warm-up call
	st.Records = produced(after) - produced(before)
	st.Dropped = dropped(after) - dropped(before)
	st.Received = s.cons.received() - got0
	return st, nil
}

// offeredRates are the steps of the rising load: 1, 2, 5 per decade.
func offeredRates(maxRate float64) []float64 {
	var r []float64
	for dec := 1e3; dec <= maxRate; dec *= 10 {
		for _, m := range []float64{1, 2, 5} {
			if v := m * dec; v <= maxRate {
				r = append(r, v)
			}
		}
	}
	return r
}

// emitter drives SMITH_IOC_EMIT_TEST and waits for the consumer to see
// the records.
type emitter struct {
	b    *bench
	name string
	dev  *shm.Control
	cons consumer
	seq  uint64
}

// cost times one call writing count records.
func (e *emitter) cost(count, length uint32) (results.TransportCost, error) {
	var c results.TransportCost
	before, err := e.dev.Stats()
	if err != nil {
		return c, err
	}
	got0 := e.cons.testRecords()
	t0 := time.Now()
	written, err := emit(e.dev, count, length, e.seq)
	el := time.Since(t0)
	e.seq += uint64(count)
	if err != nil {
		return c, err
	}
	got := e.drain(got0, written, 10*time.Second)
	after, err := e.dev.Stats()
	if err != nil {
		return c, err
	}
	c.RecordLen = int(length)
	c.Records = uint64(count)
	c.ElapsedNs = uint64(el.Nanoseconds())
	c.NsPerRecord = float64(el.Nanoseconds()) / float64(count)
	c.Received = got
	c.Dropped = dropped(after) - dropped(before)
	if got < written {
		e.missing(written, got, after)
	}
	return c, nil
}

// drain waits until the consumer has seen want more test records than
// from, or until timeout; it returns how many it saw.
func (e *emitter) drain(from, want uint64, timeout time.Duration) uint64 {
	deadline := time.Now().Add(timeout)
	for {
		got := e.cons.testRecords() - from
		if got >= want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// missing notes records the module wrote that the consumer never saw.
func (e *emitter) missing(written, got uint64, st shm.Stats) {
	e.b.note("%s consumer saw %d of %d test records written (%s; module written %d netlink sent %d failed %d producer %d consumer %d)",
		e.name, got, written, e.cons.status(), st.Written, st.NetlinkSent, st.NetlinkFailed, st.ProducerPos, st.ConsumerPos)
}

// step offers rate records/s for d, in one ioctl every tick, then lets the
// consumer catch up.
func (e *emitter) step(rate float64, d time.Duration, length uint32) (results.RateStep, error) {
	const tick = 10 * time.Millisecond
	st := results.RateStep{Offered: rate}
	before, err := e.dev.Stats()
	if err != nil {
		return st, err
	}
	got0 := e.cons.testRecords()
	var sent, written uint64
	took, err := harness.Pace(rate, d, tick, func(n int) error {
		w, err := emit(e.dev, uint32(n), length, e.seq)
		if err != nil {
			return err
		}
		e.seq += uint64(n)
		sent += uint64(n)
		written += w
		return nil
	})
	if err != nil {
		return st, err
	}
	offerSecs := took.Seconds()
	got := e.drain(got0, written, 5*time.Second)
	after, err := e.dev.Stats()
	if err != nil {
		return st, err
	}
	st.Seconds = offerSecs
	st.Sent = sent
	st.Received = got
	st.Dropped = dropped(after) - dropped(before)
	st.Achieved = float64(sent) / offerSecs
	st.Carried = float64(got) / offerSecs
	if got < written {
		e.missing(written, got, after)
	}
	return st, nil
}
