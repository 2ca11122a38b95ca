// SPDX-License-Identifier: GPL-2.0

package pipeline

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"smith/agent/decode"
	"smith/agent/encode"
	"smith/agent/enrich"
	"smith/agent/filter"
	"smith/agent/metrics"
	"smith/agent/sink"
	"smith/agent/source"
)

// pathProc is a fake /proc holding the connecting process's ancestry:
// curl (5000) <- python3 with a long argv (4000) <- bash <- sshd <- init.
func pathProc(b *testing.B) string {
	dir := b.TempDir()
	procs := []struct {
		pid, ppid uint32
		exe, argv string
	}{
		{1, 0, "/usr/lib/systemd/systemd", "/sbin/init\x00splash\x00"},
		{2000, 1, "/usr/sbin/sshd", "sshd: alice [priv]\x00"},
		{3000, 2000, "/usr/bin/bash", "-bash\x00"},
		{4000, 3000, "/usr/bin/python3.11", "/usr/bin/python3\x00/opt/app/venv/bin/gunicorn\x00--workers\x004\x00--bind\x00" +
			"0.0.0.0:8080\x00--access-logfile\x00/var/log/app/access.log\x00--timeout\x0030\x00app.wsgi:application\x00"},
		{5000, 4000, "/usr/bin/curl", "curl\x00-s\x00https://api.example.com/v1/health\x00"},
	}
	for _, p := range procs {
		d := filepath.Join(dir, fmt.Sprint(p.pid))
		stat := fmt.Sprintf("%d (x) S %d %d %d 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 %d 1000 100\n", p.pid, p.ppid, p.pid, p.pid, 100+p.pid/100)
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.Fatal(err)
		}
		for name, v := range map[string]string{"stat": stat, "cmdline": p.argv} {
			if err := os.WriteFile(filepath.Join(d, name), []byte(v), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		if err := os.Symlink(p.exe, filepath.Join(d, "exe")); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}

// pathConnect is the record of a connect by curl (5000) in pathProc.
func pathConnect() []byte {
	ev := &decode.Event{Type: decode.TypeConnect, TimeNs: uint64(time.Now().UnixNano()), Pid: 5000, Tgid: 5000, Ppid: 4000,
		Pgid: 3000, Sid: 3000, UID: 1000, EUID: 1000, GID: 1000, Comm: []byte("curl"), PidNS: 4026531836, MntNS: 4026531841,
		CgroupID: 1, Result: -115, HasConnect: true,
		Connect: decode.Connect{Family: decode.AFInet, Protocol: 6, FD: 5, RemotePort: 443, LocalPort: 48812,
			RemoteAddr: [16]byte{93, 184, 216, 34}, LocalAddr: [16]byte{10, 0, 0, 5}}}
	ev.Fields[decode.FieldExe] = decode.Field{Present: true, Value: []byte("/usr/bin/curl")}
	rec := decode.AppendEvent(nil, ev)
	n, _, _ := decode.RecordLen(rec)
	return rec[:n]
}

// pathEnricher is the default configuration's enrichment (user names,
// containers, ancestry 4) on pathProc.
func pathEnricher(b *testing.B) *enrich.Enricher {
	passwd := filepath.Join(b.TempDir(), "passwd")
	os.WriteFile(passwd, []byte("root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n"), 0o644)
	return enrich.New(enrich.Options{ProcDir: pathProc(b), PasswdFile: passwd, CacheSize: 4096, Usernames: true,
		Containers: true, Ancestry: 4, ProcessTableSize: 16384})
}

// BenchmarkConnectPath is the agent's whole per-event path for a connect
// event with a parent of realistic argv and four ancestors, default
// enrichment, smith format, into the file sink.
//
// inline: decode, filter, enrich, encode into a batch and write each
// batch of 256 to the rotating file, in one goroutine: the work itself.
//
// pipeline: the real Pipeline reading a file ring that the benchmark
// fills, with the file sink's goroutine; one op is one event written to
// the ring and delivered to the file (ring commits, sequence state,
// batch hand-offs and metrics included).  Allocations are the process's.
func BenchmarkConnectPath(b *testing.B) {
	b.Run("inline", benchPathInline)
	b.Run("pipeline", benchPathPipeline)
}

func benchPathInline(b *testing.B) {
	rec := pathConnect()
	enc, _ := encode.New(encode.FormatSmith, encode.Host{Name: "web-1", IPs: []string{"10.0.0.5"}})
	enc.SetStream("0123456789abcdef")
	enr := pathEnricher(b)
	defer enr.Close()
	flt, _ := filter.New(999999, nil, nil)
	out, err := sink.OpenRotatingFile(filepath.Join(b.TempDir(), "events.json"), 1<<30, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	r := &benchReader{enc: enc, enr: enr, flt: flt, batch: sink.NewBatch(nil)}
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		r.step(b, rec)
		if len(r.meta.Ancestors) != 4 {
			b.Fatalf("%d ancestors, want 4", len(r.meta.Ancestors))
		}
		if r.batch.Len() == batchEvents {
			if _, err := out.Write(r.batch.Lines()); err != nil {
				b.Fatal(err)
			}
			r.batch.Reset()
		}
	}
	b.SetBytes(int64(r.batch.Bytes() / max(1, r.batch.Len())))
	reportRates(b, cpu0)
}

func benchPathPipeline(b *testing.B) {
	dir := b.TempDir()
	rf := newRingFile(b)
	prod, ringPath := rf.prod, rf.path
	src, err := source.OpenFile(ringPath, time.Millisecond)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Release()
	st, next, _, err := OpenSeqState(filepath.Join(dir, "state"), src.ConsumerPos(), src.Size())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	log := logrus.New()
	log.Out = io.Discard
	c := &metrics.Counters{}
	out, err := sink.NewFile(filepath.Join(dir, "events.json"), 1<<30, 1, 64, c, log)
	if err != nil {
		b.Fatal(err)
	}
	enc, _ := encode.New(encode.FormatSmith, encode.Host{Name: "web-1", IPs: []string{"10.0.0.5"}})
	enr := pathEnricher(b)
	defer enr.Close()
	flt, _ := filter.New(999999, nil, nil)
	p := New(Options{Source: src, Encoder: enc, Enricher: enr, Filter: flt, Sinks: []sink.Sink{out}, Counters: c,
		State: st, NextSeq: next, RingSize: src.Size(), QueueEvents: 16384, Log: log})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	rec := pathConnect()
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		for {
			if ok, _ := prod.Write(rec); ok {
				break
			}
			time.Sleep(100 * time.Microsecond) // ring full: let the reader catch up
		}
	}
	for c.Sent.Load() < uint64(b.N) {
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	reportRates(b, cpu0)
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	if err := out.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	var ws unix.Stat_t
	if unix.Stat(filepath.Join(dir, "events.json"), &ws) == nil && b.N > 0 {
		b.ReportMetric(float64(ws.Size)/float64(b.N), "B/event")
	}
}
