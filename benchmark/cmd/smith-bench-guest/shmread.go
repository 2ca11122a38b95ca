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
// goroutine and counts records.
type shmConsumer struct {
	shmDev  *shm.Device
	dev     *device
	rd      *shm.Reader
	records atomic.Uint64
	tests   atomic.Uint64
	err     error // set by the reading goroutine before it returns
	wg      sync.WaitGroup
	once    sync.Once
}

func openShmConsumer() (*shmConsumer, error) {
	d, err := shm.OpenDevice(shm.DevicePath)
	if err != nil {
		return nil, err
	}
	rd, err := d.NewReader()
	if err != nil {
		d.Close()
		return nil, err
	}
	c := &shmConsumer{shmDev: d, rd: rd}
	// The ioctls go through the reader's own descriptor; closing is the
	// consumer's job, so the device's close does nothing.
	c.dev = &device{fd: uintptr(d.FD()), close: func() error { return nil }}
	c.wg.Add(1)
	go c.run()
	return c, nil
}

// commitEvery bounds how many records are held before the consumer
// position moves: a reader that keeps up must also give the space back.
const commitEvery = 256

func (c *shmConsumer) run() {
	defer c.wg.Done()
	var held int
	for {
		rec, ok, err := c.rd.Next()
		if err != nil {
			c.err = err
			return
		}
		if !ok {
			held = 0
			if err := c.rd.Wait(); err != nil {
				if !errors.Is(err, shm.ErrClosed) {
					c.err = err
				}
				return
			}
			continue
		}
		c.records.Add(1)
		if rec.Type == shm.RecTest {
			c.tests.Add(1)
		}
		if held++; held == commitEvery {
			c.rd.Commit()
			held = 0
		}
	}
}

func (c *shmConsumer) received() uint64    { return c.records.Load() }
func (c *shmConsumer) testRecords() uint64 { return c.tests.Load() }

// Close stops the reading goroutine, then unmaps and closes the device.
func (c *shmConsumer) Close() error {
	var err error
	c.once.Do(func() {
		_ = c.rd.Close()
		c.wg.Wait()
		err = c.shmDev.Close()
		if c.err != nil {
			err = errors.Join(fmt.Errorf("ring reader: %w", c.err), err)
		}
	})
	return err
}
