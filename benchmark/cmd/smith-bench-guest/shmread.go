//go:build linux

package main

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"smith/shm"
)

// shmConsumer reads the ring of /dev/smith through shm.Reader in its own
// goroutine and counts records.
//
// It waits in poll() on the device, as the agent does, but with a timeout:
// a poll that times out while records are ready is a wake-up the module
// failed to send, which is counted (and reported in the results) rather
// than left to stall the benchmark.
type shmConsumer struct {
	shmDev      *shm.Device
	dev         *device
	rd          *shm.Reader
	records     atomic.Uint64
	tests       atomic.Uint64
	wakeups     atomic.Uint64 // polls that returned readable
	missedWakes atomic.Uint64 // polls that timed out with records ready
	closed      atomic.Bool
	mu          sync.Mutex
	err         error // set by the reading goroutine before it returns
	wg          sync.WaitGroup
	once        sync.Once
	readerWait  bool
}

// openShmConsumer starts the ring consumer.  With readerWait it sleeps in
// shm.Reader.Wait (the epoll waiter the agent uses) instead of its own
// poll with a timeout, to compare the two.
func openShmConsumer(readerWait bool) (*shmConsumer, error) {
	d, err := shm.OpenDevice(shm.DevicePath)
	if err != nil {
		return nil, err
	}
	var rd *shm.Reader
	if readerWait {
		rd, err = d.NewReader()
	} else {
		rd, err = shm.NewReader(d.Ring, nil)
	}
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("ring reader: %w", err)
	}
	c := &shmConsumer{shmDev: d, rd: rd, readerWait: readerWait}
	// The ioctls go through the reader's own descriptor; Close closes it.
	c.dev = &device{fd: uintptr(d.FD()), close: func() error { return nil }}
	c.wg.Add(1)
	go c.run()
	return c, nil
}

const (
	// commitEvery bounds how many records are held before the consumer
	// position moves: a reader that keeps up must also give space back.
	commitEvery = 256
	// pollTimeoutMs bounds the wait when a wake-up is lost, and how long
	// Close takes.
	pollTimeoutMs = 50
)

func (c *shmConsumer) run() {
	defer c.wg.Done()
	held := 0
	take := func(rec shm.Record) {
		c.records.Add(1)
		if rec.Type == shm.RecTest {
			c.tests.Add(1)
		}
		if held++; held == commitEvery {
			c.rd.Commit()
			held = 0
		}
	}
	for !c.closed.Load() {
		rec, ok, err := c.rd.Next()
		if err != nil {
			c.setErr(err)
			return
		}
		if ok {
			take(rec)
			continue
		}
		// Caught up: give everything back, then look once more before
		// sleeping: the module wakes only a reader whose position it
		// sees at the record it commits.
		c.rd.Commit()
		held = 0
		if rec, ok, err = c.rd.Next(); err == nil && ok {
			take(rec)
			continue
		}
		if c.readerWait {
			if err := c.rd.Wait(); err != nil {
				if !errors.Is(err, shm.ErrClosed) {
					c.setErr(err)
				}
				return
			}
			c.wakeups.Add(1)
			continue
		}
		fds := []unix.PollFd{{Fd: int32(c.shmDev.FD()), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, pollTimeoutMs)
		switch {
		case errors.Is(err, unix.EINTR):
		case err != nil:
			c.setErr(fmt.Errorf("poll ring device: %w", err))
			return
		case n > 0:
			c.wakeups.Add(1)
		default:
			// Timed out: records ready now were not signalled.
			if rec, ok, err := c.rd.Next(); err == nil && ok {
				c.missedWakes.Add(1)
				take(rec)
			}
		}
	}
}

func (c *shmConsumer) setErr(err error) {
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
}

func (c *shmConsumer) loadErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *shmConsumer) received() uint64    { return c.records.Load() }
func (c *shmConsumer) testRecords() uint64 { return c.tests.Load() }

func (c *shmConsumer) status() string {
	return fmt.Sprintf("ring reader: %d records, %d wake-ups, %d lost wake-ups, error %v",
		c.records.Load(), c.wakeups.Load(), c.missedWakes.Load(), c.loadErr())
}

// Close stops the reading goroutine, then unmaps and closes the device.
func (c *shmConsumer) Close() error {
	var err error
	c.once.Do(func() {
		c.closed.Store(true)
		_ = c.rd.Close() // interrupts a blocked Wait
		c.wg.Wait()
		err = c.shmDev.Close()
		if rerr := c.loadErr(); rerr != nil {
			err = errors.Join(fmt.Errorf("ring reader: %w", rerr), err)
		}
	})
	return err
}
