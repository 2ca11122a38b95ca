package sink

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// producer writes events to the host's partition of the topic as whole
// record batches, one produce request per chunk, on sarama's client (its
// metadata, broker connections, TLS, SASL and protocol encoding).
//
// Why not sarama's AsyncProducer: it moves every message through a chain
// of goroutines and their channels (dispatcher, topic, partition and
// broker producers) and back through Successes, which cost about three
// times the rest of the agent per event at 10k events/s
// (docs/BENCHMARKS.md, "Kafka requests").  A
// pipeline batch is already a batch: it goes out as one or a few
// requests, and one response acknowledges all of it.
type producer struct {
	client    sarama.Client
	topic     string
	key       []byte
	version   int16 // of the produce request
	acks      sarama.RequiredAcks
	timeout   int32 // ms, the broker's wait for acks
	codec     sarama.CompressionCodec
	level     int
	retries   int
	backoff   time.Duration
	chunk     int // a request's record bytes at most
	part      sarama.Partitioner
	partMu    sync.Mutex
	slots     chan struct{} // requests in flight at most
	inflight  sync.WaitGroup
	closeOnce sync.Once
}

// recordOverhead is what a record adds to its key and value in a v2
// record batch at most (sarama's maximumRecordOverhead): an event is too
// large when its record is over kafka.max_message_bytes.
const recordOverhead = 5*5 + 10 + 1

// batchOverhead is a record batch's header (61 bytes) with room to
// spare, kept out of a chunk's bytes.
const batchOverhead = 128

// produceVersion is the produce request version sarama speaks for
// Kafka version v; 0 for those before 0.11 (no record batches).
func produceVersion(v sarama.KafkaVersion) int16 {
	for _, s := range []struct {
		since sarama.KafkaVersion
		req   int16
	}{
		{sarama.V3_7_0_0, 10}, {sarama.V2_8_0_0, 9}, {sarama.V2_4_0_0, 8}, {sarama.V2_1_0_0, 7},
		{sarama.V2_0_0_0, 6}, {sarama.V1_0_0_0, 5}, {sarama.V0_11_0_0, 3},
	} {
		if v.IsAtLeast(s.since) {
			return s.req
		}
	}
	return 0
}

// newProducer connects to the brokers (metadata): as long as they make it,
// bounded by the dial and read timeouts.
func newProducer(brokers []string, cfg *sarama.Config, topic string, key []byte, maxMsg int) (*producer, error) {
	version := produceVersion(cfg.Version) // not 0: SaramaConfig refuses that
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		return nil, err
	}
	return &producer{
		client: client, topic: topic, key: key, version: version,
		acks: cfg.Producer.RequiredAcks, timeout: int32(cfg.Producer.Timeout / time.Millisecond),
		codec: cfg.Producer.Compression, level: cfg.Producer.CompressionLevel,
		retries: cfg.Producer.Retry.Max, backoff: cfg.Producer.Retry.Backoff,
		chunk: min(maxMsg, cfg.Producer.Flush.Bytes) - batchOverhead,
		part:  cfg.Producer.Partitioner(topic), slots: make(chan struct{}, cfg.Net.MaxOpenRequests),
	}, nil
}

// recordBytes is the most ev takes in a record batch with key.
func recordBytes(ev, key []byte) int { return len(ev) + len(key) + recordOverhead }

// fits reports whether Kafka can take ev as one record.
func fits(ev, key []byte, maxMsg int) bool { return recordBytes(ev, key) <= maxMsg }

// chunks calls send with consecutive runs of evs whose records fit one
// request.
func (p *producer) chunks(evs [][]byte, send func([][]byte)) {
	from, bytes := 0, 0
	for i, ev := range evs {
		n := recordBytes(ev, p.key)
		if i > from && bytes+n > p.chunk {
			send(evs[from:i])
			from, bytes = i, 0
		}
		bytes += n
	}
	if from < len(evs) {
		send(evs[from:])
	}
}

// goProduce sends evs as one request, in the order of the calls (the
// caller's goroutine writes it to the connection), and hands the outcome
// to done without waiting for it: the events acknowledged, or the error.
// It waits first when the requests in flight are at their bound.  A
// request that fails is retried in a goroutine of its own (after that,
// order is not kept: docs/EVENTS.md).
func (p *producer) goProduce(evs [][]byte, refused func(ev []byte, err error), done func(acked int, err error)) {
	p.slots <- struct{}{}
	p.inflight.Add(1)
	finish := func(n int, err error) {
		<-p.slots
		done(len(evs)-n, err)
		p.inflight.Done()
	}
	p.send(evs, func(err error) {
		if err == nil {
			finish(0, nil)
			return
		}
		// Not on the broker's response goroutine: a retry talks to it.
		go func() { finish(p.after(evs, err, 1, refused)) }()
	})
}

// after goes on from a failed try of evs: a request refused as a whole
// for what it holds is split in halves until the refused events are
// found (handed to refused and counted in the result: retrying cannot
// help); another error is retried, the metadata asked again in between,
// until the retries are spent.  The result is nil once Kafka took all of
// evs but the refused ones; an error may leave part of evs in Kafka (at
// least once: (stream, seq) identifies the duplicates).
func (p *producer) after(evs [][]byte, err error, try int, refused func(ev []byte, err error)) (int, error) {
	for ; err != nil; try++ {
		if permanent(err) {
			if len(evs) == 1 {
				refused(evs[0], err)
				return 1, nil
			}
			h := len(evs) / 2
			n1, err1 := p.after(evs[:h], p.request(evs[:h]), 1, refused)
			n2, err2 := p.after(evs[h:], p.request(evs[h:]), 1, refused)
			return n1 + n2, errors.Join(err1, err2)
		}
		if try > p.retries {
			return 0, err
		}
		time.Sleep(p.backoff)
		// The leader may have moved; a failed metadata request leaves
		// the old one, and the next try says what is wrong.
		_ = p.client.RefreshMetadata(p.topic)
		err = p.request(evs)
	}
	return 0, nil
}

// leader is the broker of the host's partition and the partition.
func (p *producer) leader() (*sarama.Broker, int32, error) {
	parts, err := p.client.Partitions(p.topic)
	if err != nil {
		return nil, 0, fmt.Errorf("topic %s: %w", p.topic, err)
	}
	if len(parts) == 0 {
		return nil, 0, fmt.Errorf("topic %s: %w", p.topic, sarama.ErrLeaderNotAvailable)
	}
	p.partMu.Lock() // sarama's hash partitioner keeps its hash in itself
	i, err := p.part.Partition(&sarama.ProducerMessage{Topic: p.topic, Key: sarama.ByteEncoder(p.key)}, int32(len(parts)))
	p.partMu.Unlock()
	if err != nil || i < 0 || int(i) >= len(parts) {
		return nil, 0, fmt.Errorf("topic %s: no partition for the key (%v)", p.topic, err)
	}
	part := parts[i]
	b, err := p.client.Leader(p.topic, part)
	if err != nil {
		return nil, 0, fmt.Errorf("leader of %s/%d: %w", p.topic, part, err)
	}
	return b, part, nil
}

// send writes evs as one request and calls cb with the outcome: from the
// broker's response goroutine when it answers (cb must not call the
// broker), at once when it cannot be sent or no answer comes
// (kafka.acks = "none").
func (p *producer) send(evs [][]byte, cb func(error)) {
	b, part, err := p.leader()
	if err != nil {
		cb(err)
		return
	}
	req := p.build(part, evs)
	if p.acks == sarama.NoResponse {
		_, err := b.Produce(req)
		cb(p.failed(b, err))
		return
	}
	if err := b.AsyncProduce(req, func(resp *sarama.ProduceResponse, err error) {
		if err != nil {
			cb(fmt.Errorf("produce to %s: %w", b.Addr(), err))
			return
		}
		cb(p.check(b, part, resp))
	}); err != nil {
		cb(p.failed(b, err))
	}
}

// request sends evs as one request and waits for the answer (retries).
func (p *producer) request(evs [][]byte) error {
	b, part, err := p.leader()
	if err != nil {
		return err
	}
	resp, err := b.Produce(p.build(part, evs))
	if err != nil {
		return p.failed(b, err)
	}
	if resp == nil { // kafka.acks = "none": the broker does not answer
		return nil
	}
	return p.check(b, part, resp)
}

// failed closes b's connection after a request could not go through, so
// that the next request opens it again (the client's Leader does); nil
// stays nil.
func (p *producer) failed(b *sarama.Broker, err error) error {
	if err == nil {
		return nil
	}
	_ = b.Close()
	return fmt.Errorf("produce to %s: %w", b.Addr(), err)
}

// check is the partition's result in resp.
func (p *producer) check(b *sarama.Broker, part int32, resp *sarama.ProduceResponse) error {
	blk := resp.GetBlock(p.topic, part)
	if blk == nil {
		return fmt.Errorf("produce to %s: no result for %s/%d", b.Addr(), p.topic, part)
	}
	if blk.Err != sarama.ErrNoError {
		return fmt.Errorf("produce to %s/%d: %w", p.topic, part, blk.Err)
	}
	return nil
}

// build is the produce request of evs: one record batch, the records'
// values the events themselves (no copy; they stay valid until the
// request is answered).
func (p *producer) build(part int32, evs [][]byte) *sarama.ProduceRequest {
	recs := make([]sarama.Record, len(evs))
	ptrs := make([]*sarama.Record, len(evs))
	for i, ev := range evs {
		recs[i] = sarama.Record{Key: p.key, Value: ev, OffsetDelta: int64(i)}
		ptrs[i] = &recs[i]
	}
	now := time.Now()
	req := &sarama.ProduceRequest{Version: p.version, RequiredAcks: p.acks, Timeout: p.timeout}
	req.AddBatch(p.topic, part, &sarama.RecordBatch{
		Version: 2, Codec: p.codec, CompressionLevel: p.level,
		FirstTimestamp: now, MaxTimestamp: now,
		ProducerID: -1, ProducerEpoch: -1, // not idempotent
		LastOffsetDelta: int32(len(evs) - 1), Records: ptrs,
	})
	return req
}

// close waits for the requests in flight and closes the connections.
func (p *producer) close() error {
	var err error
	p.closeOnce.Do(func() {
		p.inflight.Wait()
		err = p.client.Close()
	})
	return err
}
