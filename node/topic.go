package node

import (
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/rafka/rafka/node/meta"
	"github.com/rafka/rafka/node/replica"
	"github.com/rafka/rafka/segment"
	"github.com/rafka/rafka/wire"
)

// Topics have two halves here. The catalog (package meta, b.catalog) says
// which topics exist, with their partition counts and config overrides; the
// broker hosts replicas of their partitions (package replica), opened and
// closed as the catalog changes, and published in the topic map that
// request handlers read without locks. With one broker, this broker hosts
// every partition of every topic.
//
// On disk (FileCatalog): DataDir/topics/<name>/topic.json is the catalog
// entry, and DataDir/topics/<name>/<partition>/ the partition's log. Topic
// creation and deletion are atomic with respect to crashes (see
// meta.FileCatalog).

// partition is a partition hosted by this broker.
type partition = replica.Partition

// topic is a topic as this broker hosts it: its catalog entry, its
// effective config (broker defaults + overrides) and its partitions.
type topic struct {
	meta  meta.TopicInfo
	cfg   TopicConfig
	parts []*partition
}

// partition returns a hosted partition, or nil (also for a nil t).
func (t *topic) partition(id int32) *partition {
	if t == nil || id < 0 || int(id) >= len(t.parts) {
		return nil
	}
	return t.parts[id]
}

// writeFileSync writes a file atomically (temp file, fsync, rename, fsync
// of the directory).
func writeFileSync(path string, data []byte) error { return meta.WriteFileSync(path, data, 0o644) }

func (b *Broker) topicsDir() string { return filepath.Join(b.cfg.DataDir, "topics") }

// partitionDir is where a hosted partition keeps its log: inside the topic's
// catalog directory, so that deleting the topic removes it.
func (b *Broker) partitionDir(topic string, id int32) string {
	return filepath.Join(b.topicsDir(), topic, strconv.Itoa(int(id)))
}

// loadTopics opens the catalog and every partition of every topic in it.
// A partition whose log cannot be opened is kept offline and reported rather
// than stopping the whole broker.
func (b *Broker) loadTopics() (map[string]*topic, error) {
	cat, err := meta.OpenFileCatalog(b.topicsDir(), b.log)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	b.catalog = cat
	topics := make(map[string]*topic)
	for _, info := range cat.List() {
		t, err := b.openTopic(info, true)
		if err != nil {
			b.closeAll(topics)
			return nil, err
		}
		topics[info.Name] = t
		b.log.Info("opened topic", "topic", info.Name, "partitions", info.Partitions)
	}
	return topics, nil
}

// openTopic opens the partitions of a catalog topic. With keepOffline (at
// start-up) a partition whose log cannot be opened, a corrupt segment say,
// is kept offline; otherwise (at creation) any failure fails the topic.
func (b *Broker) openTopic(info meta.TopicInfo, keepOffline bool) (*topic, error) {
	cfg, err := b.cfg.TopicDefaults.apply(info.Configs)
	if err != nil {
		return nil, fmt.Errorf("node: topic %q: %w", info.Name, err)
	}
	t := &topic{meta: info, cfg: cfg}
	for i := range info.Partitions {
		rc := b.replicaConfig(cfg, info.Name, i)
		rc.MustExist = keepOffline // at start-up a partition's data must be there
		p, err := replica.Open(rc)
		if err != nil && keepOffline {
			b.log.Error("partition offline: its log could not be opened; other partitions are served",
				"topic", info.Name, "partition", i, "err", err)
			p, err = replica.Offline(info.Name, i, err), nil
		}
		if err != nil {
			b.closeTopic(t)
			return nil, err // replica's message names the partition
		}
		t.parts = append(t.parts, p)
		if p.Offline() == nil {
			b.metrics.addPartition(p)
		}
	}
	return t, nil
}

// replicaConfig is how partition id of a topic with cfg is opened.
func (b *Broker) replicaConfig(cfg TopicConfig, topic string, id int32) replica.Config {
	return replica.Config{
		Topic:         topic,
		Partition:     id,
		Dir:           b.partitionDir(topic, id),
		Log:           b.segmentOptions(cfg, topic, id),
		HotstoreBytes: b.cfg.HotstoreBytes,
		LockFreeRing:  b.cfg.HotstoreLockFree,
		Logger:        b.log,
	}
}

// closeTopic closes t's partitions and drops their metrics.
func (b *Broker) closeTopic(t *topic) error {
	var errs []error
	for _, p := range t.parts {
		b.metrics.removePartition(p)
		if err := p.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (b *Broker) closeAll(topics map[string]*topic) {
	for _, t := range topics {
		b.closeTopic(t)
	}
}

// CreateTopic creates a topic with n partitions and the given config
// overrides. Errors are *wire.Error values with the protocol's codes.
func (b *Broker) CreateTopic(name string, n int32, configs map[string]string) error {
	if err := meta.ValidTopicName(name); err != nil {
		return &wire.Error{Code: wire.ErrInvalidTopicName, Message: err.Error()}
	}
	if err := meta.ValidPartitions(n); err != nil {
		return &wire.Error{Code: wire.ErrInvalidPartitions, Message: err.Error()}
	}
	if _, err := b.cfg.TopicDefaults.apply(configs); err != nil {
		return &wire.Error{Code: wire.ErrInvalidConfig, Message: err.Error()}
	}
	b.adminMu.Lock()
	defer b.adminMu.Unlock()
	if b.closing.Load() {
		return &wire.Error{Code: wire.ErrBrokerShuttingDown}
	}
	if total := b.catalogPartitions(); total+int(n) > b.cfg.MaxPartitions {
		return &wire.Error{Code: wire.ErrInvalidPartitions, Message: fmt.Sprintf(
			"%d more partitions would pass the broker's limit of %d (%d exist)", n, b.cfg.MaxPartitions, total)}
	}
	info := meta.TopicInfo{Name: name, Partitions: n, Configs: configs, Created: time.Now().UTC()}
	switch err := b.catalog.Create(info); {
	case errors.Is(err, meta.ErrTopicExists):
		return &wire.Error{Code: wire.ErrTopicAlreadyExists, Message: fmt.Sprintf("topic %q exists", name)}
	case err != nil:
		b.log.Error("creating topic failed", "topic", name, "partitions", n, "err", err)
		return &wire.Error{Code: wire.ErrStorage, Message: err.Error()}
	}
	info, _ = b.catalog.Get(name)
	t, err := b.openTopic(info, false)
	if err != nil {
		// Leave nothing behind: a half-created topic would block a retry
		// and fail the next start.
		b.log.Error("creating topic failed: a partition could not be opened", "topic", name, "partitions", n, "err", err)
		if derr := b.catalog.Delete(name); derr != nil {
			b.log.Error("removing a topic that failed to open", "topic", name, "err", derr)
		}
		return &wire.Error{Code: wire.ErrStorage, Message: err.Error()}
	}
	b.setTopic(name, t)
	b.log.Info("created topic", "topic", name, "partitions", n, "configs", configs)
	return nil
}

// catalogPartitions counts the partitions of every topic of the catalog.
func (b *Broker) catalogPartitions() int {
	n := 0
	for _, info := range b.catalog.List() {
		n += int(info.Partitions)
	}
	return n
}

// DeleteTopic closes a topic's partitions and removes it and its data.
// Readers holding views keep them until released.
func (b *Broker) DeleteTopic(name string) error {
	b.adminMu.Lock()
	defer b.adminMu.Unlock()
	if _, ok := b.catalog.Get(name); !ok {
		return &wire.Error{Code: wire.ErrUnknownTopicOrPartition, Message: fmt.Sprintf("topic %q does not exist", name)}
	}
	if t, ok := b.topics()[name]; ok {
		b.setTopic(name, nil)
		if err := b.closeTopic(t); err != nil {
			b.log.Warn("closing deleted topic", "topic", name, "err", err)
		}
	}
	if err := b.catalog.Delete(name); err != nil {
		b.log.Error("deleting topic failed", "topic", name, "err", err)
		return &wire.Error{Code: wire.ErrStorage, Message: err.Error()}
	}
	b.log.Info("deleted topic", "topic", name)
	return nil
}

// AlterTopicConfig sets config overrides of a topic and applies them to its
// hosted partitions.
func (b *Broker) AlterTopicConfig(name string, configs map[string]string) error {
	b.adminMu.Lock()
	defer b.adminMu.Unlock()
	info, ok := b.catalog.Get(name)
	if !ok {
		return &wire.Error{Code: wire.ErrUnknownTopicOrPartition, Message: fmt.Sprintf("topic %q does not exist", name)}
	}
	merged := make(map[string]string, len(info.Configs)+len(configs))
	maps.Copy(merged, info.Configs)
	maps.Copy(merged, configs)
	cfg, err := b.cfg.TopicDefaults.apply(merged)
	if err != nil {
		return &wire.Error{Code: wire.ErrInvalidConfig, Message: err.Error()}
	}
	info, err = b.catalog.SetConfigs(name, merged)
	if err != nil {
		b.log.Error("altering topic config failed", "topic", name, "err", err)
		return &wire.Error{Code: wire.ErrStorage, Message: err.Error()}
	}
	if t, ok := b.topics()[name]; ok {
		for _, p := range t.parts {
			if p.Offline() != nil {
				continue
			}
			if err := p.SetLogOptions(b.segmentOptions(cfg, name, p.ID())); err != nil {
				return &wire.Error{Code: wire.ErrInvalidConfig, Message: err.Error()}
			}
		}
		b.setTopic(name, &topic{meta: info, cfg: cfg, parts: t.parts})
	}
	b.log.Info("altered topic config", "topic", name, "configs", configs)
	return nil
}

// StorageFailing lists the hosted partitions whose latest append failed
// because the disk is full or an fsync failed, with the error; it is empty
// while storage is healthy. A partition leaves the list when an append to it
// succeeds again (after a failed fsync only a restart does that: see
// segment.ErrSyncFailed). The admin /readyz reports not ready while the list
// is not empty.
func (b *Broker) StorageFailing() []string {
	var out []string
	for name, t := range b.topics() {
		for _, p := range t.parts {
			if err := p.StorageError(); err != nil {
				out = append(out, fmt.Sprintf("%s/%d: %v", name, p.ID(), err))
			}
		}
	}
	slices.Sort(out)
	return out
}

// segmentOptions are the log options of one partition of a topic with cfg.
func (b *Broker) segmentOptions(cfg TopicConfig, topic string, id int32) segment.Options {
	opts := cfg.segmentOptions()
	opts.FS = b.cfg.fs
	opts.Logger = b.log.With("topic", topic, "partition", id)
	opts.OnSync = func(d time.Duration) { b.metrics.fsyncDuration.Update(d.Seconds()) }
	opts.OnRoll, opts.OnRetention = b.metrics.segmentRolled, b.metrics.retentionDeleted
	return opts
}
