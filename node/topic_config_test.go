package node

import (
	"strings"
	"testing"
	"time"

	"github.com/rafka/rafka/segment"
)

func TestTopicConfigDefaultsAndOverrides(t *testing.T) {
	defaults := TopicConfig{}.withDefaults()
	for _, c := range []struct {
		name    string
		base    TopicConfig
		kv      map[string]string
		want    map[string]string // keys checked in Map()
		wantErr string
	}{
		{name: "defaults", base: defaults, want: map[string]string{
			ConfigRetentionBytes: "-1", ConfigRetentionMs: "604800000", ConfigSegmentBytes: "134217728",
			ConfigSegmentMs: "604800000", ConfigFsync: "always", ConfigMaxMessageBytes: "4194304"}},
		{name: "max follows small segments", base: defaults, kv: map[string]string{ConfigSegmentBytes: "1048576"},
			want: map[string]string{ConfigMaxMessageBytes: "1048576"}},
		{name: "max within the segment", base: defaults, kv: map[string]string{ConfigSegmentBytes: "2097152", ConfigMaxMessageBytes: "1048576"},
			want: map[string]string{ConfigMaxMessageBytes: "1048576"}},
		{name: "explicit max above the segment", base: defaults, kv: map[string]string{ConfigSegmentBytes: "1048576", ConfigMaxMessageBytes: "2097152"},
			wantErr: "must fit in one segment"},
		{name: "broker default max above a topic's segment", base: TopicConfig{MaxBatchBytes: 4 << 20}.withDefaults(),
			kv: map[string]string{ConfigSegmentBytes: "1048576"}, wantErr: "must fit in one segment"},
		{name: "fsync canonical", base: defaults, kv: map[string]string{ConfigFsync: "interval:0100"},
			want: map[string]string{ConfigFsync: "interval:100"}},
		{name: "fsync bad", base: defaults, kv: map[string]string{ConfigFsync: "sometimes"}, wantErr: "fsync"},
		{name: "unlimited retention", base: defaults, kv: map[string]string{ConfigRetentionMs: "-1", ConfigSegmentMs: "-1"},
			want: map[string]string{ConfigRetentionMs: "-1", ConfigSegmentMs: "-1"}},
		{name: "zero retention is not a default", base: defaults, kv: map[string]string{ConfigRetentionMs: "0"},
			wantErr: "retention.ms: 0: want a positive value, or -1 for no limit"},
		{name: "negative size is not unlimited", base: defaults, kv: map[string]string{ConfigRetentionBytes: "-5"},
			wantErr: "retention.bytes: -5"},
		{name: "every problem at once", base: defaults, kv: map[string]string{ConfigSegmentBytes: "5", ConfigRetentionBytes: "-7", "bogus": "1"},
			wantErr: "unknown config \"bogus\""},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := c.base.apply(c.kv)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			m := cfg.Map()
			for k, v := range c.want {
				if m[k] != v {
					t.Errorf("%s = %q, want %q", k, m[k], v)
				}
			}
			// The effective config maps onto log options without re-parsing.
			o := cfg.segmentOptions()
			if o.SegmentBytes != cfg.SegmentBytes || int32(o.MaxBatchBytes) != cfg.MaxBatchBytes || o.Fsync.String() != m[ConfigFsync] {
				t.Errorf("segment options %+v from %+v", o, cfg)
			}
		})
	}
}

func TestParseFsyncPolicy(t *testing.T) {
	for s, want := range map[string]segment.FsyncPolicy{
		"":            {Mode: segment.FsyncAlways}, // the default
		"always":      {Mode: segment.FsyncAlways},
		"never":       {Mode: segment.FsyncNever},
		"interval:50": {Mode: segment.FsyncInterval, Interval: 50 * time.Millisecond},
	} {
		p, err := ParseFsyncPolicy(s)
		if err != nil || p.segment() != want {
			t.Errorf("ParseFsyncPolicy(%q) = %v, %v; want %v", s, p, err, want)
		}
	}
	if _, err := ParseFsyncPolicy("interval:0"); err == nil {
		t.Error("interval:0 accepted")
	}
	// The zero value is the default, and a set "never" is not mistaken for it.
	never, _ := ParseFsyncPolicy("never")
	if (TopicConfig{Fsync: never}).segmentOptions().Fsync.Mode != segment.FsyncNever {
		t.Error("fsync never lost")
	}
	if (TopicConfig{}).segmentOptions().Fsync.Mode != segment.FsyncAlways {
		t.Error("default fsync is not always")
	}
}

func TestDefaultConfigValidates(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	if got := DefaultConfig().HotstoreBytes; got != DefaultHotstoreBytes {
		t.Fatalf("default hotstore bytes %d", got)
	}
}
