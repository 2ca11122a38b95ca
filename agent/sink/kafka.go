package sink

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	gometrics "github.com/rcrowley/go-metrics"
	"github.com/sirupsen/logrus"
	"github.com/xdg-go/scram"

	"smith/agent/config"
	"smith/agent/metrics"
)

// Kafka ships events as whole record batches (producer, produce.go), keyed
// by host name so a host's events go to one partition.
//
// Two states.  Online: batches go to the producer; an event Kafka refuses
// (broker down after sarama's retries) goes to the spool, and the sink
// turns offline.  Offline: batches go straight to the spool.  A replay
// goroutine connects (never holding the lock the spooling needs, so a
// broker that blackholes connections does not stop anything), sends the
// spool's events oldest first in chunks, and turns the sink online again
// after the first chunk Kafka acknowledged: from then on new events go
// directly while the replay goes on beside them, so the replay can never
// starve new events nor fall behind for good.  The price is order: events
// replayed from the spool arrive after newer ones (docs/EVENTS.md: a
// consumer orders by (stream, seq)).  An event is done (for the ring
// commit) once Kafka acknowledged it or it is in the spool; beyond the
// spool's bound it is dropped and counted (spool_full, or spool_error for
// a failed write), never silently.
//
// Spill: when the pipeline finds the ring filling behind batches Kafka
// has not acknowledged (a broker that stalls), the sink writes the
// batches in flight to the spool at once, which makes them durable, and
// turns offline.  Their requests go on; once a spilled batch is
// acknowledged, the replay steps over its span of the spool instead of
// sending it again, so a spill alone makes no duplicate (a batch whose
// request fails after the spill, or an agent killed before the answer,
// is sent again from the spool: (stream, seq) identifies it).
type Kafka struct {
	topic   string
	key     []byte
	maxMsg  int
	retry   time.Duration
	brokers []string
	scfg    *sarama.Config
	spool   *Spool
	c       *metrics.Counters
	log     logrus.FieldLogger

	ch    chan *Batch
	stop  chan struct{}
	kick  chan struct{} // something was spooled: the replay looks at once
	wg    sync.WaitGroup
	dials atomic.Int64 // connection attempts (tests)
	// chunkDone, when set (tests), runs after each replayed chunk.
	chunkDone func()

	mu       sync.Mutex // guards online, producer and spool appends vs. the flip
	online   bool
	producer *producer
	live     map[*liveBatch]struct{} // batches with requests in flight
	spills   []*spill                // spilled spans in spool order, oldest first
	lastErr  atomic.Pointer[string]
	dropLog  time.Time
	tooLarge time.Time // last log of an event Kafka refused for good
	// spillLog is the last log of a spill, spillsSince the spills since.
	spillLog    time.Time
	spillsSince int
}

// liveBatch is a batch whose requests are in flight: done when the last
// one is answered (one allocation per batch, none per event).
type liveBatch struct {
	b       *Batch
	evs     [][]byte // the events sent (those Kafka can take)
	pending atomic.Int32
	// Under Kafka.mu: the batch's span in the spool once spilled,
	// whether a spill was tried (one that did not fit is not tried
	// again), and whether a request of it failed.
	spill  *spill
	tried  bool
	failed bool
}

// spill is the span of the spool a liveBatch was written to.  Until the
// batch's requests are answered the replay waits at its start; then it
// steps over the span (all acknowledged) or sends it (a request failed).
type spill struct {
	start, end Cursor
	n          int
	answered   bool
	sent       bool // every request acknowledged
}

func init() {
	// sarama records go-metrics meters and histograms per message and per
	// broker unless told not to; nothing reads them here.  A process-wide
	// switch: the agent has no other go-metrics user.
	gometrics.UseNilMetrics = true
}

// NewKafka returns the Kafka sink.  It does not wait for a broker: until
// the first connection succeeds, events go to the spool.
func NewKafka(cfg config.Kafka, hostKey string, spool *Spool, queue int, c *metrics.Counters, log logrus.FieldLogger) (*Kafka, error) {
	return newKafka(cfg, hostKey, spool, queue, c, log, nil)
}

// newKafka: chunkDone (tests) runs after each replayed chunk.
func newKafka(cfg config.Kafka, hostKey string, spool *Spool, queue int, c *metrics.Counters, log logrus.FieldLogger, chunkDone func()) (*Kafka, error) {
	scfg, err := SaramaConfig(cfg)
	if err != nil {
		return nil, err
	}
	k := &Kafka{
		topic: cfg.Topic, key: []byte(hostKey), maxMsg: cfg.MaxMessageBytes,
		retry: cfg.RetryInterval.D(), brokers: cfg.Brokers, scfg: scfg, spool: spool, c: c,
		log: log.WithField("sink", "kafka"), ch: make(chan *Batch, queue), stop: make(chan struct{}),
		kick: make(chan struct{}, 1), chunkDone: chunkDone, live: make(map[*liveBatch]struct{}),
	}
	k.updateSpoolGauges()
	if ev, _ := spool.Len(); ev > 0 {
		k.log.Infof("spool holds %d events from before; replaying them", ev)
	}
	k.wg.Add(2)
	go k.run()
	go k.replay()
	return k, nil
}

// requiredAcks and compressionCodecs are the sarama values of kafka.acks
// and kafka.compression.
var (
	requiredAcks = map[string]sarama.RequiredAcks{
		"all": sarama.WaitForAll, "leader": sarama.WaitForLocal, "none": sarama.NoResponse,
	}
	compressionCodecs = map[string]sarama.CompressionCodec{
		"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP, "snappy": sarama.CompressionSnappy,
		"lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD,
	}
)

// SaramaConfig turns the [kafka] section into a sarama configuration.
func SaramaConfig(cfg config.Kafka) (*sarama.Config, error) {
	s := sarama.NewConfig()
	s.ClientID = cfg.ClientID
	if cfg.Version != "" {
		v, err := sarama.ParseKafkaVersion(cfg.Version)
		if err != nil {
			return nil, fmt.Errorf("kafka.version %q: %w", cfg.Version, err)
		}
		s.Version = v
	}
	if produceVersion(s.Version) == 0 {
		return nil, fmt.Errorf("kafka.version %q: Kafka 0.11 or later is needed (record batches)", cfg.Version)
	}
	// The sink uses sarama's client, not its AsyncProducer (produce.go):
	// the producer settings below are the ones it reads.
	s.Producer.MaxMessageBytes = cfg.MaxMessageBytes
	// How long the broker may wait for the replicas kafka.acks asks for.
	s.Producer.Timeout = cfg.Timeout.D()
	// A request carries at most 512 KiB of records (about 1000 events of
	// 500 bytes; less when kafka.max_message_bytes is smaller): a pipeline
	// batch of 256 events is one request, rarely two.  Few large requests
	// cost the broker and the agent far less per event than many small
	// ones.  No linger: the pipeline's batch is the batching.
	s.Producer.Flush.Bytes = 512 << 10
	// A failed request is retried 3 times 200 ms apart (the metadata
	// asked again in between), then its events are spooled: the spool,
	// not the retries, rides out an outage.
	s.Producer.Retry.Max = 3
	s.Producer.Retry.Backoff = 200 * time.Millisecond
	// The key is the host name: a host's events go to one partition.
	s.Producer.Partitioner = sarama.NewHashPartitioner
	// Requests in flight at once (sarama's default, 5): the reader goes
	// on while earlier batches wait for their acknowledgement.
	s.Net.MaxOpenRequests = 5
	// kafka.timeout bounds every connection step, so a blackholed
	// broker turns into an error (and the spool) in bounded time.
	s.Net.DialTimeout = cfg.Timeout.D()
	s.Net.ReadTimeout = cfg.Timeout.D()
	s.Net.WriteTimeout = cfg.Timeout.D()
	// Metadata is asked once more after a failure, not sarama's three
	// times: the replay loop tries again every retry_interval anyway.
	s.Metadata.Retry.Max = 1
	s.Metadata.Retry.Backoff = 200 * time.Millisecond
	if acks, ok := requiredAcks[cfg.Acks]; ok {
		s.Producer.RequiredAcks = acks
	}
	if codec, ok := compressionCodecs[cfg.Compression]; ok {
		s.Producer.Compression = codec
	}
	if cfg.TLS.Enabled {
		tc, err := TLSConfig(cfg.TLS)
		if err != nil {
			return nil, fmt.Errorf("kafka.tls: %w", err)
		}
		s.Net.TLS.Enable = true
		s.Net.TLS.Config = tc
	}
	if m := cfg.SASL.Mechanism; m != "" {
		pw := cfg.SASL.Password
		if cfg.SASL.PasswordFile != "" {
			raw, err := os.ReadFile(cfg.SASL.PasswordFile)
			if err != nil {
				return nil, fmt.Errorf("kafka.sasl.password_file: %w", err)
			}
			pw = strings.TrimSpace(string(raw))
		}
		s.Net.SASL.Enable = true
		s.Net.SASL.User = cfg.SASL.User
		s.Net.SASL.Password = pw
		switch m {
		case "PLAIN":
			s.Net.SASL.Mechanism = sarama.SASLTypePlaintext
		case "SCRAM-SHA-256":
			s.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
			s.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{gen: scram.HashGeneratorFcn(sha256.New)} }
		case "SCRAM-SHA-512":
			s.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
			s.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{gen: scram.HashGeneratorFcn(sha512.New)} }
		}
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("kafka settings: %w", err)
	}
	return s, nil
}

// TLSConfig builds a client TLS configuration from files.
func TLSConfig(t config.TLS) (*tls.Config, error) {
	tc := &tls.Config{ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s: no PEM certificate", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// scramClient adapts xdg-go/scram to sarama.SCRAMClient.
type scramClient struct {
	gen  scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

func (c *scramClient) Begin(user, password, authzID string) error {
	cl, err := c.gen.NewClient(user, password, authzID)
	if err != nil {
		return err
	}
	c.conv = cl.NewConversation()
	return nil
}

func (c *scramClient) Step(challenge string) (string, error) { return c.conv.Step(challenge) }
func (c *scramClient) Done() bool                            { return c.conv.Done() }

// connect creates the producer.  It can take as long as the brokers make
// it (a blackholed one: the dial and read timeouts), so it never runs
// with mu held.
func (k *Kafka) connect() error {
	k.dials.Add(1)
	p, err := newProducer(k.brokers, k.scfg, k.topic, k.key, k.maxMsg)
	if err != nil {
		return fmt.Errorf("connect to Kafka %s: %w", strings.Join(k.brokers, ","), err)
	}
	k.mu.Lock()
	k.producer = p
	k.mu.Unlock()
	return nil
}

// Name implements Sink.
func (k *Kafka) Name() string { return "kafka" }

// Send implements Sink.
func (k *Kafka) Send(b *Batch) { k.ch <- b }

// LastError is the most recent delivery error, "" when none.
func (k *Kafka) LastError() string {
	if p := k.lastErr.Load(); p != nil {
		return *p
	}
	return ""
}

func (k *Kafka) setErr(err error) {
	s := err.Error()
	k.lastErr.Store(&s)
}

func (k *Kafka) run() {
	defer k.wg.Done()
	for b := range k.ch {
		k.mu.Lock()
		if !k.online {
			k.spoolBatch(b, 0)
			k.mu.Unlock()
			b.Done()
			continue
		}
		p := k.producer
		lb := &liveBatch{b: b}
		lb.pending.Store(1)
		k.live[lb] = struct{}{}
		k.mu.Unlock()
		evs := make([][]byte, 0, b.Len())
		for i := range b.Len() {
			ev := b.Event(i)
			if !fits(ev, k.key, k.maxMsg) {
				k.c.AddDrop(metrics.DropTooLarge, 1)
				b.AddLost(1)
				k.log.Warnf("event of %d bytes exceeds kafka.max_message_bytes; dropped", len(ev))
				continue
			}
			evs = append(evs, ev)
		}
		k.mu.Lock()
		lb.evs = evs // Spill reads it under mu
		k.mu.Unlock()
		p.chunks(evs, func(chunk [][]byte) {
			lb.pending.Add(1)
			p.goProduce(chunk, func(ev []byte, err error) { k.refused(lb.b, ev, err) },
				func(acked int, err error) { k.answered(lb, chunk, acked, err) })
		})
		k.batchDone(lb)
	}
}

// batchDone ends one of lb's pending parts; the last one gives the batch
// back, and tells the replay that a spilled batch is answered.
func (k *Kafka) batchDone(lb *liveBatch) {
	if lb.pending.Add(-1) != 0 {
		return
	}
	k.mu.Lock()
	delete(k.live, lb)
	sp := lb.spill
	if sp != nil {
		sp.answered, sp.sent = true, !lb.failed
	}
	k.mu.Unlock()
	if sp == nil {
		lb.b.Done()
		return
	}
	lb.b.Free() // durable since the spill
	select {
	case k.kick <- struct{}{}:
	default:
	}
}

// Spill implements sink.Spiller: every batch with requests in flight is
// written to the spool, durable from then on; the batches queued behind
// them (run may be stuck writing a request to a broker that does not
// read) and new batches go to the spool until the replay finds the
// spilled ones answered.
func (k *Kafka) Spill() {
	var queued []*Batch
	defer func() {
		for _, b := range queued {
			b.Done()
		}
	}()
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for lb := range k.live {
		if lb.tried || lb.evs == nil {
			continue // spilled already, or its events not gathered yet
		}
		lb.tried = true
		w, start, end, err := k.spool.AppendSpan(lb.evs)
		if w < len(lb.evs) {
			// Not all of it fits: what was written is sent again by the
			// replay, and the batch stays in flight as before.
			if w > 0 {
				k.spills = append(k.spills, &spill{start: start, end: end, n: w, answered: true})
				k.c.Spilled.Add(uint64(w))
			}
			k.log.WithError(err).Warn("spool takes no more: a batch in flight stays in the ring until Kafka answers")
			continue
		}
		lb.spill = &spill{start: start, end: end, n: w}
		k.spills = append(k.spills, lb.spill)
		k.c.Spilled.Add(uint64(w))
		n++
		lb.b.Durable()
	}
drain:
	for {
		select {
		case b, ok := <-k.ch:
			if !ok {
				break drain
			}
			k.spoolBatch(b, 0)
			queued = append(queued, b)
		default:
			break drain
		}
	}
	if n+len(queued) == 0 {
		return
	}
	k.spillsSince++
	if k.online {
		k.online = false
		if time.Since(k.spillLog) > 10*time.Second {
			k.spillLog = time.Now()
			k.log.Infof("the ring fills behind Kafka's acknowledgements: batches in flight spilled to the spool and new events spooled until they are answered (%d spills since the last such line; smith_events_spilled_total)", k.spillsSince)
			k.spillsSince = 0
		}
	}
	k.updateSpoolGauges()
}

// answered takes the outcome of a request for events of lb: acknowledged,
// or failed after the retries, and then they are spooled and the sink
// turns offline until the replay finds Kafka again.
func (k *Kafka) answered(lb *liveBatch, evs [][]byte, acked int, err error) {
	defer k.batchDone(lb)
	if err == nil {
		k.c.Acked.Add(uint64(acked))
		return
	}
	k.setErr(err)
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.online {
		k.log.WithError(err).Warn("Kafka refused events; spooling until it is back")
	}
	k.online = false
	if lb.spill != nil {
		// In the spool already: the replay sends its span.
		lb.failed = true
		return
	}
	failed := NewBatch(nil)
	for _, ev := range evs {
		failed.End(append(failed.Buf(), ev...))
		if lb.b.isKept(ev) {
			failed.Keep()
		}
	}
	k.spoolBatch(failed, 0)
	lb.b.AddLost(failed.Lost())
}

// refused counts an event Kafka will never take (for what it is):
// spooling it would block the replay behind it forever.  b (nil for the
// spool's) is the batch it came from.
func (k *Kafka) refused(b *Batch, ev []byte, err error) {
	k.c.AddDrop(metrics.DropTooLarge, 1)
	if b != nil {
		b.AddLost(1)
	}
	k.setErr(err)
	k.mu.Lock()
	defer k.mu.Unlock()
	if time.Since(k.tooLarge) > 10*time.Second {
		k.tooLarge = time.Now()
		k.log.WithError(err).Warnf("Kafka refuses an event of %d bytes for good; dropped (message_too_large)", len(ev))
	}
}

// spoolBatch writes events [from, len) of b to the spool; mu held.
func (k *Kafka) spoolBatch(b *Batch, from int) {
	n, err := k.spool.Append(b, from)
	k.c.Spooled.Add(uint64(n))
	if n > 0 {
		select {
		case k.kick <- struct{}{}:
		default:
		}
	}
	if lost := b.Len() - from - n; lost > 0 {
		reason := metrics.DropSpoolFull
		if !errors.Is(err, ErrSpoolFull) {
			reason = metrics.DropSpoolError // a write error: a full disk, an I/O error
		}
		k.c.AddDrop(reason, uint64(lost))
		b.AddLost(lost)
		k.setErr(fmt.Errorf("spool: %d events dropped: %w", lost, err))
		if time.Since(k.dropLog) > 10*time.Second {
			k.dropLog = time.Now()
			k.log.WithError(err).Errorf("Kafka down and the spool takes no more: %d events dropped (counted in smith_events_dropped_total{reason=%q})", lost, metrics.DropNames[reason])
		}
	}
	k.updateSpoolGauges()
}

func (k *Kafka) updateSpoolGauges() {
	k.c.SpoolCorrupt.Store(uint64(k.spool.Corrupt()))
	ev, bytes := k.spool.Len()
	k.c.SpoolEvents.Store(uint64(ev))
	k.c.SpoolBytes.Store(uint64(bytes))
}

// permanent reports whether Kafka refused a message for what it is, not
// for the broker's state: retrying it cannot succeed.
// sarama checks the size locally and reports it as a ConfigurationError.
func permanent(err error) bool {
	var cfgErr sarama.ConfigurationError
	return errors.Is(err, sarama.ErrMessageSizeTooLarge) || errors.Is(err, sarama.ErrInvalidMessage) ||
		errors.Is(err, sarama.ErrInvalidRecord) || errors.As(err, &cfgErr)
}

// replay connects, moves the spool to Kafka and turns the sink online.
// The first attempt is at once; after a failure, every retry_interval.
func (k *Kafka) replay() {
	defer k.wg.Done()
	t := time.NewTicker(k.retry)
	defer t.Stop()
	var buf []byte
	var evs [][]byte
	for {
		for {
			var ok, more bool
			buf, evs, ok, more = k.replayOnce(buf, evs)
			if !ok || !more {
				break
			}
			select {
			case <-k.stop:
				return
			default:
			}
		}
		select {
		case <-k.stop:
			return
		case <-t.C:
		case <-k.kick:
		}
	}
}

// skipSpills steps the spool's cursor over the spilled spans at its head
// that Kafka acknowledged, and returns where the next one starts: the
// replay sends nothing from there on (stop).  wait is true when the
// cursor is at a span whose batch is not answered yet.
func (k *Kafka) skipSpills() (stop Cursor, wait bool, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for len(k.spills) > 0 {
		sp := k.spills[0]
		if !k.spool.Reached(sp.start) {
			return sp.start, false, nil
		}
		if k.spool.Past(sp.start) {
			// Spilled while a chunk was read without this stop: the
			// replay sent (some of) it already (a duplicate at most).
			k.spills = k.spills[1:]
			continue
		}
		if !sp.answered {
			return sp.start, true, nil
		}
		k.spills = k.spills[1:]
		if sp.sent {
			k.c.SpillAcked.Add(uint64(sp.n))
			if err := k.spool.Advance(sp.end, sp.n); err != nil {
				return Cursor{}, false, err
			}
			k.updateSpoolGauges()
		}
	}
	return Cursor{Seg: math.MaxUint64}, false, nil
}

func (k *Kafka) isOnline() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.online
}

// replayOnce connects if need be and sends one chunk of the spool.  ok is
// false when Kafka is down (try again at the next tick), more is true
// when the spool may hold more.
func (k *Kafka) replayOnce(buf []byte, evs [][]byte) (_ []byte, _ [][]byte, ok, more bool) {
	k.mu.Lock()
	p := k.producer
	k.mu.Unlock()
	if p == nil {
		if err := k.connect(); err != nil {
			k.setErr(err)
			k.log.WithError(err).Debug("Kafka unreachable")
			return buf, evs, false, false
		}
		k.log.Info("connected to Kafka")
		k.mu.Lock()
		p = k.producer
		k.mu.Unlock()
	}
	stop, wait, err := k.skipSpills()
	if err != nil {
		k.setErr(err)
		k.log.WithError(err).Error("advance spool cursor")
		return buf, evs, false, false
	}
	if wait {
		// A spilled batch's requests are still in flight: its answer
		// kicks the replay.
		return buf, evs, true, false
	}
	evs, buf, cur, err := k.spool.PeekBefore(1000, stop, buf, evs)
	if err != nil {
		k.setErr(err)
		k.log.WithError(err).Error("read spool")
		return buf, evs, false, false
	}
	if len(evs) == 0 && cur == k.spool.cursor() {
		// Nothing spooled.  Offline with an empty spool: the producer is
		// up (it connected), so send directly.  The flip is under mu, as
		// every spool append: no batch lands in the spool after it.
		k.mu.Lock()
		flipped := !k.online
		k.online = true
		k.mu.Unlock()
		if flipped {
			k.log.Info("sending to Kafka directly")
		}
		return buf, evs, true, false
	}
	var wg sync.WaitGroup
	var failed atomic.Bool
	var replayed atomic.Uint64
	p.chunks(evs, func(chunk [][]byte) {
		wg.Add(1)
		p.goProduce(chunk, func(ev []byte, err error) { k.refused(nil, ev, err) }, func(acked int, err error) {
			if err != nil {
				k.setErr(err)
				failed.Store(true)
			} else {
				k.c.Acked.Add(uint64(acked))
				replayed.Add(uint64(acked))
			}
			wg.Done()
		})
	})
	wg.Wait()
	k.c.Replayed.Add(replayed.Load())
	if failed.Load() {
		// Some of the chunk may have arrived: it is sent again (at least
		// once, (stream, seq) shows the duplicates).
		return buf, evs, false, false
	}
	if err := k.spool.Advance(cur, len(evs)); err != nil {
		k.log.WithError(err).Error("advance spool cursor")
	}
	k.updateSpoolGauges()
	k.mu.Lock()
	if !k.online {
		k.online = true
		k.log.Info("Kafka takes events again; sending directly while the spool is replayed")
	}
	k.mu.Unlock()
	if k.chunkDone != nil {
		k.chunkDone()
	}
	return buf, evs, true, true
}

// Close implements Sink: queued batches are sent or spooled, in-flight
// messages acknowledged or spooled, then the producer is closed.
func (k *Kafka) Close(ctx context.Context) error {
	close(k.ch)
	close(k.stop)
	done := make(chan struct{})
	go func() {
		k.wg.Wait()
		k.mu.Lock()
		p := k.producer
		k.mu.Unlock()
		if p != nil {
			// Requests in flight end, acknowledged or spooled.
			if err := p.close(); err != nil {
				k.log.WithError(err).Debug("close Kafka connections")
			}
		}
		// Spilled batches acknowledged meanwhile are not sent again
		// after the restart, if nothing unsent is before them.
		if _, _, err := k.skipSpills(); err != nil {
			k.log.WithError(err).Warn("advance spool cursor")
		}
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("kafka sink: flush on shutdown: %w", ctx.Err())
	}
	return errors.Join(k.spool.Close())
}
