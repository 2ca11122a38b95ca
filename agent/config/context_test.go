// SPDX-License-Identifier: GPL-2.0

package config

import (
	"strings"
	"testing"
	"time"
)

func TestContextKeys(t *testing.T) {
	cfg, err := Load(write(t, `
[enrich]
ancestry = 2
process_table_size = 1000
exe_hash = false
exe_hash_max_size = "8MiB"
exe_hash_rate = "4MiB"
exe_hash_wait = "5ms"
containerd_dir = "/x/containerd"
crio_dirs = ["/x/crio"]
[tasks]
integrity_rate = "2MiB"
`))
	if err != nil {
		t.Fatal(err)
	}
	e := cfg.Enrich
	if e.Ancestry != 2 || e.ProcessTableSize != 1000 || e.ExeHash || e.ExeHashMaxSize != 8<<20 ||
		e.ExeHashRate != 4<<20 || e.ExeHashWait.D() != 5*time.Millisecond || e.ContainerdDir != "/x/containerd" ||
		len(e.CrioDirs) != 1 || cfg.Tasks.IntegrityRate != 2<<20 {
		t.Fatalf("values not read: %+v %+v", e, cfg.Tasks)
	}
	d := Default()
	if d.Enrich.Ancestry != 4 || !d.Enrich.ExeHash {
		t.Fatalf("defaults: ancestry %d, exe_hash %v", d.Enrich.Ancestry, d.Enrich.ExeHash)
	}
	for text, want := range map[string]string{
		"[enrich]\nancestry = 17\n":            "enrich.ancestry",
		"[enrich]\nprocess_table_size = 1\n":   "enrich.process_table_size",
		"[enrich]\nexe_hash_rate = 10\n":       "enrich.exe_hash_rate",
		"[enrich]\nexe_hash_wait = \"1m\"\n":   "enrich.exe_hash_wait",
		"[enrich]\nexe_hash_max_size = 0\n":    "enrich.exe_hash_max_size",
		"[tasks]\nintegrity_rate = \"1KiB\"\n": "tasks.integrity_rate",
	} {
		if _, err := Load(write(t, text)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %s", text, err, want)
		}
	}
}
