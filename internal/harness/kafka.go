// SPDX-License-Identifier: GPL-2.0

package harness

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"smith/agent/config"
)

// Topic is the agent's default topic.
var Topic = config.Default().Kafka.Topic

// BrokerOptions say how to run a kfake broker.
type BrokerOptions struct {
	Topic string // created at start with one partition ("": Topic)
	Port  int    // on loopback (0: any)
	// DataDir keeps the log on disk: a broker started again on the same
	// port and directory comes back with what it had acknowledged.
	DataDir    string
	SyncWrites bool // fsync every write (with DataDir)
}

// NewBroker starts a one-node kfake cluster.
func NewBroker(o BrokerOptions) (*kfake.Cluster, error) {
	if o.Topic == "" {
		o.Topic = Topic
	}
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(1, o.Topic)}
	if o.Port != 0 {
		opts = append(opts, kfake.Ports(o.Port))
	}
	if o.DataDir != "" {
		opts = append(opts, kfake.DataDir(o.DataDir))
	}
	if o.SyncWrites {
		opts = append(opts, kfake.SyncWrites())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start kfake broker: %w", err)
	}
	return c, nil
}

// TopicReader reads one topic from its start.
type TopicReader struct {
	cl    *kgo.Client
	topic string
}

// NewTopicReader is a consumer of topic ("": Topic) on the brokers at
// addrs, from the first record.
func NewTopicReader(topic string, addrs ...string) (*TopicReader, error) {
	if topic == "" {
		topic = Topic
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return &TopicReader{cl: cl, topic: topic}, nil
}

// Close ends the consumer.
func (r *TopicReader) Close() { r.cl.Close() }

// Poll returns the records of one fetch (none when ctx ends first, with
// its error).
func (r *TopicReader) Poll(ctx context.Context) ([]*kgo.Record, error) {
	fs := r.cl.PollFetches(ctx)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return fs.Records(), nil
}

// ReadAll reads until it has every record up to the topic's high
// watermark and two fetches in a row brought nothing new, within timeout.
func (r *TopicReader) ReadAll(ctx context.Context, timeout time.Duration) ([][]byte, error) {
	var out [][]byte
	var hw int64 = -1
	var next int64
	idle := 0
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		fs := r.cl.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n := 0
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if p.Err != nil {
				return
			}
			hw = p.HighWatermark
			for _, rec := range p.Records {
				out = append(out, rec.Value)
				next = rec.Offset + 1
				n++
			}
		})
		if n == 0 {
			idle++
		} else {
			idle = 0
		}
		if hw >= 0 && next >= hw && idle >= 2 {
			return out, nil
		}
	}
	return nil, fmt.Errorf("kafka: read %d records, high watermark %d, not caught up within %s", len(out), hw, timeout)
}

// End is how many records the topic holds: the end offset of its
// partition 0 (the topics here have one).
func (r *TopicReader) End(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req := kmsg.NewPtrListOffsetsRequest()
	t := kmsg.NewListOffsetsRequestTopic()
	t.Topic = r.topic
	p := kmsg.NewListOffsetsRequestTopicPartition()
	p.Partition = 0
	p.Timestamp = -1 // the end offset
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, r.cl)
	if err != nil {
		return 0, fmt.Errorf("kafka end offset of %s: %w", r.topic, err)
	}
	var total uint64
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if rp.ErrorCode != 0 {
				return 0, fmt.Errorf("kafka end offset of %s/%d: error code %d", r.topic, rp.Partition, rp.ErrorCode)
			}
			total += uint64(rp.Offset)
		}
	}
	return total, nil
}

// NewTopicReaderAt is NewTopicReader reading partition 0 of topic from
// offset on: what a benchmark's later agent wrote after earlier ones.
func NewTopicReaderAt(topic string, offset int64, addrs ...string) (*TopicReader, error) {
	if topic == "" {
		topic = Topic
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(offset)}}),
		kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return &TopicReader{cl: cl, topic: topic}, nil
}

// Drain hands f every record that arrives until a fetch of wait brings
// none, and returns how many it handed.
func (r *TopicReader) Drain(ctx context.Context, wait time.Duration, f func(*kgo.Record) error) (int, error) {
	n := 0
	for {
		pctx, cancel := context.WithTimeout(ctx, wait)
		fs := r.cl.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return n, err
		}
		got := 0
		var ferr error
		fs.EachRecord(func(rec *kgo.Record) {
			if ferr == nil {
				ferr = f(rec)
			}
			got++
		})
		if ferr != nil {
			return n, ferr
		}
		if got == 0 {
			return n, nil
		}
		n += got
	}
}

// SeqCounter counts the events of one agent by their sequence numbers, as
// a consumer de-duplicates (docs/EVENTS.md): Events is the events whose
// number came first, Duplicates those whose number had come before;
// LossReports counts the "lost N" and gap events (data_type "1") apart,
// since no producer offered them.  Every event must carry the same
// stream: one agent state.
type SeqCounter struct {
	Events, Duplicates, LossReports uint64
	stream                          []byte
	seen                            map[uint64]*[1024]uint64 // bit per number, 65,536 per chunk
}

// Add counts one event (a JSON object with "seq" and "stream").
func (c *SeqCounter) Add(ev []byte) error {
	seq, ok := jsonUint(ev, `"seq":`)
	if !ok {
		return fmt.Errorf("event without a sequence number: %.200s", ev)
	}
	stream, ok := jsonString(ev, `"stream":"`)
	if !ok {
		return fmt.Errorf("event without a stream: %.200s", ev)
	}
	if c.stream == nil {
		c.stream = bytes.Clone(stream)
	} else if !bytes.Equal(stream, c.stream) {
		return fmt.Errorf("event of stream %s among stream %s's: %.200s", stream, c.stream, ev)
	}
	if c.seen == nil {
		c.seen = map[uint64]*[1024]uint64{}
	}
	chunk := c.seen[seq>>16]
	if chunk == nil {
		chunk = new([1024]uint64)
		c.seen[seq>>16] = chunk
	}
	word, bit := &chunk[seq>>6&1023], uint64(1)<<(seq&63)
	switch {
	case *word&bit != 0:
		c.Duplicates++
	case bytes.Contains(ev, []byte(`"data_type":"1"`)):
		c.LossReports++
	default:
		c.Events++
	}
	*word |= bit
	return nil
}

// jsonUint is the unsigned number after the first key (`"name":`) in a
// flat JSON object.
func jsonUint(ev []byte, key string) (uint64, bool) {
	i := bytes.Index(ev, []byte(key))
	if i < 0 {
		return 0, false
	}
	rest := ev[i+len(key):]
	n, digits := uint64(0), 0
	for _, ch := range rest {
		if ch < '0' || ch > '9' {
			break
		}
		n, digits = n*10+uint64(ch-'0'), digits+1
	}
	return n, digits > 0 && digits < 20
}

// jsonString is the string after the first key (`"name":"`), escapes not
// undone.
func jsonString(ev []byte, key string) ([]byte, bool) {
	i := bytes.Index(ev, []byte(key))
	if i < 0 {
		return nil, false
	}
	rest := ev[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	return rest[:max(j, 0)], j >= 0
}

// Produce writes values to topic ("": Topic) on the brokers at addrs, in
// order, each acknowledged before the next: a test's records at known
// offsets.
func Produce(ctx context.Context, topic string, addrs []string, values ...[]byte) error {
	if topic == "" {
		topic = Topic
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	for i, v := range values {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: v}).FirstErr(); err != nil {
			return fmt.Errorf("produce record %d to %s: %w", i, topic, err)
		}
	}
	return nil
}
