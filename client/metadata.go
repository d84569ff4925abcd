package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rafka/rafka/wire"
)

// TopicMetadata describes a topic's partitions as the cluster last reported
// them.
type TopicMetadata struct {
	Name       string
	Partitions []PartitionMetadata // sorted by Partition

	fetched time.Time // when the answer arrived; a leader hint keeps it
}

// PartitionMetadata says where a partition lives and which keys it owns: a
// key whose xxhash64 h has HashStart <= h <= HashEnd belongs to it.
//
// Offline is set when the cluster reported that no replica can serve the
// partition (its only replica's broker is fenced, or its log could not be
// opened): producing to it fails at once with ErrPartitionOffline, and a
// consumer assigned to it reports ErrPartitionOffline and keeps asking for
// fresh metadata until it is back.
type PartitionMetadata struct {
	Partition  int32
	Leader     string // broker ID; empty while no leader is known
	LeaderAddr string // the leader's client address; empty when unknown
	Term       uint64
	HashStart  uint64
	HashEnd    uint64
	Offline    bool
}

// Broker is a broker of the cluster as the last metadata answer listed it.
type Broker struct {
	ID   string
	Addr string // client address
	Zone string // "" when the broker declares none
}

// partition returns the metadata of partition p, or nil.
func (t *TopicMetadata) partition(p int32) *PartitionMetadata {
	// Partitions are numbered 0 to n-1, so p is first looked at as an
	// index (Produce asks per record); the search is for metadata where
	// that does not hold.
	if p >= 0 && int(p) < len(t.Partitions) && t.Partitions[p].Partition == p {
		return &t.Partitions[p]
	}
	i, ok := slices.BinarySearchFunc(t.Partitions, p, func(m PartitionMetadata, p int32) int { return cmp.Compare(m.Partition, p) })
	if !ok {
		return nil
	}
	return &t.Partitions[i]
}

// metadataCache holds the brokers and the topics the client has asked about.
// Topics are fetched on first use and refetched after NOT_LEADER or a
// transport failure (invalidate); concurrent fetches of one topic share one
// request. mu is a leaf: it may be taken under Producer.mu or Consumer.mu
// (leaderHint), and nothing else is taken under it.
type metadataCache struct {
	mu        sync.Mutex
	bootstrap []string
	brokers   map[string]Broker         // by broker ID
	topics    map[string]*TopicMetadata // never modified once stored: replaced
	inflight  map[string]*metaFetch     // by topic
}

type metaFetch struct {
	done chan struct{}
	tm   *TopicMetadata
	err  error
}

func (m *metadataCache) init(bootstrap []string) {
	m.bootstrap = bootstrap
	m.brokers = make(map[string]Broker)
	m.topics = make(map[string]*TopicMetadata)
	m.inflight = make(map[string]*metaFetch)
}

// brokerAddrs returns the known broker addresses: those from metadata, then
// the bootstrap ones not among them.
func (m *metadataCache) brokerAddrs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	addrs := make([]string, 0, len(m.brokers)+len(m.bootstrap))
	for _, b := range m.brokers {
		addrs = append(addrs, b.Addr)
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
			m.brokers[b.ID] = Broker{ID: b.ID, Addr: b.Addr, Zone: b.Zone}
		}
	}
	now := time.Now()
	ok := make(map[string]*TopicMetadata, len(resp.Topics))
	errs := make(map[string]error)
	for i := range resp.Topics {
		wt := &resp.Topics[i]
		if err := wire.AsError(wt.Error, wt.Message); err != nil {
			errs[wt.Name] = err
			delete(m.topics, wt.Name)
			continue
		}
		tm := &TopicMetadata{Name: wt.Name, Partitions: make([]PartitionMetadata, len(wt.Partitions)), fetched: now}
		for j, p := range wt.Partitions {
			tm.Partitions[j] = PartitionMetadata{
				Partition: p.Partition, Leader: p.Leader, LeaderAddr: m.brokers[p.Leader].Addr,
				Term: p.Term, HashStart: p.HashStart, HashEnd: p.HashEnd,
				Offline: p.Error == wire.ErrPartitionOffline,
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
	// A broker that cannot tell yet whether the topic exists (its metadata
	// catching up, the metadata leader being elected) answers a retriable
	// code for it: ask again, within the control retries.
	resp, err := controlCall(ctx, c, wire.APIMetadata, &wire.MetadataRequest{Topics: []string{topic}}, c.anyBroker, "",
		func(r *wire.MetadataResponse) error {
			if err := wire.AsError(r.Error, r.Message); err != nil {
				return err
			}
			for i := range r.Topics {
				if t := &r.Topics[i]; t.Name == topic {
					if err := wire.AsError(t.Error, t.Message); retriable(err) {
						return err
					}
				}
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	c.meta.update(resp)
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

// leaderHint applies the leader hint of a NOT_LEADER answer for
// topic/partition to the cached metadata, so that the next attempt goes to
// the new leader without a metadata round trip. It reports whether err
// carried a hint (an address) and the topic was cached; the caller then
// routes from the cache instead of refreshing it.
func (m *metadataCache) leaderHint(topic string, partition int32, err error) bool {
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.ErrNotLeader || we.LeaderAddr == "" {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	tm := m.topics[topic]
	if tm == nil || tm.partition(partition) == nil {
		return false
	}
	// Copy on write: callers hold the old *TopicMetadata without the lock.
	nt := &TopicMetadata{Name: tm.Name, Partitions: slices.Clone(tm.Partitions), fetched: tm.fetched}
	pm := nt.partition(partition)
	pm.Leader, pm.LeaderAddr = we.LeaderID, we.LeaderAddr
	m.topics[topic] = nt
	if we.LeaderID != "" {
		b := m.brokers[we.LeaderID]
		b.ID, b.Addr = we.LeaderID, we.LeaderAddr
		m.brokers[we.LeaderID] = b
	}
	return true
}

// brokerList returns the brokers of the last metadata answers, sorted by ID.
func (m *metadataCache) brokerList() []Broker {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := make([]Broker, 0, len(m.brokers))
	for _, b := range m.brokers {
		l = append(l, b)
	}
	slices.SortFunc(l, func(a, b Broker) int { return strings.Compare(a.ID, b.ID) })
	return l
}

// Brokers returns the brokers the client knows of (ID, address and zone),
// sorted by ID, as the last metadata answer listed them; empty before the
// first one. It does no I/O: ListTopics refreshes it.
func (c *Client) Brokers() []Broker { return c.meta.brokerList() }

// leaderAddr returns the address of the leader of topic/partition, from the
// cache unless refresh is set. A partition without a known leader gives
// ErrNotLeader (retriable), an offline one ErrPartitionOffline (not
// retriable). Errors do not repeat the topic and partition: callers name
// them.
func (c *Client) leaderAddr(ctx context.Context, topic string, partition int32, refresh bool) (string, error) {
	tm, err := c.topicMetadata(ctx, topic, refresh)
	if err != nil {
		return "", err
	}
	pm := tm.partition(partition)
	if pm == nil {
		return "", &wire.Error{Code: wire.ErrUnknownTopicOrPartition, Message: fmt.Sprintf("no partition %d in a topic of %d", partition, len(tm.Partitions))}
	}
	if pm.Offline {
		return "", offlineError()
	}
	if pm.LeaderAddr == "" {
		return "", &wire.Error{Code: wire.ErrNotLeader, Message: "no leader known"}
	}
	return pm.LeaderAddr, nil
}

// offlineError is the error of a partition the metadata reports offline.
func offlineError() error {
	return &wire.Error{Code: wire.ErrPartitionOffline, Message: "no replica can serve the partition (metadata reports it offline)"}
}
