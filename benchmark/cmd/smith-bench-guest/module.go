//go:build linux

package main

import (
	"fmt"
	"os"

	"smith/internal/kmodtest"
	"smith/shm"
)

// module loads and unloads smith.ko with the parameters of a configuration.
type module struct {
	path string // smith.ko
	// Parameter names, from docs/MODULE.md.
	transportParam string // send_type
	latencyParam   string // measure_latency
	loaded         bool
}

func (m *module) load(transport int, latency bool) error {
	if m.loaded {
		if err := m.unload(); err != nil {
			return err
		}
	}
	lat := "0"
	if latency {
		lat = "1"
	}
	if err := kmodtest.LoadFile(m.path,
		fmt.Sprintf("%s=%d", m.transportParam, transport),
		fmt.Sprintf("%s=%s", m.latencyParam, lat), kmodtest.TestRecords); err != nil {
		return err
	}
	m.loaded = true
	return nil
}

// unload unloads the module, waiting for the reader's close to reach it.
func (m *module) unload() error {
	if !m.loaded {
		return nil
	}
	if err := kmodtest.Unload(); err != nil {
		return err
	}
	m.loaded = false
	return nil
}

// setLatency switches the module's latency self-measurement at run time.
func (m *module) setLatency(on bool) error {
	v := "0"
	if on {
		v = "1"
	}
	p := "/sys/module/" + kmodtest.Module + "/parameters/" + m.latencyParam
	if err := os.WriteFile(p, []byte(v), 0); err != nil {
		return fmt.Errorf("switch latency measurement: %w", err)
	}
	return nil
}

// emit has the module write count test records; it returns how many it
// wrote (the others were dropped and counted).
func emit(dev *shm.Control, count, length uint32, firstSeq uint64) (uint64, error) {
	n, err := dev.EmitTest(shm.EmitTest{Count: count, Len: length, Producer: 1, FirstSeq: firstSeq})
	return uint64(n), err
}

// dropped is every record the module gave up on, whatever the transport.
func dropped(st shm.Stats) uint64 {
	return st.DroppedFull + st.DroppedTooLarge + st.DroppedFault + st.NetlinkFailed
}

// produced is every record the module handed to its transport.
func produced(st shm.Stats) uint64 {
	return st.Written + st.NetlinkSent
}
