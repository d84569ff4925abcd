package meta

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// FileCatalog keeps the catalog in a directory, one sub-directory per topic:
//
//	<root>/<name>/topic.json      name, partition count, config overrides
//	<root>/~creating-<name>/      a topic being created (removed at open)
//	<root>/~deleting-<name>-<ns>/ a topic being deleted (removed at open)
//
// '~' cannot appear in a topic name, so these never collide with topics.
// Create writes topic.json in a ~creating- directory and renames it into
// place; Delete renames the directory to ~deleting- and removes it; both are
// atomic with respect to crashes. The broker keeps each topic's partition
// logs inside its directory (TopicDir), so Delete also removes them: close
// them first.
type FileCatalog struct {
	root string
	log  *slog.Logger

	// mu guards topics and serialises changes to the directory.
	mu     sync.Mutex
	topics map[string]TopicInfo
}

const (
	topicFile      = "topic.json"
	creatingPrefix = "~creating-"
	deletingPrefix = "~deleting-"
)

// OpenFileCatalog reads the catalog in root (creating root), removing the
// leftovers of interrupted creations and deletions. A topic directory whose
// topic.json cannot be read is an error: the broker must not start without
// knowing a topic it holds data of. Entries that are not topic directories
// are logged and ignored. logger may be nil.
func OpenFileCatalog(root string, logger *slog.Logger) (*FileCatalog, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("meta: %w", err)
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("meta: %w", err)
	}
	c := &FileCatalog{root: root, log: logger, topics: make(map[string]TopicInfo)}
	for _, e := range ents {
		name := e.Name()
		path := filepath.Join(root, name)
		if strings.HasPrefix(name, creatingPrefix) || strings.HasPrefix(name, deletingPrefix) {
			logger.Info("removing leftover of an interrupted topic operation", "dir", path)
			if err := os.RemoveAll(path); err != nil {
				return nil, fmt.Errorf("meta: %w", err)
			}
			continue
		}
		if !e.IsDir() || ValidTopicName(name) != nil {
			logger.Warn("ignoring unexpected entry in topics directory", "path", path)
			continue
		}
		t, err := readTopic(path)
		if err != nil {
			return nil, fmt.Errorf("meta: topic %q: %w", name, err)
		}
		c.topics[name] = t
	}
	return c, nil
}

// TopicDir is the directory of topic name, where its topic.json lives and
// the broker keeps its partition logs.
func (c *FileCatalog) TopicDir(name string) string { return filepath.Join(c.root, name) }

func readTopic(dir string) (TopicInfo, error) {
	var t TopicInfo
	b, err := os.ReadFile(filepath.Join(dir, topicFile))
	if err != nil {
		return t, err
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return t, fmt.Errorf("%s: %w", topicFile, err)
	}
	if t.Name != filepath.Base(dir) {
		return t, fmt.Errorf("%s names topic %q but lives in %q", topicFile, t.Name, filepath.Base(dir))
	}
	if err := ValidPartitions(t.Partitions); err != nil {
		return t, fmt.Errorf("%s: %w", topicFile, err)
	}
	if t.Configs == nil {
		t.Configs = map[string]string{}
	}
	return t, nil
}

// Create implements Catalog.
func (c *FileCatalog) Create(t TopicInfo) error {
	if err := ValidTopicName(t.Name); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidTopic, err)
	}
	if err := ValidPartitions(t.Partitions); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidTopic, err)
	}
	t.Configs = maps.Clone(t.Configs)
	if t.Configs == nil {
		t.Configs = map[string]string{}
	}
	if t.Created.IsZero() {
		t.Created = time.Now().UTC()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.topics[t.Name]; ok {
		return fmt.Errorf("%w: %q", ErrTopicExists, t.Name)
	}
	tmp := filepath.Join(c.root, creatingPrefix+t.Name)
	os.RemoveAll(tmp)
	if err := c.writeNew(tmp, c.TopicDir(t.Name), t); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("meta: create topic %q: %w", t.Name, err)
	}
	c.topics[t.Name] = t
	return nil
}

func (c *FileCatalog) writeNew(tmp, final string, t TopicInfo) error {
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return err
	}
	if err := WriteFileSync(filepath.Join(tmp, topicFile), data, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	return syncDir(c.root)
}

// Delete implements Catalog. The topic's directory is renamed away first (a
// crash after that leaves a leftover that OpenFileCatalog removes), then
// removed; a failure to remove it is logged, not returned: the topic is gone.
func (c *FileCatalog) Delete(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.topics[name]; !ok {
		return fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	}
	gone := filepath.Join(c.root, fmt.Sprintf("%s%s-%d", deletingPrefix, name, time.Now().UnixNano()))
	if err := os.Rename(c.TopicDir(name), gone); err != nil {
		return fmt.Errorf("meta: delete topic %q: %w", name, err)
	}
	delete(c.topics, name)
	if err := syncDir(c.root); err != nil {
		c.log.Warn("fsync of the topics directory after a deletion", "topic", name, "err", err)
	}
	if err := os.RemoveAll(gone); err != nil {
		c.log.Warn("removing deleted topic data", "dir", gone, "err", err)
	}
	return nil
}

// SetConfigs implements Catalog.
func (c *FileCatalog) SetConfigs(name string, configs map[string]string) (TopicInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.topics[name]
	if !ok {
		return TopicInfo{}, fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	}
	t.Configs = maps.Clone(configs)
	if t.Configs == nil {
		t.Configs = map[string]string{}
	}
	data, err := json.MarshalIndent(t, "", "  ")
	if err == nil {
		err = WriteFileSync(filepath.Join(c.TopicDir(name), topicFile), data, 0o644)
	}
	if err != nil {
		return TopicInfo{}, fmt.Errorf("meta: set configs of topic %q: %w", name, err)
	}
	c.topics[name] = t
	return copyInfo(t), nil
}

// Get implements Catalog.
func (c *FileCatalog) Get(name string) (TopicInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.topics[name]
	return copyInfo(t), ok
}

// List implements Catalog.
func (c *FileCatalog) List() []TopicInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]TopicInfo, 0, len(c.topics))
	for _, name := range slices.Sorted(maps.Keys(c.topics)) {
		out = append(out, copyInfo(c.topics[name]))
	}
	return out
}

func copyInfo(t TopicInfo) TopicInfo {
	t.Configs = maps.Clone(t.Configs)
	return t
}

// WriteFileSync writes a file atomically: temp file created with perm,
// fsync, rename, fsync of the directory.
func WriteFileSync(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	os.Remove(tmp) // a leftover may have other permissions
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm)
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
