package sink

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/sirupsen/logrus"
	"github.com/xdg-go/scram"

	"smith/agent/config"
	"smith/agent/metrics"
)

// Kafka ships events with a sarama AsyncProducer, keyed by host name so a
// host's events stay in one partition, in order.
//
// Two states.  Online: batches go to the producer; an event Kafka refuses
// (broker down after sarama's retries) goes to the spool, and the sink
// turns offline.  Offline: batches go straight to the spool, in order,
// while a replay goroutine tries the brokers every retry_interval, sends
// the spool's events oldest first and turns online once the spool is
// empty.  An event is done (for the ring commit) once Kafka acknowledged
// it or it is in the spool; beyond the spool's bound it is dropped and
// counted (spool_full), never silently.
type Kafka struct {
	topic   string
	key     sarama.Encoder
	maxMsg  int
	retry   time.Duration
	brokers []string
	scfg    *sarama.Config
	spool   *Spool
	c       *metrics.Counters
	log     logrus.FieldLogger

	ch   chan *Batch
	stop chan struct{}
	wg   sync.WaitGroup

	mu       sync.Mutex // guards online, producer and spool appends vs. the flip
	online   bool
	producer sarama.AsyncProducer
	drained  chan struct{} // closed when the producer's channels are drained
	lastErr  atomic.Pointer[string]
	dropLog  time.Time
}

// liveMsg is the Metadata of a message sent from a batch.
type liveMsg struct {
	b       *Batch
	pending *atomic.Int32
}

// replayMsg is the Metadata of a message sent from the spool.
type replayMsg struct {
	wg     *sync.WaitGroup
	failed *atomic.Bool
}

// NewKafka returns the Kafka sink.  A broker that is down at start is not
// an error: events go to the spool until it is up.
func NewKafka(cfg config.Kafka, hostKey string, spool *Spool, queue int, c *metrics.Counters, log logrus.FieldLogger) (*Kafka, error) {
	scfg, err := SaramaConfig(cfg)
	if err != nil {
		return nil, err
	}
	k := &Kafka{
		topic: cfg.Topic, key: sarama.StringEncoder(hostKey), maxMsg: cfg.MaxMessageBytes,
		retry: cfg.RetryInterval.D(), brokers: cfg.Brokers, scfg: scfg, spool: spool, c: c,
		log: log.WithField("sink", "kafka"), ch: make(chan *Batch, queue), stop: make(chan struct{}),
	}
	k.updateSpoolGauges()
	if ev, _ := spool.Len(); ev == 0 {
		if err := k.connect(); err == nil {
			k.online = true
		} else {
			k.log.WithError(err).Warn("Kafka not reachable at start; spooling until it is")
		}
	} else {
		k.log.Infof("spool holds %d events from before; replaying them first", ev)
	}
	k.wg.Add(2)
	go k.run()
	go k.replay()
	return k, nil
}

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
	s.Producer.Return.Successes = true
	s.Producer.Return.Errors = true
	s.Producer.MaxMessageBytes = cfg.MaxMessageBytes
	s.Producer.Timeout = cfg.Timeout.D()
	s.Producer.Flush.Frequency = 5 * time.Millisecond
	s.Producer.Flush.Messages = 1000
	s.Producer.Retry.Max = 3
	s.Producer.Retry.Backoff = 200 * time.Millisecond
	s.Producer.Partitioner = sarama.NewHashPartitioner
	s.Net.DialTimeout = cfg.Timeout.D()
	s.Net.ReadTimeout = cfg.Timeout.D()
	s.Net.WriteTimeout = cfg.Timeout.D()
	s.Metadata.Retry.Max = 1
	s.Metadata.Retry.Backoff = 200 * time.Millisecond
	switch cfg.Acks {
	case "all":
		s.Producer.RequiredAcks = sarama.WaitForAll
	case "leader":
		s.Producer.RequiredAcks = sarama.WaitForLocal
	case "none":
		s.Producer.RequiredAcks = sarama.NoResponse
	}
	switch cfg.Compression {
	case "none":
		s.Producer.Compression = sarama.CompressionNone
	case "gzip":
		s.Producer.Compression = sarama.CompressionGZIP
	case "snappy":
		s.Producer.Compression = sarama.CompressionSnappy
	case "lz4":
		s.Producer.Compression = sarama.CompressionLZ4
	case "zstd":
		s.Producer.Compression = sarama.CompressionZSTD
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

// connect creates the producer and its drain goroutine.  Called with mu
// held or before the goroutines start.
func (k *Kafka) connect() error {
	p, err := sarama.NewAsyncProducer(k.brokers, k.scfg)
	if err != nil {
		return fmt.Errorf("connect to Kafka %s: %w", strings.Join(k.brokers, ","), err)
	}
	k.producer = p
	k.drained = make(chan struct{})
	go k.drain(p, k.drained)
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
		k.mu.Unlock()
		pending := new(atomic.Int32)
		pending.Store(int32(b.Len()) + 1)
		for i := 0; i < b.Len(); i++ {
			ev := b.Event(i)
			if len(ev) > k.maxMsg {
				k.c.AddDrop(metrics.DropTooLarge, 1)
				k.log.Warnf("event of %d bytes exceeds kafka.max_message_bytes; dropped", len(ev))
				pending.Add(-1)
				continue
			}
			p.Input() <- &sarama.ProducerMessage{Topic: k.topic, Key: k.key, Value: sarama.ByteEncoder(ev), Metadata: liveMsg{b: b, pending: pending}}
		}
		if pending.Add(-1) == 0 {
			b.Done()
		}
	}
}

// spoolBatch writes events [from, len) of b to the spool; mu held.
func (k *Kafka) spoolBatch(b *Batch, from int) {
	n, err := k.spool.Append(b, from)
	k.c.Spooled.Add(uint64(n))
	if lost := b.Len() - from - n; lost > 0 {
		k.c.AddDrop(metrics.DropSpoolFull, uint64(lost))
		k.setErr(fmt.Errorf("spool full: %d events dropped", lost))
		if time.Since(k.dropLog) > 10*time.Second {
			k.dropLog = time.Now()
			k.log.WithError(err).Errorf("Kafka down and spool full: %d events dropped (counted in smith_events_dropped_total{reason=\"spool_full\"})", lost)
		}
	} else if err != nil {
		k.log.WithError(err).Error("spool write failed")
	}
	k.updateSpoolGauges()
}

func (k *Kafka) updateSpoolGauges() {
	ev, bytes := k.spool.Len()
	k.c.SpoolEvents.Store(uint64(ev))
	k.c.SpoolBytes.Store(uint64(bytes))
}

// drain reads the producer's results until both channels close.
func (k *Kafka) drain(p sarama.AsyncProducer, done chan struct{}) {
	defer close(done)
	succ, errs := p.Successes(), p.Errors()
	for succ != nil || errs != nil {
		select {
		case m, ok := <-succ:
			if !ok {
				succ = nil
				continue
			}
			k.c.Sent.Add(1)
			switch md := m.Metadata.(type) {
			case liveMsg:
				if md.pending.Add(-1) == 0 {
					md.b.Done()
				}
			case replayMsg:
				k.c.Replayed.Add(1)
				md.wg.Done()
			}
		case e, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			k.setErr(e.Err)
			if permanent(e.Err) {
				// Kafka will never take this event: spooling it would
				// block the replay behind it forever.
				k.c.AddDrop(metrics.DropTooLarge, 1)
				k.log.WithError(e.Err).Warnf("Kafka refuses an event of %d bytes for good; dropped (message_too_large)", e.Msg.Value.Length())
				switch md := e.Msg.Metadata.(type) {
				case liveMsg:
					if md.pending.Add(-1) == 0 {
						md.b.Done()
					}
				case replayMsg:
					md.wg.Done()
				}
				continue
			}
			switch md := e.Msg.Metadata.(type) {
			case liveMsg:
				k.mu.Lock()
				if k.online {
					k.log.WithError(e.Err).Warn("Kafka refused an event; spooling until it is back")
				}
				k.online = false
				if v, ok := e.Msg.Value.(sarama.ByteEncoder); ok {
					one := NewBatch(nil)
					one.End(append(one.Buf(), v...))
					k.spoolBatch(one, 0)
				}
				k.mu.Unlock()
				if md.pending.Add(-1) == 0 {
					md.b.Done()
				}
			case replayMsg:
				md.failed.Store(true)
				md.wg.Done()
			}
		}
	}
}

// permanent reports whether Kafka refused a message for what it is, not
// for the broker's state: retrying it cannot succeed.
// sarama checks the size locally and reports it as a ConfigurationError.
func permanent(err error) bool {
	var cfgErr sarama.ConfigurationError
	return errors.Is(err, sarama.ErrMessageSizeTooLarge) || errors.Is(err, sarama.ErrInvalidMessage) ||
		errors.Is(err, sarama.ErrInvalidRecord) || errors.As(err, &cfgErr)
}

// replay moves the spool to Kafka while offline.
func (k *Kafka) replay() {
	defer k.wg.Done()
	t := time.NewTicker(k.retry)
	defer t.Stop()
	var buf []byte
	var evs [][]byte
	for {
		select {
		case <-k.stop:
			return
		case <-t.C:
		}
		for !k.isOnline() {
			var ok bool
			buf, evs, ok = k.replayOnce(buf, evs)
			if !ok {
				break
			}
			select {
			case <-k.stop:
				return
			default:
			}
		}
	}
}

func (k *Kafka) isOnline() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.online
}

// replayOnce sends one chunk of the spool; ok is false when Kafka is still
// down (try again at the next tick).
func (k *Kafka) replayOnce(buf []byte, evs [][]byte) ([]byte, [][]byte, bool) {
	k.mu.Lock()
	if k.producer == nil {
		if err := k.connect(); err != nil {
			k.setErr(err)
			k.mu.Unlock()
			k.log.WithError(err).Debug("Kafka still unreachable")
			return buf, evs, false
		}
		k.log.Info("connected to Kafka")
	}
	if ev, _ := k.spool.Len(); ev == 0 {
		// Nothing left: new batches may go to Kafka directly again.  The
		// flip happens under mu, so no batch lands in the spool after it.
		k.online = true
		k.mu.Unlock()
		k.log.Info("spool empty; sending to Kafka directly")
		return buf, evs, true
	}
	p := k.producer
	k.mu.Unlock()

	evs, buf, cur, err := k.spool.Peek(1000, buf, evs)
	if err != nil {
		k.setErr(err)
		k.log.WithError(err).Error("read spool")
		return buf, evs, false
	}
	var wg sync.WaitGroup
	failed := new(atomic.Bool)
	wg.Add(len(evs))
	for _, ev := range evs {
		p.Input() <- &sarama.ProducerMessage{Topic: k.topic, Key: k.key, Value: sarama.ByteEncoder(ev), Metadata: replayMsg{wg: &wg, failed: failed}}
	}
	wg.Wait()
	if failed.Load() {
		// Some of the chunk may have arrived: it is sent again (at least
		// once, the sequence numbers show the duplicates).
		return buf, evs, false
	}
	if err := k.spool.Advance(cur, len(evs)); err != nil {
		k.log.WithError(err).Error("advance spool cursor")
	}
	k.updateSpoolGauges()
	return buf, evs, true
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
		p, drained := k.producer, k.drained
		k.mu.Unlock()
		if p != nil {
			p.AsyncClose()
			<-drained
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
