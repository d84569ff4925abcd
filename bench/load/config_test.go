package load

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	ok := Config{Workload: WorkloadProduce, Count: 10}.WithDefaults()
	if err := ok.Validate(); err != nil {
		t.Fatalf("defaults rejected: %v", err)
	}
	if ok.RecordSize != 1024 || ok.Partitions != 1 || ok.Acks != "leader" || ok.From != FromEarliest || !strings.HasPrefix(ok.Topic, "rafka-bench-") {
		t.Fatalf("defaults %+v", ok)
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want []string // every problem is reported, not only the first
	}{
		{"workload", func(c *Config) { c.Workload = "fetch" }, []string{`workload "fetch"`}},
		{"no bound", func(c *Config) { c.Count, c.Duration = 0, 0 }, []string{"count or a duration"}},
		{"several", func(c *Config) { c.Acks, c.Compression, c.Compressibility = "two", "zstd", 1.5 },
			[]string{`acks "two"`, `compression "zstd"`, "compressibility 1.5"}},
		{"fsync", func(c *Config) { c.Fsync = "sometimes" }, []string{`fsync "sometimes"`}},
		{"consumers", func(c *Config) { c.Workload, c.Consumers, c.Partitions = WorkloadE2E, 3, 2 }, []string{"consumers 3 > partitions 2"}},
		{"stamp", func(c *Config) { c.Workload, c.RecordSize = WorkloadE2E, 4 }, []string{"at least 8 bytes"}},
		{"tail stamp", func(c *Config) { c.Workload, c.From, c.RecordSize = WorkloadConsume, FromLatest, 7 }, []string{"at least 8 bytes"}},
		{"cold", func(c *Config) { c.Cold = true }, []string{"cold applies"}},
		{"acks none earliest", func(c *Config) { c.Workload, c.Acks = WorkloadConsume, "none" }, []string{"acknowledged records"}},
		{"negatives", func(c *Config) { c.Rate, c.Keys, c.Linger, c.Producers = -1, -2, -time.Millisecond, 0 },
			[]string{"rate -1", "keys -2", "linger -1ms", "producers 0"}},
		{"from", func(c *Config) { c.From = "middle" }, []string{`from "middle"`}},
	} {
		c := ok
		tc.edit(&c)
		err := c.Validate()
		if err == nil {
			t.Errorf("%s: accepted %+v", tc.name, c)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", tc.name, err, w)
			}
		}
	}
	// A produce run does not care about consumers.
	c := ok
	c.Consumers, c.Partitions = 4, 1
	if err := c.Validate(); err != nil {
		t.Errorf("produce with more consumers than partitions: %v", err)
	}
}

func TestParseAcksAndCompression(t *testing.T) {
	for _, s := range []string{"none", "leader", "all", "1", "-1"} {
		if _, err := ParseAcks(s); err != nil {
			t.Errorf("acks %q: %v", s, err)
		}
	}
	if _, err := ParseAcks("2"); err == nil {
		t.Error("acks 2 accepted")
	}
	for _, s := range []string{"none", "lz4"} {
		if _, err := ParseCompression(s); err != nil {
			t.Errorf("compression %q: %v", s, err)
		}
	}
	if _, err := ParseCompression("gzip"); err == nil {
		t.Error("gzip accepted")
	}
}
