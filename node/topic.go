package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/rafka/rafka/node/meta"
	"github.com/rafka/rafka/node/replica"
	"github.com/rafka/rafka/segment"
	"github.com/rafka/rafka/wire"
)

// Topics have two halves here. The catalog (b.catalog: the cluster's
// metadata, cluster.go) says which topics exist, with their partition
// counts, config overrides and the brokers each partition is placed on; the
// broker hosts the partitions placed on it (package replica), opened and
// closed by reconcile as the metadata changes, and published in the topic
// map that request handlers read without locks.
//
// On disk: DataDir/topics/<name>/<partition>/ is a hosted partition's log,
// and DataDir/topics/<name>/topic.id records which incarnation of the topic
// (its id: a topic deleted and created again gets a new one) the directory
// belongs to and which partitions were created there, so that a partition
// whose directory has gone missing is reported offline rather than silently
// recreated empty.

// partition is a partition hosted by this broker.
type partition = replica.Partition

// topic is a topic as this broker sees it: its catalog entry, its effective
// config (broker defaults + overrides), its placement, and the partitions
// hosted here (nil for partitions placed on other brokers).
type topic struct {
	meta     meta.TopicInfo
	id       string
	replicas [][]string
	cfg      TopicConfig
	parts    []*partition
	// rafts holds the raft side of hosted partitions with more than one
	// replica (nil for the others), by partition.
	rafts []*raftPart
}

// raft returns the raft side of a hosted replicated partition, or nil.
func (t *topic) raft(id int32) *raftPart {
	if t == nil || id < 0 || int(id) >= len(t.rafts) {
		return nil
	}
	return t.rafts[id]
}

// partition returns a hosted partition, or nil (also for a nil t).
func (t *topic) partition(id int32) *partition {
	if t == nil || id < 0 || int(id) >= len(t.parts) {
		return nil
	}
	return t.parts[id]
}

// hosted lists the partitions this broker hosts.
func (t *topic) hosted() []*partition {
	out := make([]*partition, 0, len(t.parts))
	for _, p := range t.parts {
		if p != nil {
			out = append(out, p)
		}
	}
	return out
}

// writeFileSync writes a file atomically (temp file, fsync, rename, fsync
// of the directory).
func writeFileSync(path string, data []byte) error { return meta.WriteFileSync(path, data, 0o644) }

func (b *Broker) topicsDir() string { return filepath.Join(b.cfg.DataDir, "topics") }

func (b *Broker) topicDir(topic string) string { return filepath.Join(b.topicsDir(), topic) }

// partitionDir is where a hosted partition keeps its log: inside the topic's
// directory, so that deleting the topic removes it.
func (b *Broker) partitionDir(topic string, id int32) string {
	return filepath.Join(b.topicDir(topic), strconv.Itoa(int(id)))
}

// topicMarker is DataDir/topics/<name>/topic.id.
type topicMarker struct {
	ID         string  `json:"id"`
	Partitions []int32 `json:"partitions"` // created in this directory
}

func (b *Broker) readMarker(topic string) (topicMarker, bool) {
	var m topicMarker
	data, err := os.ReadFile(filepath.Join(b.topicDir(topic), "topic.id"))
	if err != nil || json.Unmarshal(data, &m) != nil {
		return m, false
	}
	return m, true
}

func (b *Broker) writeMarker(topic string, m topicMarker) error {
	data, _ := json.Marshal(m)
	return writeFileSync(filepath.Join(b.topicDir(topic), "topic.id"), data)
}

// legacyTopics lists the topics of a data directory written by a
// single-broker release (DataDir/topics/<name>/topic.json), to be imported
// into a cluster this broker forms.
func (b *Broker) legacyTopics() ([]meta.TopicInfo, error) {
	if _, err := os.Stat(b.topicsDir()); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	cat, err := meta.OpenFileCatalog(b.topicsDir(), b.log)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	return cat.List(), nil
}

// reconcile brings the hosted partitions in line with the catalog: it opens
// the partitions placed on this broker, applies config changes, and closes
// (and removes the data of) topics that were deleted. It runs after every
// metadata change and after each topic change this broker makes.
func (b *Broker) reconcile() {
	b.adminMu.Lock()
	defer b.adminMu.Unlock()
	b.reconcileLocked()
}

func (b *Broker) reconcileLocked() {
	if b.closing.Load() {
		return
	}
	cur := b.topics()
	next := make(map[string]*topic, len(cur))
	for _, mt := range b.cluster.state.Topics() {
		old := cur[mt.Name]
		if old != nil && old.id != mt.ID {
			b.dropTopic(old) // deleted and created again while we looked away
			old = nil
		}
		next[mt.Name] = b.reconcileTopic(old, mt)
	}
	for name, old := range cur {
		if _, ok := next[name]; !ok {
			b.dropTopic(old)
		}
	}
	// Directories of topics this broker never opened and the catalog no
	// longer has (deleted while this broker was down).
	if entries, err := os.ReadDir(b.topicsDir()); err == nil {
		for _, e := range entries {
			if _, ok := next[e.Name()]; !ok && e.IsDir() && meta.ValidTopicName(e.Name()) == nil {
				if _, has := b.readMarker(e.Name()); has {
					b.log.Info("removing the data of a deleted topic", "topic", e.Name())
					os.RemoveAll(b.topicDir(e.Name()))
				}
			}
		}
	}
	b.topicMap.Store(&next)
}

// reconcileTopic returns the topic as it should be hosted, reusing old's
// open partitions.
func (b *Broker) reconcileTopic(old *topic, mt meta.Topic) *topic {
	cfg, err := b.cfg.TopicDefaults.apply(mt.Configs)
	if err != nil {
		b.log.Error("topic config invalid on this broker; using the defaults", "topic", mt.Name, "err", err)
		cfg = b.cfg.TopicDefaults
	}
	t := &topic{meta: mt.TopicInfo, id: mt.ID, replicas: mt.Replicas, cfg: cfg,
		parts: make([]*partition, mt.Partitions), rafts: make([]*raftPart, mt.Partitions)}
	if old != nil {
		copy(t.parts, old.parts)
		copy(t.rafts, old.rafts)
		if !maps.Equal(old.meta.Configs, mt.Configs) {
			for _, p := range t.hosted() {
				if p.Offline() == nil {
					if err := p.SetLogOptions(b.segmentOptions(cfg, mt.Name, p.ID())); err != nil {
						b.log.Error("applying a topic config change", "topic", mt.Name, "partition", p.ID(), "err", err)
					}
				}
			}
		}
	}
	marker, hasMarker := b.readMarker(mt.Name)
	if hasMarker && marker.ID != mt.ID {
		// The directory belongs to an earlier topic of the same name.
		b.log.Info("removing the data of an earlier topic of the same name", "topic", mt.Name)
		b.closeTopic(t)
		clear(t.parts)
		clear(t.rafts)
		os.RemoveAll(b.topicDir(mt.Name))
		hasMarker = false
	}
	if !hasMarker {
		marker = topicMarker{ID: mt.ID}
	}
	created, removed := false, false
	caughtUp, _ := b.cluster.ready()
	now := time.Now()
	for i, reps := range mt.Replicas {
		id := int32(i)
		// A move's target hosts the partition too, as a learner that
		// joins the group rather than bootstrapping it (moves.go).
		hosts := mt.Hosts(id)
		here := slices.Contains(hosts, b.id)
		learner := here && !slices.Contains(reps, b.id)
		var start replicaStart
		reopened := false // a failed group's partition being reopened
		if rp := t.rafts[i]; here && rp != nil && rp.reopenDue(now) {
			if err := b.closeHosted(t, id); err != nil {
				b.log.Warn("closing a partition whose raft group failed, to reopen it", "topic", mt.Name, "partition", id, "err", err)
			}
			t.parts[i], t.rafts[i] = nil, nil
			start.reopens, reopened = rp.reopens.Load()+1, true
		}
		switch {
		case here && t.parts[i] == nil:
			rc := b.replicaConfig(cfg, mt.Name, id)
			rc.MustExist = slices.Contains(marker.Partitions, id)
			var p *partition
			var err error
			if len(hosts) > 1 {
				if mv, ok := mt.MoveOf(id); ok && learner {
					start.term = mv.Term
				}
				p, t.rafts[i], err = b.openReplicated(cfg, mt.ID, mt.Name, id, reps, rc.MustExist, learner, start)
				if err == nil && reopened {
					b.log.Info("reopened a partition whose raft group failed", "topic", mt.Name, "partition", id, "reopens", start.reopens)
				}
			} else {
				p, err = replica.Open(rc)
			}
			if err != nil {
				b.log.Error("partition offline: its log could not be opened; other partitions are served",
					"topic", mt.Name, "partition", id, "err", err)
				p = replica.Offline(mt.Name, id, err)
			} else {
				b.metrics.addPartition(p)
				if !rc.MustExist {
					marker.Partitions = append(marker.Partitions, id)
					created = true
				}
			}
			t.parts[i] = p
		case !here && t.parts[i] != nil:
			// Moved away (or never placed here after all): close it and,
			// the metadata being caught up, delete the copy.
			b.closeHosted(t, id)
			t.parts[i], t.rafts[i] = nil, nil
			if caughtUp && b.removePartitionData(mt.Name, id, &marker) {
				removed = true
			}
		case !here && caughtUp && slices.Contains(marker.Partitions, id):
			// Moved away while this broker was down.
			if b.removePartitionData(mt.Name, id, &marker) {
				removed = true
			}
		}
	}
	if created || removed || (!hasMarker && len(t.hosted()) > 0) {
		slices.Sort(marker.Partitions)
		if err := b.writeMarker(mt.Name, marker); err != nil {
			b.log.Error("recording the topic's partitions", "topic", mt.Name, "err", err)
		}
	}
	if old == nil {
		b.log.Info("opened topic", "topic", mt.Name, "partitions", mt.Partitions, "hosted", len(t.hosted()))
	}
	return t
}

// removePartitionData deletes the log of a partition this broker no longer
// hosts and drops it from the topic's marker; false if there was nothing
// to delete or it failed (logged).
func (b *Broker) removePartitionData(topic string, id int32, marker *topicMarker) bool {
	dir := b.partitionDir(topic, id)
	if _, err := os.Stat(dir); err != nil && !slices.Contains(marker.Partitions, id) {
		return false
	}
	if err := os.RemoveAll(dir); err != nil {
		b.log.Error("removing the copy of a partition moved away", "topic", topic, "partition", id, "err", err)
		return false
	}
	marker.Partitions = slices.DeleteFunc(marker.Partitions, func(p int32) bool { return p == id })
	b.log.Info("removed the copy of a partition moved to other brokers", "topic", topic, "partition", id)
	return true
}

// dropTopic closes a deleted topic's partitions and removes its data.
// Readers holding views keep them until released.
func (b *Broker) dropTopic(t *topic) {
	if err := b.closeTopic(t); err != nil {
		b.log.Warn("closing deleted topic", "topic", t.meta.Name, "err", err)
	}
	if m, ok := b.readMarker(t.meta.Name); !ok || m.ID == t.id {
		if err := os.RemoveAll(b.topicDir(t.meta.Name)); err != nil {
			b.log.Error("removing a deleted topic's data", "topic", t.meta.Name, "err", err)
		}
	}
	b.log.Info("deleted topic", "topic", t.meta.Name)
}

func (b *Broker) closePartition(p *partition) error {
	b.metrics.removePartition(p)
	return p.Close()
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

// closeTopic closes t's hosted partitions (and their raft groups) and
// drops their metrics.
func (b *Broker) closeTopic(t *topic) error {
	var errs []error
	for i := range t.parts {
		if err := b.closeHosted(t, int32(i)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// closeHosted closes partition id of t if hosted. It leaves t as it is:
// t may be published (request handlers read it).
func (b *Broker) closeHosted(t *topic, id int32) error {
	p, rp := t.partition(id), t.raft(id)
	if p == nil {
		return nil
	}
	if rp != nil {
		b.metrics.removePartition(p)
		return b.closeReplicated(p, rp)
	}
	return b.closePartition(p)
}

// CreateTopic creates a topic with n partitions and the given config
// overrides, placed over the live brokers. It returns once the cluster has
// committed it and this broker has opened the partitions placed on it.
// Errors are *wire.Error values with the protocol's codes.
func (b *Broker) CreateTopic(name string, n int32, configs map[string]string, rf int) error {
	if err := meta.ValidTopicName(name); err != nil {
		return &wire.Error{Code: wire.ErrInvalidTopicName, Message: err.Error()}
	}
	if err := meta.ValidPartitions(n); err != nil {
		return &wire.Error{Code: wire.ErrInvalidPartitions, Message: err.Error()}
	}
	if _, err := b.cfg.TopicDefaults.apply(configs); err != nil {
		return &wire.Error{Code: wire.ErrInvalidConfig, Message: err.Error()}
	}
	if rf == 0 {
		rf = b.cfg.DefaultReplicationFactor
	}
	if rf < 1 || rf > meta.MaxReplicas {
		return &wire.Error{Code: wire.ErrInvalidRequest, Message: fmt.Sprintf("replication factor %d: between 1 and %d", rf, meta.MaxReplicas)}
	}
	if b.closing.Load() {
		return &wire.Error{Code: wire.ErrBrokerShuttingDown}
	}
	if total := b.catalogPartitions(); total+int(n) > b.cfg.MaxPartitions {
		return &wire.Error{Code: wire.ErrInvalidPartitions, Message: fmt.Sprintf(
			"%d more partitions would pass the broker's limit of %d (%d exist)", n, b.cfg.MaxPartitions, total)}
	}
	info := meta.TopicInfo{Name: name, Partitions: n, Configs: configs, Created: time.Now().UTC()}
	if err := b.cluster.createTopic(info, rf); err != nil {
		return topicError(name, err)
	}
	b.reconcile()
	if t := b.topics()[name]; t != nil {
		for _, p := range t.hosted() {
			if err := p.Offline(); err != nil {
				// Leave nothing behind: a half-created topic would block a
				// retry. (A failure on another broker shows as an offline
				// partition there.)
				b.log.Error("creating topic failed: a partition could not be opened", "topic", name, "partitions", n, "err", err)
				if derr := b.DeleteTopic(name); derr != nil {
					b.log.Error("removing a topic that failed to open", "topic", name, "err", derr)
				}
				return &wire.Error{Code: wire.ErrStorage, Message: err.Error()}
			}
		}
	}
	b.log.Info("created topic", "topic", name, "partitions", n, "configs", configs)
	return nil
}

// topicError maps a catalog error to the protocol's.
func topicError(name string, err error) error {
	var we *wire.Error
	switch {
	case errors.As(err, &we):
		return we
	case errors.Is(err, meta.ErrTopicExists):
		return &wire.Error{Code: wire.ErrTopicAlreadyExists, Message: fmt.Sprintf("topic %q exists", name)}
	case errors.Is(err, meta.ErrUnknownTopic):
		return &wire.Error{Code: wire.ErrUnknownTopicOrPartition, Message: fmt.Sprintf("topic %q does not exist", name)}
	case errors.Is(err, meta.ErrInvalidTopic):
		return &wire.Error{Code: wire.ErrInvalidRequest, Message: err.Error()}
	}
	return &wire.Error{Code: wire.ErrMetadataUnavailable, Message: err.Error()}
}

// catalogPartitions counts the partitions of every topic of the catalog.
func (b *Broker) catalogPartitions() int {
	n := 0
	for _, info := range b.catalog.List() {
		n += int(info.Partitions)
	}
	return n
}

// DeleteTopic deletes a topic from the cluster; every broker closes its
// partitions and removes their data.
func (b *Broker) DeleteTopic(name string) error {
	if err := b.catalog.Delete(name); err != nil {
		return topicError(name, err)
	}
	b.reconcile()
	return nil
}

// AlterTopicConfig sets config overrides of a topic; every broker applies
// them to the partitions it hosts.
func (b *Broker) AlterTopicConfig(name string, configs map[string]string) error {
	info, ok := b.catalog.Get(name)
	if !ok {
		return &wire.Error{Code: wire.ErrUnknownTopicOrPartition, Message: fmt.Sprintf("topic %q does not exist", name)}
	}
	merged := make(map[string]string, len(info.Configs)+len(configs))
	maps.Copy(merged, info.Configs)
	maps.Copy(merged, configs)
	if _, err := b.cfg.TopicDefaults.apply(merged); err != nil {
		return &wire.Error{Code: wire.ErrInvalidConfig, Message: err.Error()}
	}
	if _, err := b.catalog.SetConfigs(name, merged); err != nil {
		return topicError(name, err)
	}
	b.reconcile()
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
		for _, p := range t.hosted() {
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
