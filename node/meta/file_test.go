package meta

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestFileCatalog(t *testing.T) {
	root := t.TempDir()
	c, err := OpenFileCatalog(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Create(TopicInfo{Name: "b", Partitions: 2, Configs: map[string]string{"fsync": "never"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(TopicInfo{Name: "a", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(TopicInfo{Name: "a", Partitions: 3}); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("second create: %v", err)
	}
	for _, bad := range []TopicInfo{{Name: "x/y", Partitions: 1}, {Name: "..", Partitions: 1}, {Name: "ok", Partitions: 0}, {Name: "ok", Partitions: MaxPartitions + 1}} {
		if err := c.Create(bad); !errors.Is(err, ErrInvalidTopic) {
			t.Errorf("create %+v: %v", bad, err)
		}
	}
	// Returned values are copies.
	got, ok := c.Get("b")
	if !ok || got.Partitions != 2 || got.Configs["fsync"] != "never" || got.Created.IsZero() {
		t.Fatalf("get: %+v %v", got, ok)
	}
	got.Configs["fsync"] = "always"
	if again, _ := c.Get("b"); again.Configs["fsync"] != "never" {
		t.Fatal("a caller changed the catalog through a returned map")
	}
	if _, err := c.SetConfigs("b", map[string]string{"retention.ms": "1000"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetConfigs("nope", nil); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("set configs of a missing topic: %v", err)
	}
	// A partition directory inside the topic goes with it.
	if err := os.MkdirAll(filepath.Join(c.TopicDir("a"), "0"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete("a"); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete("a"); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := os.Stat(c.TopicDir("a")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("deleted topic's directory: %v", err)
	}

	// Reopened, with leftovers of interrupted operations and a stray file.
	for _, d := range []string{creatingPrefix + "c", deletingPrefix + "d-1"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "stray"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err = OpenFileCatalog(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	list := c.List()
	if len(list) != 1 || list[0].Name != "b" || list[0].Configs["retention.ms"] != "1000" || list[0].Configs["fsync"] != "" {
		t.Fatalf("reopened: %+v", list)
	}
	for _, d := range []string{creatingPrefix + "c", deletingPrefix + "d-1"} {
		if _, err := os.Stat(filepath.Join(root, d)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("leftover %s not removed: %v", d, err)
		}
	}
}

func TestFileCatalogRefusesBadTopicFile(t *testing.T) {
	for name, content := range map[string]string{
		"garbage":    "{",
		"other name": `{"name":"other","partitions":1}`,
		"partitions": `{"name":"t","partitions":0}`,
	} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			if err := os.MkdirAll(filepath.Join(root, "t"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, "t", topicFile), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := OpenFileCatalog(root, nil); err == nil {
				t.Fatal("opened a catalog with a bad topic.json")
			}
		})
	}
}

// FuzzReadTopic feeds arbitrary topic.json contents to the parser: it must
// return a valid topic or an error, never panic.
func FuzzReadTopic(f *testing.F) {
	f.Add([]byte(`{"name":"t","partitions":3,"configs":{"fsync":"never"},"created":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"name":"t","partitions":-1}`))
	f.Add([]byte(`null`))
	dir := filepath.Join(f.TempDir(), "t")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, topicFile), data, 0o644); err != nil {
			t.Fatal(err)
		}
		ti, err := readTopic(dir)
		if err != nil {
			return
		}
		if ti.Name != "t" || ValidPartitions(ti.Partitions) != nil || ti.Configs == nil {
			t.Fatalf("accepted %+v", ti)
		}
	})
}
