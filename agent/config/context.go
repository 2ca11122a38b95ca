// SPDX-License-Identifier: GPL-2.0

package config

import "time"

// checkContext validates the ancestry, executable hash and task bounds.
func (c *Config) checkContext(bad func(string, ...any)) {
	e := &c.Enrich
	if e.Ancestry < 0 || e.Ancestry > 16 {
		bad("enrich.ancestry = %d: want 0..16", e.Ancestry)
	}
	if e.ProcessTableSize < 64 || e.ProcessTableSize > 1<<20 {
		bad("enrich.process_table_size = %d: want 64..1048576", e.ProcessTableSize)
	}
	if e.ExeHashMaxSize < 1 {
		bad("enrich.exe_hash_max_size = %d: want at least 1 byte", e.ExeHashMaxSize)
	}
	if e.ExeHashRate < 1<<20 {
		bad("enrich.exe_hash_rate = %d: want at least 1MiB (bytes per second)", e.ExeHashRate)
	}
	if w := e.ExeHashWait.D(); w < 0 || w > time.Second {
		bad("enrich.exe_hash_wait = %v: want 0..1s", w)
	}
	if c.Tasks.IntegrityRate < 1<<20 {
		bad("tasks.integrity_rate = %d: want at least 1MiB (bytes per second)", c.Tasks.IntegrityRate)
	}
}
