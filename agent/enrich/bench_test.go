// SPDX-License-Identifier: GPL-2.0

package enrich

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"smith/agent/decode"
	"smith/agent/encode"
)

// BenchmarkEnrichEncode is the reader's per-event enrichment and encoding
// of an exec and a connect event of this process, with the context
// (ancestry, executable hash) off and on; every lookup is a cache hit
// after the first event, as in steady state.
func BenchmarkEnrichEncode(b *testing.B) {
	dir := b.TempDir()
	passwd := filepath.Join(dir, "passwd")
	os.WriteFile(passwd, []byte("root:x:0:0::/root:/bin/sh\n"), 0o644)
	self, _ := os.Executable()
	exec := &decode.Event{Type: decode.TypeExecve, Tgid: uint32(os.Getpid()), Pid: uint32(os.Getpid()), Ppid: uint32(os.Getppid()), Comm: []byte("bench")}
	exec.Fields[decode.FieldExe] = decode.Field{Present: true, Value: []byte(self)}
	exec.Fields[decode.FieldArgv] = decode.Field{Present: true, Value: []byte("/usr/bin/python3\x00-m\x00http.server\x008080\x00")}
	exec.Fields[decode.FieldCwd] = decode.Field{Present: true, Value: []byte("/root")}
	conn := &decode.Event{Type: decode.TypeConnect, Tgid: exec.Tgid, Pid: exec.Pid, Ppid: exec.Ppid, Comm: []byte("bench"), HasConnect: true,
		Connect: decode.Connect{Family: decode.AFInet, Protocol: 6, RemotePort: 443, RemoteAddr: [16]byte{10, 0, 0, 1}}}
	conn.Fields[decode.FieldExe] = exec.Fields[decode.FieldExe]
	for _, cfg := range []struct {
		name string
		opt  Options
	}{
		{"off", Options{}},
		{"ancestry", Options{Ancestry: 4, ProcessTableSize: 16384}},
		{"ancestry+hash", Options{Ancestry: 4, ProcessTableSize: 16384,
			Hash: HashOptions{Enabled: true, MaxSize: 128 << 20, Rate: 32 << 20, Wait: time.Second, CacheSize: 4096}}},
	} {
		for _, ev := range []*decode.Event{exec, conn} {
			for _, f := range []encode.Format{encode.FormatSmith, encode.FormatECS} {
				name := cfg.name + "/connect/" + string(f)
				if ev == exec {
					name = cfg.name + "/exec/" + string(f)
				}
				b.Run(name, func(b *testing.B) {
					opt := cfg.opt
					opt.ProcDir, opt.PasswdFile, opt.CacheSize, opt.Usernames, opt.Containers = "/proc", passwd, 4096, true, true
					e := New(opt)
					defer e.Close()
					enc, _ := encode.New(f, encode.Host{Name: "bench", IPs: []string{"10.0.0.2"}})
					var m encode.Meta
					buf := make([]byte, 0, 8192)
					e.Enrich(ev, &m) // warm the caches
					b.ReportAllocs()
					for b.Loop() {
						e.Enrich(ev, &m)
						buf = enc.AppendEvent(buf[:0], ev, &m)
					}
				})
			}
		}
	}
}
