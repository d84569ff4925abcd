package client

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/rafka/rafka/wire"
)

// TopicDescription is a topic's effective configuration (defaults included)
// and the state of its partitions.
type TopicDescription struct {
	Name       string
	Configs    map[string]string
	Partitions []PartitionInfo // sorted by Partition
}

// PartitionInfo describes one partition's log.
type PartitionInfo struct {
	Partition      int32
	Leader         string // broker ID
	LogStartOffset int64
	LogEndOffset   int64
	HighWatermark  int64 // offset after the last committed record
	SizeBytes      int64
	Segments       int32
}

func errorResponse(r *wire.ErrorResponse) error { return wire.AsError(r.Error, r.Message) }

// CreateTopic creates a topic with the given partition count and
// configuration (nil for the defaults). An existing topic gives
// ErrTopicAlreadyExists, also when an earlier attempt of this very call
// created it before its answer was lost.
func (c *Client) CreateTopic(ctx context.Context, name string, partitions int32, configs map[string]string, opts ...TopicOption) error {
	req := &wire.CreateTopicRequest{Name: name, Partitions: partitions, Configs: configs}
	for _, o := range opts {
		o(req)
	}
	if _, err := controlCall(ctx, c, wire.APICreateTopic, req, c.anyBroker, name, errorResponse); err != nil {
		return opError(fmt.Sprintf("create topic %q", name), err)
	}
	c.meta.invalidate(name)
	return nil
}

// TopicOption sets a property of a topic being created.
type TopicOption func(*wire.CreateTopicRequest)

// WithReplicationFactor asks for n replicas of each partition (default:
// the broker's default replication factor, capped by the live brokers).
func WithReplicationFactor(n int32) TopicOption {
	return func(r *wire.CreateTopicRequest) { r.ReplicationFactor = n }
}

// DeleteTopic deletes a topic and its data.
func (c *Client) DeleteTopic(ctx context.Context, name string) error {
	req := &wire.DeleteTopicRequest{Name: name}
	_, err := controlCall(ctx, c, wire.APIDeleteTopic, req, c.anyBroker, name, errorResponse)
	c.meta.invalidate(name)
	if err != nil {
		return opError(fmt.Sprintf("delete topic %q", name), err)
	}
	return nil
}

// ListTopics returns the metadata of every topic, sorted by name.
func (c *Client) ListTopics(ctx context.Context) ([]TopicMetadata, error) {
	resp, err := c.fetchMetadata(ctx, nil)
	if err != nil {
		return nil, opError("list topics", err)
	}
	ok, _ := c.meta.update(resp)
	out := make([]TopicMetadata, 0, len(ok))
	for _, tm := range ok {
		out = append(out, *tm)
	}
	slices.SortFunc(out, func(a, b TopicMetadata) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// DescribeTopic returns a topic's configuration and partitions.
func (c *Client) DescribeTopic(ctx context.Context, name string) (*TopicDescription, error) {
	req := &wire.DescribeTopicRequest{Name: name}
	resp, err := controlCall(ctx, c, wire.APIDescribeTopic, req, c.anyBroker, name,
		func(r *wire.DescribeTopicResponse) error { return wire.AsError(r.Error, r.Message) })
	if err != nil {
		return nil, opError(fmt.Sprintf("describe topic %q", name), err)
	}
	d := &TopicDescription{Name: resp.Name, Configs: maps.Clone(resp.Configs)}
	if d.Configs == nil {
		d.Configs = map[string]string{}
	}
	for _, p := range resp.Partitions {
		d.Partitions = append(d.Partitions, PartitionInfo{
			Partition: p.Partition, Leader: p.Leader, LogStartOffset: p.LogStartOffset,
			LogEndOffset: p.LogEndOffset, HighWatermark: p.HighWatermark, SizeBytes: p.SizeBytes,
			Segments: p.Segments,
		})
	}
	slices.SortFunc(d.Partitions, func(a, b PartitionInfo) int { return int(a.Partition) - int(b.Partition) })
	return d, nil
}

// AlterTopicConfig sets the given configuration keys of a topic; keys not
// named keep their values.
func (c *Client) AlterTopicConfig(ctx context.Context, name string, configs map[string]string) error {
	req := &wire.AlterTopicConfigRequest{Name: name, Configs: configs}
	if _, err := controlCall(ctx, c, wire.APIAlterTopicConfig, req, c.anyBroker, name, errorResponse); err != nil {
		return opError(fmt.Sprintf("alter topic %q", name), err)
	}
	return nil
}

// ListOffset resolves ts for one partition: a unix-ms timestamp gives the
// first offset whose record timestamp is at or after it (the log end when
// none is), wire.OffsetLatest the log end (the next offset to be written) and
// wire.OffsetEarliest the log start. The request goes to the partition's
// leader; a NOT_LEADER answer that names the new leader is retried there.
func (c *Client) ListOffset(ctx context.Context, topic string, partition int32, ts int64) (int64, error) {
	req := &wire.ListOffsetsRequest{Topic: topic, Partition: partition, Timestamp: ts}
	hinted := false // the last answer named the leader: route from the cache
	target := func(ctx context.Context, attempt int) (string, error) {
		refresh := attempt > 0 && !hinted
		hinted = false
		return c.leaderAddr(ctx, topic, partition, refresh)
	}
	resp, err := controlCall(ctx, c, wire.APIListOffsets, req, target, topic,
		func(r *wire.ListOffsetsResponse) error {
			err := r.Err()
			hinted = c.meta.leaderHint(topic, partition, err)
			return err
		})
	if err != nil {
		return 0, opError(fmt.Sprintf("list offset %s/%d at %d", topic, partition, ts), err)
	}
	return resp.Offset, nil
}
