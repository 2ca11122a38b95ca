// SPDX-License-Identifier: GPL-2.0

package harness

import (
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
