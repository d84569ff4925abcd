package client

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/rafka/rafka/wire"
)

// TopicMetadata describes a topic's partitions as the cluster last reported
// them.
type TopicMetadata struct {
	Name       string
	Partitions []PartitionMetadata // sorted by Partition
}

// PartitionMetadata says where a partition lives and which keys it owns: a
// key whose xxhash64 h has HashStart <= h <= HashEnd belongs to it.
type PartitionMetadata struct {
	Partition  int32
	Leader     string // broker ID; empty while no leader is known
	LeaderAddr string // the leader's client address; empty when unknown
	Term       uint64
	HashStart  uint64
	HashEnd    uint64
}

// partition returns the metadata of partition p, or nil.
func (t *TopicMetadata) partition(p int32) *PartitionMetadata {
	i, ok := slices.BinarySearchFunc(t.Partitions, p, func(m PartitionMetadata, p int32) int { return cmp.Compare(m.Partition, p) })
	if !ok {
		return nil
	}
	return &t.Partitions[i]
}

// metadataCache holds the brokers and the topics the client has asked about.
// Topics are fetched on first use and refetched after NOT_LEADER or a
// transport failure (invalidate); concurrent fetches of one topic share one
// request.
type metadataCache struct {
	mu        sync.Mutex
	bootstrap []string
	brokers   map[string]string // broker ID -> address
	topics    map[string]*TopicMetadata
	inflight  map[string]*metaFetch // by topic
}

type metaFetch struct {
	done chan struct{}
	tm   *TopicMetadata
	err  error
}

func (m *metadataCache) init(bootstrap []string) {
	m.bootstrap = bootstrap
	m.brokers = make(map[string]string)
	m.topics = make(map[string]*TopicMetadata)
	m.inflight = make(map[string]*metaFetch)
}

// brokerAddrs returns the known broker addresses: those from metadata, then
// the bootstrap ones not among them.
func (m *metadataCache) brokerAddrs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	addrs := make([]string, 0, len(m.brokers)+len(m.bootstrap))
	for _, a := range m.brokers {
		addrs = append(addrs, a)
	}
	slices.Sort(addrs)
	for _, a := range m.bootstrap {
		if !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	return addrs
}

func (m *metadataCache) invalidate(topic string) {
	m.mu.Lock()
	delete(m.topics, topic)
	m.mu.Unlock()
}

// update stores a metadata response and returns the converted topics that
// came without error; topic errors are returned by name.
func (m *metadataCache) update(resp *wire.MetadataResponse) (map[string]*TopicMetadata, map[string]error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, b := range resp.Brokers {
		if b.Addr != "" {
			m.brokers[b.ID] = b.Addr
		}
	}
	ok := make(map[string]*TopicMetadata, len(resp.Topics))
	errs := make(map[string]error)
	for i := range resp.Topics {
		wt := &resp.Topics[i]
		if err := wire.AsError(wt.Error, wt.Message); err != nil {
			errs[wt.Name] = err
			delete(m.topics, wt.Name)
			continue
		}
		tm := &TopicMetadata{Name: wt.Name, Partitions: make([]PartitionMetadata, len(wt.Partitions))}
		for j, p := range wt.Partitions {
			tm.Partitions[j] = PartitionMetadata{
				Partition: p.Partition, Leader: p.Leader, LeaderAddr: m.brokers[p.Leader],
				Term: p.Term, HashStart: p.HashStart, HashEnd: p.HashEnd,
			}
		}
		slices.SortFunc(tm.Partitions, func(a, b PartitionMetadata) int { return cmp.Compare(a.Partition, b.Partition) })
		ok[wt.Name] = tm
		m.topics[wt.Name] = tm
	}
	return ok, errs
}

// fetchMetadata asks any broker for topics (all when empty) and updates the
// cache.
func (c *Client) fetchMetadata(ctx context.Context, topics []string) (*wire.MetadataResponse, error) {
	resp, err := controlCall(ctx, c, wire.APIMetadata, &wire.MetadataRequest{Topics: topics}, c.anyBroker, "",
		func(r *wire.MetadataResponse) error { return wire.AsError(r.Error, r.Message) })
	if err != nil {
		return nil, err
	}
	c.meta.update(resp)
	return resp, nil
}

// topicMetadata returns the cached metadata of topic, fetching it when absent
// or when refresh is set.
func (c *Client) topicMetadata(ctx context.Context, topic string, refresh bool) (*TopicMetadata, error) {
	m := &c.meta
	m.mu.Lock()
	if tm, ok := m.topics[topic]; ok && !refresh {
		m.mu.Unlock()
		return tm, nil
	}
	f, joined := m.inflight[topic]
	if !joined {
		f = &metaFetch{done: make(chan struct{})}
		m.inflight[topic] = f
	}
	m.mu.Unlock()
	if !joined {
		f.tm, f.err = c.fetchTopic(ctx, topic)
		m.mu.Lock()
		delete(m.inflight, topic)
		m.mu.Unlock()
		close(f.done)
		return f.tm, f.err
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if f.err != nil && ctx.Err() == nil && !retriable(f.err) {
		return nil, f.err
	}
	if f.err != nil {
		// The shared fetch may have failed on its caller's context; try with ours.
		return c.fetchTopic(ctx, topic)
	}
	return f.tm, nil
}

func (c *Client) fetchTopic(ctx context.Context, topic string) (*TopicMetadata, error) {
	resp, err := c.fetchMetadata(ctx, []string{topic})
	if err != nil {
		return nil, err
	}
	for i := range resp.Topics {
		if t := &resp.Topics[i]; t.Name == topic {
			if err := wire.AsError(t.Error, t.Message); err != nil {
				return nil, err
			}
			c.meta.mu.Lock()
			tm := c.meta.topics[topic]
			c.meta.mu.Unlock()
			if tm == nil {
				return nil, &wire.Error{Code: wire.ErrUnknownTopicOrPartition, Message: "topic deleted meanwhile"}
			}
			return tm, nil
		}
	}
	return nil, &wire.Error{Code: wire.ErrUnknownTopicOrPartition, Message: "topic missing from the metadata answer"}
}

// leaderAddr returns the address of the leader of topic/partition, from the
// cache unless refresh is set. A partition without a known leader gives
// ErrNotLeader (retriable). Errors do not repeat the topic and partition:
// callers name them.
func (c *Client) leaderAddr(ctx context.Context, topic string, partition int32, refresh bool) (string, error) {
	tm, err := c.topicMetadata(ctx, topic, refresh)
	if err != nil {
		return "", err
	}
	pm := tm.partition(partition)
	if pm == nil {
		return "", &wire.Error{Code: wire.ErrUnknownTopicOrPartition, Message: fmt.Sprintf("no partition %d in a topic of %d", partition, len(tm.Partitions))}
	}
	if pm.LeaderAddr == "" {
		return "", &wire.Error{Code: wire.ErrNotLeader, Message: "no leader known"}
	}
	return pm.LeaderAddr, nil
}
