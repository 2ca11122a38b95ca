package sink

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/sirupsen/logrus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"smith/agent/config"
	"smith/agent/metrics"
	"smith/internal/harness"
	"smith/internal/selfsigned"
	"smith/internal/tcptest"
)

// The Kafka sink in process (so the race detector sees it): delivery,
// then an outage that goes to the spool and is replayed.  What is
// promised is every event at least once, not order (docs/EVENTS.md).
func TestKafkaSinkSpoolsAndReplays(t *testing.T) {
	goroutines := countGoroutines()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	data := t.TempDir()
	broker := func() *kfake.Cluster {
		c, err := kfake.NewCluster(kfake.Ports(port), kfake.SeedTopics(1, "smith"), kfake.DataDir(data))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	b1 := broker()
	kc := kafkaConfig(fmt.Sprintf("127.0.0.1:%d", port))
	kc.RetryInterval = config.Duration(50 * time.Millisecond)
	kc.Timeout = config.Duration(2 * time.Second)
	k, c := openKafka(t, kc, 16)
	waitOnline(t, k)
	var wg sync.WaitGroup
	send := func(from, n int) {
		b := NewBatch(func(*Batch) { wg.Done() })
		for i := from; i < from+n; i++ {
			b.End(fmt.Appendf(b.Buf(), `{"seq":%d}`, i))
		}
		b.Hold(1)
		wg.Add(1)
		k.Send(b)
	}
	send(0, 100)
	wg.Wait() // acknowledged
	if c.Acked.Load() != 100 {
		t.Fatalf("acked %d, want 100", c.Acked.Load())
	}
	b1.Close()
	send(100, 100)
	wg.Wait() // in the spool
	if c.Spooled.Load() == 0 {
		t.Fatal("nothing spooled while the broker was down")
	}
	send(200, 100)
	wg.Wait()
	b2 := broker()
	defer b2.Close()
	deadline := time.Now().Add(30 * time.Second)
	for c.SpoolEvents.Load() != 0 || c.Acked.Load() < 300 {
		if time.Now().After(deadline) {
			t.Fatalf("spool not replayed: %d events left, %d acked", c.SpoolEvents.Load(), c.Acked.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := closeKafka(k); err != nil {
		t.Fatal(err)
	}
	b2.Close()
	for deadline := time.Now().Add(10 * time.Second); countGoroutines() > goroutines; {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", countGoroutines(), goroutines, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Back up to read what arrived.
	b3 := broker()
	defer b3.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, _ := kgo.NewClient(kgo.SeedBrokers(kc.Brokers[0]), kgo.ConsumeTopics("smith"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	seen := map[string]bool{}
	for len(seen) < 300 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%d of 300 events in Kafka", len(seen))
		}
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Key) != "host-a" {
				t.Errorf("key %q", r.Key)
			}
			var n int
			if _, err := fmt.Sscanf(string(r.Value), `{"seq":%d}`, &n); err != nil || n < 0 || n >= 300 {
				t.Errorf("unexpected event %q", r.Value)
			}
			seen[string(r.Value)] = true
		})
	}
}

// An event Kafka can never take is dropped and counted, not spooled: it
// would block the replay behind it forever.
func TestKafkaSinkDropsEventsTooLarge(t *testing.T) {
	kc := kafkaConfig(fakeBroker(t).ListenAddrs()...)
	kc.MaxMessageBytes = 1024
	k, c := openKafka(t, kc, 4)
	waitOnline(t, k)
	var events []string
	for _, size := range []int{100, 5000, 1020, 100} { // too large for us; too large with sarama's overhead
		events = append(events, strings.Repeat("x", size))
	}
	sendAndWait(t, k, events...)
	closeKafka(k)
	if c.Dropped(metrics.DropTooLarge) != 2 || c.Acked.Load() != 2 || c.Spooled.Load() != 0 {
		t.Fatalf("dropped %d acked %d spooled %d; want 2, 2, 0", c.Dropped(metrics.DropTooLarge), c.Acked.Load(), c.Spooled.Load())
	}
}

// countGoroutines counts goroutines except the one process-wide ticker
// that sarama's metrics library starts on first use and never stops.
func countGoroutines() int {
	buf := make([]byte, 1<<20)
	n := 0
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if !strings.Contains(g, "go-metrics.(*meterArbiter)") {
			n++
		}
	}
	return n
}

// fakeBroker starts an in-process Kafka broker holding the topic smith,
// closed when the test ends.
func fakeBroker(tb testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	tb.Helper()
	broker, err := kfake.NewCluster(append(opts, kfake.SeedTopics(1, "smith"))...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(broker.Close)
	return broker
}

// kafkaConfig is the default [kafka] section with these brokers.
func kafkaConfig(brokers ...string) config.Kafka {
	cfg, _ := config.FromDefaults()
	kc := cfg.Kafka
	kc.Brokers = brokers
	return kc
}

// quietLog discards what it is given.
func quietLog() *logrus.Logger {
	log := logrus.New()
	log.Out = io.Discard
	return log
}

// closeKafka closes the sink, giving it 30 s.
func closeKafka(k *Kafka) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return k.Close(ctx)
}

// openKafka opens a Kafka sink for host-a with a fresh 1 MiB spool and
// its own counters and a queue of queue batches; logs are discarded.
func openKafka(t *testing.T, kc config.Kafka, queue int) (*Kafka, *metrics.Counters) {
	t.Helper()
	sp, err := OpenSpool(t.TempDir(), 1<<20, 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	c := &metrics.Counters{}
	k, err := NewKafka(kc, "host-a", sp, queue, c, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	return k, c
}

// sendAndWait sends the events as one batch and waits until the sink is
// done with it (sent, spooled or dropped).
func sendAndWait(t *testing.T, k *Kafka, events ...string) {
	t.Helper()
	done := make(chan struct{})
	b := NewBatch(func(*Batch) { close(done) })
	for _, ev := range events {
		b.End(append(b.Buf(), ev...))
	}
	b.Hold(1)
	k.Send(b)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("batch never done")
	}
}

// waitOnline waits until the sink connected and sends directly, or its
// first connection failed.
func waitOnline(t *testing.T, k *Kafka) {
	t.Helper()
	harness.WaitFor(t, 30*time.Second, "the Kafka sink to connect or fail to", func() bool { return k.isOnline() || k.LastError() != "" })
}

// sendOneEvent opens a Kafka sink with kc, sends one event, waits until
// the sink is done with it (sent or spooled) and closes the sink.
func sendOneEvent(t *testing.T, kc config.Kafka) (*metrics.Counters, *Kafka) {
	t.Helper()
	k, c := openKafka(t, kc, 4)
	waitOnline(t, k)
	sendAndWait(t, k, `{"seq":1}`)
	closeKafka(k)
	return c, k
}

// SASL as configured reaches a broker that requires it; a wrong password
// is refused and the events wait in the spool instead.
func TestKafkaSinkSASL(t *testing.T) {
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			broker := fakeBroker(t, kfake.EnableSASL(), kfake.Superuser(mech, "smith", "s3cret"))
			for _, pw := range []string{"s3cret", "wrong"} {
				kc := kafkaConfig(broker.ListenAddrs()...)
				kc.Timeout = config.Duration(2 * time.Second)
				kc.SASL = config.SASL{Mechanism: mech, User: "smith", Password: pw}
				c, k := sendOneEvent(t, kc)
				if pw == "s3cret" && (c.Acked.Load() != 1 || c.Spooled.Load() != 0) {
					t.Errorf("right password: acked %d spooled %d (%s)", c.Acked.Load(), c.Spooled.Load(), k.LastError())
				}
				if pw == "wrong" && (c.Acked.Load() != 0 || c.Spooled.Load() != 1) {
					t.Errorf("wrong password: acked %d spooled %d", c.Acked.Load(), c.Spooled.Load())
				}
			}
		})
	}
}

// selfSigned returns a CA-less self-signed certificate for 127.0.0.1 and
// its PEM.
func selfSigned(t *testing.T) (tls.Certificate, []byte) {
	t.Helper()
	der, key, err := selfsigned.New(selfsigned.Options{CommonName: "kafka", IPs: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), CA: true})
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TLS to the brokers with the configured CA; a broker whose certificate
// that CA did not sign is refused.
func TestKafkaSinkTLS(t *testing.T) {
	cert, caPEM := selfSigned(t)
	_, otherPEM := selfSigned(t)
	broker := fakeBroker(t, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}}))
	dir := t.TempDir()
	for name, ca := range map[string][]byte{"right CA": caPEM, "other CA": otherPEM} {
		caFile := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".pem")
		os.WriteFile(caFile, ca, 0o600)
		kc := kafkaConfig(broker.ListenAddrs()...)
		kc.Timeout = config.Duration(2 * time.Second)
		kc.TLS = config.TLS{Enabled: true, CAFile: caFile}
		c, k := sendOneEvent(t, kc)
		if delivered := c.Acked.Load() == 1; delivered != (name == "right CA") {
			t.Errorf("%s: acked %d spooled %d (%s)", name, c.Acked.Load(), c.Spooled.Load(), k.LastError())
		}
	}
}

// sendBatch sends batchOf(from, n, keep...) and returns a channel that
// gets the number delivered when the sink is done with them.
func sendBatch(k *Kafka, from, n int, keep ...int) chan int {
	done := make(chan int, 1)
	b := batchOf(from, n, keep...)
	b.release = func(b *Batch) { done <- b.Delivered() }
	b.Hold(1)
	k.Send(b)
	return done
}

// A broker that accepts connections and never answers: connecting hangs
// for the whole timeout, and meanwhile events are spooled, not held.
func TestKafkaSinkBlackholedBrokerDoesNotStopSpooling(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	closed := false
	go tcptest.Serve(ln, func(c net.Conn) {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			// Accepted just before the listener closed: the loop
			// below has run already.
			c.Close()
		} else {
			conns = append(conns, c)
		}
	})
	kc := kafkaConfig(ln.Addr().String())
	kc.Timeout = config.Duration(time.Hour)
	k, c := openKafka(t, kc, 4)
	for i := range 3 {
		if got := <-sendBatch(k, i*10, 10); got != 10 {
			t.Fatalf("batch %d: %d of 10 delivered", i, got)
		}
	}
	// The dial starts in the background: wait for it, then check it
	// is the only one.
	for deadline := time.Now().Add(30 * time.Second); k.dials.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if c.Spooled.Load() != 30 || k.dials.Load() != 1 {
		t.Fatalf("spooled %d, dials %d; want 30 spooled while the one dial hangs", c.Spooled.Load(), k.dials.Load())
	}
	// Unblock the dial so that Close does not wait an hour.
	ln.Close()
	mu.Lock()
	closed = true
	for _, c := range conns {
		c.Close()
	}
	mu.Unlock()
	if err := closeKafka(k); err != nil {
		t.Fatal(err)
	}
}

// openOfflineKafka is openKafka (queue 4) for a broker address where
// nothing listens: Kafka down.
func openOfflineKafka(t *testing.T) (*Kafka, *metrics.Counters) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	kc := kafkaConfig(addr)
	kc.Timeout = config.Duration(2 * time.Second)
	return openKafka(t, kc, 4)
}

// A spool that cannot write (a full disk) drops and counts, as its own
// reason; the sink goes on.
func TestKafkaSinkCountsSpoolWriteErrors(t *testing.T) {
	k, c := openOfflineKafka(t)
	k.spool.mu.Lock()
	k.spool.writeFn = func(*os.File, []byte) (int, error) { return 0, syscall.ENOSPC }
	k.spool.mu.Unlock()
	if got := <-sendBatch(k, 0, 10); got != 0 {
		t.Fatalf("%d delivered on a full disk", got)
	}
	if c.Dropped(metrics.DropSpoolError) != 10 || c.Dropped(metrics.DropSpoolFull) != 0 {
		t.Fatalf("spool_error %d spool_full %d; want 10, 0", c.Dropped(metrics.DropSpoolError), c.Dropped(metrics.DropSpoolFull))
	}
	k.spool.mu.Lock()
	k.spool.writeFn = func(f *os.File, p []byte) (int, error) { return f.Write(p) }
	k.spool.mu.Unlock()
	if got := <-sendBatch(k, 10, 10); got != 10 || c.Spooled.Load() != 10 {
		t.Fatalf("disk back: %d delivered, %d spooled", got, c.Spooled.Load())
	}
	closeKafka(k)
}

// A full spool still takes the events that report a loss ("lost N"),
// whether a batch comes to it while Kafka is down or after its request
// failed; the others are dropped and counted.
func TestKafkaSinkFullSpoolKeepsLossReports(t *testing.T) {
	k, c := openOfflineKafka(t)
	defer closeKafka(k)
	for n := 0; ; n += 1000 {
		if w, _ := k.spool.Append(batchOf(n, 1000), 0); w < 1000 {
			break // at the bound
		}
	}
	c.Spooled.Store(0)
	full, _ := k.spool.Len()

	// Offline: the batch goes to the spool, which takes event 3 only.
	if got := <-sendBatch(k, 0, 10, 3); got != 1 {
		t.Fatalf("offline: %d delivered, want the kept one", got)
	}
	// A request that failed: its events are spooled from a copy, which
	// knows the kept one (event 7) by where it lies in the batch.
	done := make(chan int, 1)
	b := batchOf(10, 10, 7)
	b.release = func(b *Batch) { done <- b.Delivered() }
	b.Hold(1)
	lb := &liveBatch{b: b}
	lb.pending.Store(1)
	k.mu.Lock()
	k.live[lb] = struct{}{}
	k.mu.Unlock()
	chunk := make([][]byte, b.Len())
	for i := range chunk {
		chunk[i] = b.Event(i)
	}
	k.answered(lb, chunk, 0, errors.New("refused"))
	if got := <-done; got != 1 {
		t.Fatalf("failed request: %d delivered, want the kept one", got)
	}
	if d := c.Dropped(metrics.DropSpoolFull); d != 18 {
		t.Fatalf("spool_full %d, want 18", d)
	}
	if ev, _ := k.spool.Len(); ev != full+2 || c.Spooled.Load() != 2 {
		t.Fatalf("spool holds %d events (%d spooled), want %d (2 spooled)", ev, c.Spooled.Load(), full+2)
	}
	evs := drain(t, k.spool, 1<<20)
	equal(t, evs[len(evs)-2:], []string{`{"seq":3}`, `{"seq":17}`})
}

// While the spool is replayed, new events go to Kafka directly: a replay
// slower than the event rate cannot keep them waiting for good.
func TestKafkaSinkSendsDirectlyDuringReplay(t *testing.T) {
	broker := fakeBroker(t)
	sp, err := OpenSpool(t.TempDir(), 1<<20, 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := sp.Append(batchOf(0, 2500), 0); n != 2500 || err != nil {
		t.Fatal(n, err)
	}
	kc := kafkaConfig(broker.ListenAddrs()...)
	c := &metrics.Counters{}
	// The first acknowledged chunk holds the replay, whenever it comes:
	// it may come before newKafka returns.
	hold, release := make(chan struct{}), make(chan struct{})
	var first sync.Once
	k, err := newKafka(kc, "host-a", sp, 4, c, quietLog(), func() {
		first.Do(func() {
			hold <- struct{}{}
			<-release
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	<-hold // the first chunk of 1000 is acknowledged; the replay stops here
	if !k.isOnline() {
		t.Fatal("not online after a chunk was acknowledged")
	}
	if got := <-sendBatch(k, 10000, 10); got != 10 {
		t.Fatalf("%d of 10 delivered", got)
	}
	if ev, _ := sp.Len(); c.Spooled.Load() != 0 || ev != 1500 {
		t.Fatalf("new events spooled %d, spool holds %d; want 0 and 1500 (the replay is held)", c.Spooled.Load(), ev)
	}
	close(release)
	harness.WaitFor(t, time.Minute, "the replay of 2500", func() bool { return c.Replayed.Load() >= 2500 })
	closeKafka(k)
}

// BenchmarkKafkaSink is the cost per event from a pipeline batch to
// Kafka's acknowledgement: the sink, sarama and a kfake broker in this
// process (its allocations are counted too), 8 batches of 256 events of
// about 300 bytes in flight, acks = all.
func BenchmarkKafkaSink(b *testing.B) {
	kc := kafkaConfig(fakeBroker(b).ListenAddrs()...)
	sp, err := OpenSpool(b.TempDir(), 1<<30, 1<<24)
	if err != nil {
		b.Fatal(err)
	}
	k, err := NewKafka(kc, "host-a", sp, 16, &metrics.Counters{}, quietLog())
	if err != nil {
		b.Fatal(err)
	}
	harness.WaitFor(b, 30*time.Second, "the Kafka sink to connect", k.isOnline)
	free := make(chan *Batch, 8)
	for range 8 {
		bt := NewBatch(func(bt *Batch) { free <- bt })
		for i := range 256 {
			bt.End(fmt.Appendf(bt.Buf(), `{"data_type":"59","seq":%d,"exe":"/usr/bin/python3.11","argv":"python3 -m http.server --bind 127.0.0.1 8080","cwd":"/srv/www","hostname":"web-1","local_ip":"10.0.0.5","uid":0,"euid":0,"pid":4242,"ppid":1,"tty":"pts0"}`, i))
		}
		free <- bt
	}
	b.ReportAllocs()
	b.ResetTimer()
	for sent := 0; sent < b.N; sent += 256 {
		bt := <-free
		bt.Hold(1)
		k.Send(bt)
	}
	for range 8 {
		<-free
	}
	b.StopTimer()
	// One op is one event (b.N events in batches of 256).
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	closeKafka(k)
}

// kafka.acks and kafka.compression become the sarama settings they name.
func TestSaramaConfigAcksAndCompression(t *testing.T) {
	for _, tc := range []struct {
		acks, compression string
		wantAcks          sarama.RequiredAcks
		wantCodec         sarama.CompressionCodec
	}{
		{"all", "none", sarama.WaitForAll, sarama.CompressionNone},
		{"leader", "gzip", sarama.WaitForLocal, sarama.CompressionGZIP},
		{"none", "snappy", sarama.NoResponse, sarama.CompressionSnappy},
		{"all", "lz4", sarama.WaitForAll, sarama.CompressionLZ4},
		{"leader", "zstd", sarama.WaitForLocal, sarama.CompressionZSTD},
	} {
		kc := kafkaConfig("127.0.0.1:9092")
		kc.Acks, kc.Compression = tc.acks, tc.compression
		s, err := SaramaConfig(kc)
		if err != nil {
			t.Fatal(err)
		}
		if s.Producer.RequiredAcks != tc.wantAcks || s.Producer.Compression != tc.wantCodec {
			t.Errorf("acks %q, compression %q: %v, %v; want %v, %v", tc.acks, tc.compression,
				s.Producer.RequiredAcks, s.Producer.Compression, tc.wantAcks, tc.wantCodec)
		}
	}
}

// readTopic reads n records of the topic smith from the start.
func readTopic(t *testing.T, broker string, n int) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics("smith"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%d of %d events in Kafka", len(out), n)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

// A batch goes out as requests of at most kafka.max_message_bytes of
// records each, in order, keyed by host.
func TestKafkaSinkSendsABatchAsRequestsInOrder(t *testing.T) {
	broker := fakeBroker(t)
	var requests atomic.Int32
	broker.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		broker.KeepControl()
		requests.Add(1)
		return nil, nil, false
	})
	kc := kafkaConfig(broker.ListenAddrs()...)
	kc.MaxMessageBytes = 4096
	k, c := openKafka(t, kc, 4)
	waitOnline(t, k)
	var events []string
	for i := range 20 {
		events = append(events, fmt.Sprintf(`{"seq":%d,"pad":"%s"}`, i, strings.Repeat("x", 1000)))
	}
	sendAndWait(t, k, events...)
	closeKafka(k)
	// 1042 bytes a record: 3 in a request of at most 4096 - 128.
	if c.Acked.Load() != 20 || requests.Load() != 7 {
		t.Fatalf("acked %d in %d requests; want 20 in 7", c.Acked.Load(), requests.Load())
	}
	for i, r := range readTopic(t, kc.Brokers[0], 20) {
		if string(r.Key) != "host-a" || string(r.Value) != events[i] {
			t.Fatalf("record %d: key %q, value %.20q; want host-a, %.20q", i, r.Key, r.Value, events[i])
		}
	}
}

// A request the broker refuses for its size is split until the one event
// it cannot take is found: that one is dropped and counted, the others
// are delivered.
func TestKafkaSinkSplitsARequestTheBrokerRefuses(t *testing.T) {
	broker := fakeBroker(t, kfake.BrokerConfigs(map[string]string{"message.max.bytes": "4096"}))
	kc := kafkaConfig(broker.ListenAddrs()...)
	kc.Compression = "none" // the broker's limit is on the request's bytes as sent
	k, c := openKafka(t, kc, 4)
	waitOnline(t, k)
	var events []string
	for i := range 20 {
		pad := 500
		if i == 13 {
			pad = 6000 // within kafka.max_message_bytes, over the broker's
		}
		events = append(events, fmt.Sprintf(`{"seq":%d,"pad":"%s"}`, i, strings.Repeat("x", pad)))
	}
	sendAndWait(t, k, events...)
	closeKafka(k)
	if c.Acked.Load() != 19 || c.Dropped(metrics.DropTooLarge) != 1 || c.Spooled.Load() != 0 {
		t.Fatalf("acked %d, dropped %d, spooled %d; want 19, 1, 0", c.Acked.Load(), c.Dropped(metrics.DropTooLarge), c.Spooled.Load())
	}
	seen := map[string]bool{}
	for _, r := range readTopic(t, kc.Brokers[0], 19) {
		seen[string(r.Value)] = true
	}
	for i, ev := range events {
		if seen[ev] != (i != 13) {
			t.Fatalf("event %d in Kafka: %v", i, seen[ev])
		}
	}
}

// The produce request speaks the version sarama would for kafka.version;
// before 0.11 (no record batches) the setting is refused.
func TestProduceVersion(t *testing.T) {
	for _, tc := range []struct {
		version string
		want    int16
	}{
		{"0.11.0.0", 3}, {"1.0.0", 5}, {"2.0.0", 6}, {"2.1.0", 7}, {"2.4.0", 8}, {"2.8.0", 9}, {"3.7.0", 10}, {"", 9},
	} {
		kc := kafkaConfig("127.0.0.1:9")
		kc.Version = tc.version
		s, err := SaramaConfig(kc)
		if err != nil {
			t.Fatalf("%q: %v", tc.version, err)
		}
		if got := produceVersion(s.Version); got != tc.want {
			t.Errorf("kafka.version %q: produce v%d, want v%d", tc.version, got, tc.want)
		}
	}
	kc := kafkaConfig("127.0.0.1:9")
	kc.Version = "0.10.2.0"
	if _, err := SaramaConfig(kc); err == nil || !strings.Contains(err.Error(), "0.11") {
		t.Fatalf("kafka.version 0.10.2.0: %v, want an error naming 0.11", err)
	}
}

// A broker that stalls its acknowledgements: a spill makes the batch in
// flight durable at once (without freeing it), new batches go to the
// spool, and once the stalled request is acknowledged the replay steps
// over the spilled span: every event reaches Kafka exactly once.
func TestKafkaSinkSpillsABatchInFlight(t *testing.T) {
	sc := spillOneBatch(t, nil)
	k, c, stall, freed := sc.k, sc.c, sc.stall, sc.freed
	select {
	case <-sc.durable:
	case <-time.After(30 * time.Second):
		t.Fatal("spilled batch not durable")
	}
	select {
	case <-freed:
		t.Fatal("spilled batch freed while its request is in flight")
	default:
	}
	if k.isOnline() {
		t.Fatal("online after a spill")
	}
	if got := <-sendBatch(k, 100, 50); got != 50 || c.Spooled.Load() != 50 {
		t.Fatalf("after the spill: %d of 50 delivered, %d spooled; want 50, 50", got, c.Spooled.Load())
	}
	close(stall)
	<-freed
	closeAfterReplay(t, k)
	if c.Acked.Load() != 150 || c.SpillAcked.Load() != 100 || c.Replayed.Load() != 50 {
		t.Fatalf("acked %d, spill acked %d, replayed %d; want 150, 100, 50 (no duplicate)", c.Acked.Load(), c.SpillAcked.Load(), c.Replayed.Load())
	}
	topicHoldsEachOnce(t, sc.broker, 150)
}

// A spilled batch whose request fails after its retries is not lost: the
// replay sends its span from the spool (no longer steps over it), once.
func TestKafkaSinkReplaysASpilledBatchWhoseRequestFailed(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	sc := spillOneBatch(t, failing.Load)
	k, c, freed := sc.k, sc.c, sc.freed
	<-sc.durable
	close(sc.stall)
	// Every try fails: the batch is answered with an error and freed.
	select {
	case <-freed:
	case <-time.After(60 * time.Second):
		t.Fatal("spilled batch not freed after its request failed")
	}
	if c.Acked.Load() != 0 {
		t.Fatalf("%d acked while the broker refused everything", c.Acked.Load())
	}
	failing.Store(false)
	closeAfterReplay(t, k)
	if c.SpillAcked.Load() != 0 || c.Replayed.Load() != 100 || c.Acked.Load() != 100 {
		t.Fatalf("spill acked %d, replayed %d, acked %d; want 0, 100, 100", c.SpillAcked.Load(), c.Replayed.Load(), c.Acked.Load())
	}
	topicHoldsEachOnce(t, sc.broker, 100)
}

// A spill takes the batches queued behind those in flight too: the sink
// may be stuck handing a request to a broker that does not answer.  With
// one request open at a time, batch 0's request is held by the broker,
// batch 1 waits for the request slot, batches 2 and 3 wait in the queue:
// the spill makes all four durable, spools 2 and 3 (done with them) and
// keeps 0 and 1 until they are answered; then 0 and 1 are stepped over,
// 2 and 3 replayed, each event once in the topic.
func TestKafkaSinkSpillSpoolsTheQueuedBatches(t *testing.T) {
	broker, stall, stalled := stallingBroker(t, nil)
	kc := kafkaConfig(broker.ListenAddrs()...)
	k, c := openKafka(t, kc, 4)
	waitOnline(t, k)
	k.mu.Lock()
	k.producer.slots = make(chan struct{}, 1) // one request open at a time
	k.mu.Unlock()
	const n = 50
	durable, freed := make(chan int, 4), make(chan int, 4)
	for j := range 4 {
		k.Send(heldBatch(j*n, n, func() { freed <- j }, func() { durable <- j }))
		if j == 0 {
			<-stalled
		}
	}
	// Batch 1 is in the live set once run has gathered its events.
	harness.WaitFor(t, time.Minute, "batch 1 in flight", func() bool {
		k.mu.Lock()
		defer k.mu.Unlock()
		return len(k.live) == 2 && len(k.ch) == 2
	})
	k.Spill()
	if s, q := c.Spilled.Load(), c.Spooled.Load(); s != 2*n || q != 2*n {
		t.Fatalf("spilled %d, spooled %d; want %d, %d", s, q, 2*n, 2*n)
	}
	got := map[int]bool{}
	for range 4 {
		select {
		case j := <-durable:
			got[j] = true
		case <-time.After(30 * time.Second):
			t.Fatalf("durable after the spill: %v, want all four", got)
		}
	}
	for range 2 {
		if j := <-freed; j < 2 {
			t.Fatalf("batch %d freed while its request is in flight", j)
		}
	}
	close(stall)
	for range 2 {
		<-freed
	}
	closeAfterReplay(t, k)
	if c.SpillAcked.Load() != 2*n || c.Replayed.Load() != 2*n {
		t.Fatalf("spill acked %d, replayed %d; want %d, %d", c.SpillAcked.Load(), c.Replayed.Load(), 2*n, 2*n)
	}
	topicHoldsEachOnce(t, kc.Brokers[0], 4*n)
}

// stallingBroker is a broker that holds every produce request until stall
// is closed (stalled has a token once it holds the first), then answers
// it, or refuses it and closes the connection while refuse says so.
func stallingBroker(t *testing.T, refuse func() bool) (broker *kfake.Cluster, stall, stalled chan struct{}) {
	broker = fakeBroker(t)
	stall, stalled = make(chan struct{}), make(chan struct{}, 1)
	broker.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		broker.KeepControl()
		select {
		case stalled <- struct{}{}:
		default:
		}
		broker.SleepControl(func() { <-stall })
		if refuse != nil && refuse() {
			return nil, errors.New("broker refuses"), true
		}
		return nil, nil, false
	})
	return broker, stall, stalled
}

// spillCase is a sink whose one batch, of the events 0 to 99, was spilled
// while a stallingBroker held its request.
type spillCase struct {
	k              *Kafka
	c              *metrics.Counters
	broker         string
	stall          chan struct{}
	durable, freed chan struct{}
}

func spillOneBatch(t *testing.T, refuse func() bool) spillCase {
	t.Helper()
	broker, stall, stalled := stallingBroker(t, refuse)
	kc := kafkaConfig(broker.ListenAddrs()...)
	k, c := openKafka(t, kc, 4)
	waitOnline(t, k)
	durable, freed := make(chan struct{}, 1), make(chan struct{}, 1)
	k.Send(heldBatch(0, 100, func() { freed <- struct{}{} }, func() { durable <- struct{}{} }))
	<-stalled
	// The request is in flight once the broker holds it; Spill finds it
	// in the live set as soon as run has sent it.
	harness.WaitFor(t, time.Minute, "the spill", func() bool { k.Spill(); return c.Spilled.Load() == 100 })
	return spillCase{k: k, c: c, broker: kc.Brokers[0], stall: stall, durable: durable, freed: freed}
}

// heldBatch is a batch of the events {"seq":first} to first+n-1, held
// once as the pipeline holds it, calling freed and durable as it is.
func heldBatch(first, n int, freed, durable func()) *Batch {
	b := batchOf(first, n)
	b.release = func(*Batch) { freed() }
	b.OnDurable(func(*Batch) { durable() })
	b.Hold(1)
	return b
}

// closeAfterReplay waits for the replay to empty the spool and the sink
// to be online, then closes it.
func closeAfterReplay(t *testing.T, k *Kafka) {
	t.Helper()
	harness.WaitFor(t, time.Minute, "the replay", func() bool { ev, _ := k.spool.Len(); return ev == 0 && k.isOnline() })
	if err := closeKafka(k); err != nil {
		t.Fatal(err)
	}
}

// topicHoldsEachOnce reads n records from the topic and fails on a value
// seen twice.
func topicHoldsEachOnce(t *testing.T, broker string, n int) {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range readTopic(t, broker, n) {
		if seen[string(r.Value)] {
			t.Fatalf("%s twice in Kafka", r.Value)
		}
		seen[string(r.Value)] = true
	}
	if len(seen) != n {
		t.Fatalf("%d events in Kafka, want %d", len(seen), n)
	}
}
