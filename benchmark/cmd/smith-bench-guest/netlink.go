//go:build linux

package main

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"smith/shm"
)

// netlinkReader consumes the netlink transport through shm.Netlink in its
// own goroutine and counts the records it receives.
type netlinkReader struct {
	nl      *shm.Netlink
	records atomic.Uint64
	tests   atomic.Uint64 // SMITH_REC_TEST records
	mu      sync.Mutex
	err     error // set by the reading goroutine before it returns
	wg      sync.WaitGroup
}

func openNetlink() (*netlinkReader, error) {
	nl, err := shm.DialNetlink()
	if err != nil {
		return nil, err
	}
	r := &netlinkReader{nl: nl}
	r.wg.Add(1)
	go r.run()
	return r, nil
}

func (r *netlinkReader) run() {
	defer r.wg.Done()
	for {
		rec, err := r.nl.Read()
		if err != nil {
			if !errors.Is(err, shm.ErrClosed) {
				r.mu.Lock()
				r.err = err
				r.mu.Unlock()
			}
			if errors.Is(err, shm.ErrCorrupt) {
				continue // the rest of that datagram is dropped
			}
			return
		}
		r.records.Add(1)
		if rec.Type == shm.RecTest {
			r.tests.Add(1)
		}
	}
}

func (r *netlinkReader) status() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprintf("netlink reader: %d records, error %v", r.records.Load(), r.err)
}

func (r *netlinkReader) received() uint64    { return r.records.Load() }
func (r *netlinkReader) testRecords() uint64 { return r.tests.Load() }

// Close stops the receive loop and closes the socket.
func (r *netlinkReader) Close() error {
	err := r.nl.Close()
	r.wg.Wait()
	return err
}
