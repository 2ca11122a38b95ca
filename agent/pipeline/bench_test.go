package pipeline

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"smith/agent/decode"
	"smith/agent/encode"
	"smith/agent/enrich"
	"smith/agent/filter"
	"smith/agent/sink"
	"smith/shm"
)

// benchExec is a typical exec record: a few arguments, paths, a tty.
func benchExec() []byte {
	ev := &decode.Event{Type: decode.TypeExecve, TimeNs: uint64(time.Now().UnixNano()), Pid: 4242, Tgid: 4242, Ppid: 1,
		Pgid: 4242, Sid: 4242, UID: 0, Comm: []byte("python3"), PidNS: 4026531836, MntNS: 4026531841, CgroupID: 1}
	set := func(id uint16, v string) { ev.Fields[id] = decode.Field{Present: true, Value: []byte(v)} }
	set(decode.FieldExe, "/usr/bin/python3.11")
	set(decode.FieldNodename, "web-1")
	set(decode.FieldFilename, "/usr/bin/python3")
	set(decode.FieldArgv, "python3\x00-m\x00http.server\x00--bind\x00127.0.0.1\x008080\x00")
	set(decode.FieldCwd, "/srv/www")
	set(decode.FieldStdin, "/dev/pts/0")
	set(decode.FieldStdout, "/dev/pts/0")
	set(decode.FieldTTY, "pts0")
	rec := decode.AppendEvent(nil, ev)
	n, _, _ := decode.RecordLen(rec)
	return rec[:n]
}

func benchEnricher(b *testing.B) *enrich.Enricher {
	dir := b.TempDir()
	os.WriteFile(filepath.Join(dir, "passwd"), []byte("root:x:0:0:root:/root:/bin/bash\n"), 0o644)
	return enrich.New(enrich.Options{ProcDir: "/proc", PasswdFile: filepath.Join(dir, "passwd"), CacheSize: 1024, Usernames: true, Containers: true})
}

// BenchmarkDecodeEnrichEncode is the per-event work of the reader
// goroutine on one exec record: decode, filter, enrich (cache hit),
// encode into a reused batch.
func BenchmarkDecodeEnrichEncode(b *testing.B) {
	for _, format := range []encode.Format{encode.FormatSmith, encode.FormatECS} {
		b.Run(string(format), func(b *testing.B) {
			rec := benchExec()
			enc, _ := encode.New(format, encode.Host{Name: "web-1", IPs: []string{"10.0.0.5"}})
			enr := benchEnricher(b)
			flt, _ := filter.New(999999, []string{"/usr/sbin/cron"}, nil)
			r := &benchReader{enc: enc, enr: enr, flt: flt, batch: sink.NewBatch(nil)}
			b.ReportAllocs()
			b.SetBytes(int64(len(rec)))
			cpu0 := cpuTime()
			for b.Loop() {
				r.step(b, rec)
				if r.batch.Len() == 256 {
					r.batch.Reset()
				}
			}
			reportRates(b, cpu0)
		})
	}
}

// benchReader is the reader goroutine's per-event work without the ring.
type benchReader struct {
	enc     *encode.Encoder
	enr     *enrich.Enricher
	flt     *filter.Filter
	batch   *sink.Batch
	ev      decode.Event
	meta    encode.Meta
	scratch []byte
	seq     uint64
}

// step decodes rec, filters, enriches and encodes it into the batch.
func (r *benchReader) step(b *testing.B, rec []byte) {
	if _, err := decode.Decode(rec, &r.ev); err != nil {
		b.Fatal(err)
	}
	var skip bool
	if skip, _, r.scratch = r.flt.Skip(&r.ev, r.scratch); skip {
		b.Fatal("filtered")
	}
	r.enr.Enrich(&r.ev, &r.meta)
	r.seq++
	r.meta.Seq = r.seq
	r.batch.End(r.enc.AppendEvent(r.batch.Buf(), &r.ev, &r.meta))
}

// BenchmarkRingToJSON adds the ring: records written by the Go producer
// into an in-memory ring, read zero-copy, decoded, enriched and encoded,
// committed per batch.
func BenchmarkRingToJSON(b *testing.B) {
	r, err := shm.NewMemRing(1 << 21)
	if err != nil {
		b.Fatal(err)
	}
	prod := shm.NewProducer(r)
	rd, err := shm.NewReader(r, nil)
	if err != nil {
		b.Fatal(err)
	}
	rec := benchExec()
	enc, _ := encode.New(encode.FormatSmith, encode.Host{Name: "web-1", IPs: []string{"10.0.0.5"}})
	enr := benchEnricher(b)
	batch := sink.NewBatch(nil)
	var ev decode.Event
	var meta encode.Meta
	b.ReportAllocs()
	done := 0
	cpu0 := cpuTime()
	for b.Loop() {
		if ok, _ := prod.Write(rec); !ok {
			b.Fatal("ring full")
		}
		got, ok, err := rd.Next()
		if err != nil || !ok {
			b.Fatal(ok, err)
		}
		if _, err := decode.Decode(got.Raw, &ev); err != nil {
			b.Fatal(err)
		}
		enr.Enrich(&ev, &meta)
		batch.End(enc.AppendEvent(batch.Buf(), &ev, &meta))
		if done++; done%256 == 0 {
			rd.Commit()
			batch.Reset()
		}
	}
	reportRates(b, cpu0)
}

// cpuTime is the process's user+system CPU time.  The machines these
// benchmarks run on are shared, so besides wall-clock events/s they report
// events per CPU second: what one core does when it is ours.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportRates(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "events/cpu-s")
	}
}
