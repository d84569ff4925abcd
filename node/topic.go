package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rafka/rafka/segment"
	"github.com/rafka/rafka/wire"
)

// Topic directory layout under DataDir/topics:
//
//	<name>/topic.json      name, partition count, config overrides
//	<name>/<partition>/    the partition's segment files
//	~creating-<name>/      a topic being created (removed at start-up)
//	~deleting-<name>-<ns>/ a topic being deleted (removed at start-up)
//
// '~' cannot appear in a topic name, so these never collide with topics.
const (
	topicMetaFile   = "topic.json"
	creatingPrefix  = "~creating-"
	deletingPrefix  = "~deleting-"
	maxTopicNameLen = 249
	maxPartitions   = 10000
)

// topicMeta is what topic.json holds.
type topicMeta struct {
	Name       string            `json:"name"`
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs"` // overrides only; defaults come from the broker
	Created    time.Time         `json:"created"`
}

type topic struct {
	meta  topicMeta
	cfg   TopicConfig // effective: broker defaults + overrides
	dir   string
	parts []*partition
}

func (t *topic) partition(id int32) *partition {
	if id < 0 || int(id) >= len(t.parts) {
		return nil
	}
	return t.parts[id]
}

// validTopicName reports why name cannot be a topic name, or nil.
func validTopicName(name string) error {
	if name == "" || len(name) > maxTopicNameLen || name == "." || name == ".." {
		return fmt.Errorf("topic name %q: 1-%d characters, not '.' or '..'", name, maxTopicNameLen)
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("topic name %q: only [a-zA-Z0-9._-] allowed", name)
		}
	}
	return nil
}

// writeFileSync writes a file atomically: temp file, fsync, rename, fsync dir.
func writeFileSync(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func readTopicMeta(dir string) (topicMeta, error) {
	var m topicMeta
	b, err := os.ReadFile(filepath.Join(dir, topicMetaFile))
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%s: %w", topicMetaFile, err)
	}
	if m.Name != filepath.Base(dir) {
		return m, fmt.Errorf("%s names topic %q but lives in %q", topicMetaFile, m.Name, filepath.Base(dir))
	}
	if m.Partitions < 1 || m.Partitions > maxPartitions {
		return m, fmt.Errorf("%s: partition count %d out of range", topicMetaFile, m.Partitions)
	}
	return m, nil
}

// openTopic opens every partition of an existing topic directory. At
// start-up (keepOffline) a partition whose log cannot be opened, a corrupt
// segment say, is kept offline and reported rather than stopping the whole
// broker; at creation any failure fails the topic.
func (b *Broker) openTopic(dir string, m topicMeta, keepOffline bool) (*topic, error) {
	cfg, err := b.cfg.TopicDefaults.apply(m.Configs)
	if err != nil {
		return nil, fmt.Errorf("topic %q: %w", m.Name, err)
	}
	t := &topic{meta: m, cfg: cfg, dir: dir}
	for i := range m.Partitions {
		p, err := b.openPartition(t, i)
		if err != nil && keepOffline {
			b.log.Error("partition offline: its log could not be opened; other partitions are served",
				"topic", m.Name, "partition", i, "err", err)
			p, err = offlinePartition(m.Name, i, err), nil
		}
		if err != nil {
			b.closeTopic(t)
			return nil, err
		}
		t.parts = append(t.parts, p)
	}
	return t, nil
}

// closeTopic closes t's partitions and drops their metrics.
func (b *Broker) closeTopic(t *topic) error {
	for _, p := range t.parts {
		b.metrics.removePartition(p)
	}
	return t.close()
}

// segmentOptions are the log options of one partition of a topic with cfg.
func (b *Broker) segmentOptions(cfg TopicConfig, topic string, id int32) segment.Options {
	opts := cfg.segmentOptions()
	opts.Logger = b.log.With("topic", topic, "partition", id)
	opts.OnSync = func(d time.Duration) { b.metrics.fsyncDuration.Update(d.Seconds()) }
	opts.OnRoll, opts.OnRetention = b.metrics.segmentRolled, b.metrics.retentionDeleted
	return opts
}

func (b *Broker) openPartition(t *topic, id int32) (*partition, error) {
	opts := b.segmentOptions(t.cfg, t.meta.Name, id)
	p, err := openPartition(t.meta.Name, id, filepath.Join(t.dir, strconv.Itoa(int(id))), opts, b.cfg.HotstoreBytes)
	if err != nil {
		return nil, err
	}
	b.metrics.addPartition(p)
	return p, nil
}

func (t *topic) close() error {
	var errs []error
	for _, p := range t.parts {
		if err := p.close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// loadTopics opens every topic under DataDir/topics and removes leftovers of
// interrupted creations and deletions.
func (b *Broker) loadTopics() (map[string]*topic, error) {
	root := b.topicsDir()
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	topics := make(map[string]*topic)
	for _, e := range ents {
		name := e.Name()
		path := filepath.Join(root, name)
		if strings.HasPrefix(name, creatingPrefix) || strings.HasPrefix(name, deletingPrefix) {
			b.log.Info("removing leftover of an interrupted topic operation", "dir", path)
			if err := os.RemoveAll(path); err != nil {
				return nil, fmt.Errorf("node: %w", err)
			}
			continue
		}
		if !e.IsDir() || validTopicName(name) != nil {
			b.log.Warn("ignoring unexpected entry in topics directory", "path", path)
			continue
		}
		m, err := readTopicMeta(path)
		if err != nil {
			b.closeAll(topics)
			return nil, fmt.Errorf("node: topic %q: %w", name, err)
		}
		t, err := b.openTopic(path, m, true)
		if err != nil {
			b.closeAll(topics)
			return nil, fmt.Errorf("node: %w", err)
		}
		topics[name] = t
		b.log.Info("opened topic", "topic", name, "partitions", m.Partitions)
	}
	return topics, nil
}

func (b *Broker) closeAll(topics map[string]*topic) {
	for _, t := range topics {
		b.closeTopic(t)
	}
}

func (b *Broker) topicsDir() string { return filepath.Join(b.cfg.DataDir, "topics") }

// CreateTopic creates a topic with n partitions and the given config
// overrides. Errors are *wire.Error values with the protocol's codes.
func (b *Broker) CreateTopic(name string, n int32, configs map[string]string) error {
	if err := validTopicName(name); err != nil {
		return &wire.Error{Code: wire.ErrInvalidTopicName, Message: err.Error()}
	}
	if n < 1 || n > maxPartitions {
		return &wire.Error{Code: wire.ErrInvalidPartitions, Message: fmt.Sprintf("partition count %d: between 1 and %d", n, maxPartitions)}
	}
	if _, err := b.cfg.TopicDefaults.apply(configs); err != nil {
		return &wire.Error{Code: wire.ErrInvalidConfig, Message: err.Error()}
	}
	b.adminMu.Lock()
	defer b.adminMu.Unlock()
	if b.closing.Load() {
		return &wire.Error{Code: wire.ErrBrokerShuttingDown}
	}
	if _, ok := b.topics()[name]; ok {
		return &wire.Error{Code: wire.ErrTopicAlreadyExists, Message: fmt.Sprintf("topic %q exists", name)}
	}
	m := topicMeta{Name: name, Partitions: n, Configs: configs, Created: time.Now().UTC()}
	if m.Configs == nil {
		m.Configs = map[string]string{}
	}
	tmp := filepath.Join(b.topicsDir(), creatingPrefix+name)
	final := filepath.Join(b.topicsDir(), name)
	os.RemoveAll(tmp)
	if err := b.writeNewTopic(tmp, final, m); err != nil {
		os.RemoveAll(tmp)
		return &wire.Error{Code: wire.ErrStorage, Message: err.Error()}
	}
	t, err := b.openTopic(final, m, false)
	if err != nil {
		// Leave nothing behind: a half-created topic would block a retry
		// and fail the next start.
		if rerr := b.removeTopicDir(final, name); rerr != nil {
			b.log.Warn("removing a topic that failed to open", "topic", name, "err", rerr)
		}
		return &wire.Error{Code: wire.ErrStorage, Message: err.Error()}
	}
	b.setTopic(name, t)
	b.log.Info("created topic", "topic", name, "partitions", n, "configs", configs)
	return nil
}

func (b *Broker) writeNewTopic(tmp, final string, m topicMeta) error {
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileSync(filepath.Join(tmp, topicMetaFile), data); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	return syncDir(b.topicsDir())
}

// DeleteTopic closes a topic's partitions and removes its data. Readers
// holding views keep them until released.
func (b *Broker) DeleteTopic(name string) error {
	b.adminMu.Lock()
	defer b.adminMu.Unlock()
	t, ok := b.topics()[name]
	if !ok {
		return &wire.Error{Code: wire.ErrUnknownTopicOrPartition, Message: fmt.Sprintf("topic %q does not exist", name)}
	}
	b.setTopic(name, nil)
	if err := b.closeTopic(t); err != nil {
		b.log.Warn("closing deleted topic", "topic", name, "err", err)
	}
	if err := b.removeTopicDir(t.dir, name); err != nil {
		return &wire.Error{Code: wire.ErrStorage, Message: err.Error()}
	}
	b.log.Info("deleted topic", "topic", name)
	return nil
}

// removeTopicDir renames a topic directory out of the way (a crash after
// that leaves a leftover that start-up removes) and deletes it.
func (b *Broker) removeTopicDir(dir, name string) error {
	gone := filepath.Join(b.topicsDir(), fmt.Sprintf("%s%s-%d", deletingPrefix, name, time.Now().UnixNano()))
	if err := os.Rename(dir, gone); err != nil {
		return err
	}
	syncDir(b.topicsDir())
	if err := os.RemoveAll(gone); err != nil {
		b.log.Warn("removing deleted topic data", "dir", gone, "err", err)
	}
	return nil
}

// AlterTopicConfig sets config overrides of a topic and applies them to its
// open partitions.
func (b *Broker) AlterTopicConfig(name string, configs map[string]string) error {
	b.adminMu.Lock()
	defer b.adminMu.Unlock()
	t, ok := b.topics()[name]
	if !ok {
		return &wire.Error{Code: wire.ErrUnknownTopicOrPartition, Message: fmt.Sprintf("topic %q does not exist", name)}
	}
	merged := make(map[string]string, len(t.meta.Configs)+len(configs))
	for k, v := range t.meta.Configs {
		merged[k] = v
	}
	for k, v := range configs {
		merged[k] = v
	}
	cfg, err := b.cfg.TopicDefaults.apply(merged)
	if err != nil {
		return &wire.Error{Code: wire.ErrInvalidConfig, Message: err.Error()}
	}
	m := t.meta
	m.Configs = merged
	data, err := json.MarshalIndent(m, "", "  ")
	if err == nil {
		err = writeFileSync(filepath.Join(t.dir, topicMetaFile), data)
	}
	if err != nil {
		return &wire.Error{Code: wire.ErrStorage, Message: err.Error()}
	}
	for _, p := range t.parts {
		if p.offline != nil {
			continue
		}
		if err := p.log.SetOptions(b.segmentOptions(cfg, name, p.id)); err != nil {
			return &wire.Error{Code: wire.ErrInvalidConfig, Message: err.Error()}
		}
	}
	nt := &topic{meta: m, cfg: cfg, dir: t.dir, parts: t.parts}
	b.setTopic(name, nt)
	b.log.Info("altered topic config", "topic", name, "configs", configs)
	return nil
}
