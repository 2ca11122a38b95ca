//go:build linux

package main

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"smith/shm"
)

// shmConsumer reads the ring of /dev/smith through shm.Reader in its own
// goroutine and counts records. It sleeps in Reader.Wait with the reader's
// default wake-up (a quarter of the ring, a 100 ms bound), as the agent
// does, and commits when it runs dry or every commitEvery records.
type shmConsumer struct {
	shmDev  *shm.Device
	dev     *shm.Control // the device's ioctls; Close closes it
	rd      *shm.Reader
	records atomic.Uint64
	tests   atomic.Uint64
	closed  atomic.Bool
	mu      sync.Mutex
	err     error // set by the reading goroutine before it returns
	wg      sync.WaitGroup
	once    sync.Once
}

// openShmConsumer starts the ring consumer.
func openShmConsumer() (*shmConsumer, error) {
	d, err := shm.OpenDevice(shm.DevicePath)
	if err != nil {
		return nil, err
	}
	rd, err := d.NewReader()
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("ring reader: %w", err)
	}
	c := &shmConsumer{shmDev: d, dev: &d.Control, rd: rd}
	c.wg.Add(1)
	go c.run()
	return c, nil
}

// commitEvery bounds how many records are held before the consumer
// position moves: a reader that keeps up must also give space back.
const commitEvery = 256

func (c *shmConsumer) run() {
	defer c.wg.Done()
	held := 0
	for !c.closed.Load() {
		rec, ok, err := c.rd.Next()
		if err != nil {
			c.setErr(err)
			return
		}
		if ok {
			c.records.Add(1)
			if rec.Type == shm.RecTest {
				c.tests.Add(1)
			}
			if held++; held == commitEvery {
				c.rd.Commit()
				held = 0
			}
			continue
		}
		c.rd.Commit()
		held = 0
		if err := c.rd.Wait(); err != nil {
			if !errors.Is(err, shm.ErrClosed) {
				c.setErr(err)
			}
			return
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
	return fmt.Sprintf("ring reader: %d records, error %v", c.records.Load(), c.loadErr())
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
