package node

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/rafka/rafka/segment"
)

// Topic config keys, as given to CreateTopic and AlterTopicConfig and shown by
// DescribeTopic. Values are decimal integers unless stated.
const (
	ConfigRetentionBytes  = "retention.bytes"   // delete oldest segments beyond this many bytes per partition; -1 unlimited
	ConfigRetentionMs     = "retention.ms"      // delete segments whose newest record is older; -1 unlimited
	ConfigSegmentBytes    = "segment.bytes"     // roll a segment at this size (also its preallocation)
	ConfigSegmentMs       = "segment.ms"        // roll a segment this old; -1 never
	ConfigFsync           = "fsync"             // always | interval:<ms> | never
	ConfigMaxMessageBytes = "max.message.bytes" // largest batch accepted
)

// TopicConfig is the per-topic configuration.
type TopicConfig struct {
	// RetentionBytes per partition; -1 unlimited. Default -1.
	RetentionBytes int64
	// Retention by age; -1 unlimited. Default 7 days.
	Retention time.Duration
	// SegmentBytes: roll size and preallocation. Default 128 MiB: smaller
	// than Kafka's 1 GiB so retention is finer and preallocation cheaper.
	SegmentBytes int64
	// SegmentAge: roll age; -1 never. Default 7 days.
	SegmentAge time.Duration
	// Fsync policy: "always", "interval:<ms>" or "never". Default always: a
	// single broker has no replicas to fall back on, and group commit keeps
	// the cost low with pipelined producers.
	Fsync string
	// MaxMessageBytes bounds one batch. Default 4 MiB.
	MaxMessageBytes int32
}

func (c TopicConfig) withDefaults() TopicConfig {
	if c.RetentionBytes == 0 {
		c.RetentionBytes = -1
	}
	if c.Retention == 0 {
		c.Retention = 7 * 24 * time.Hour
	}
	if c.SegmentBytes == 0 {
		c.SegmentBytes = 128 << 20
	}
	if c.SegmentAge == 0 {
		c.SegmentAge = 7 * 24 * time.Hour
	}
	if c.Fsync == "" {
		c.Fsync = "always"
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = 4 << 20
	}
	return c
}

// Validate reports every invalid value at once.
func (c TopicConfig) Validate() error {
	var errs []error
	if c.RetentionBytes < -1 {
		errs = append(errs, fmt.Errorf("%s %d: -1 or positive", ConfigRetentionBytes, c.RetentionBytes))
	}
	if c.Retention < -1 || (c.Retention >= 0 && c.Retention < time.Millisecond) {
		errs = append(errs, fmt.Errorf("%s %d: -1 or at least 1 ms", ConfigRetentionMs, c.Retention.Milliseconds()))
	}
	if c.SegmentBytes < 1<<20 || c.SegmentBytes > 1<<30 {
		errs = append(errs, fmt.Errorf("%s %d: between 1 MiB and 1 GiB", ConfigSegmentBytes, c.SegmentBytes))
	}
	if c.SegmentAge < -1 || (c.SegmentAge >= 0 && c.SegmentAge < time.Second) {
		errs = append(errs, fmt.Errorf("%s %d: -1 or at least 1000", ConfigSegmentMs, c.SegmentAge.Milliseconds()))
	}
	if _, err := segment.ParseFsyncPolicy(c.Fsync); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", ConfigFsync, err))
	}
	if c.MaxMessageBytes < 1024 || int64(c.MaxMessageBytes) > 16<<20 {
		errs = append(errs, fmt.Errorf("%s %d: between 1024 and 16777216", ConfigMaxMessageBytes, c.MaxMessageBytes))
	} else if int64(c.MaxMessageBytes) > c.SegmentBytes {
		errs = append(errs, fmt.Errorf("%s %d exceeds %s %d", ConfigMaxMessageBytes, c.MaxMessageBytes, ConfigSegmentBytes, c.SegmentBytes))
	}
	return errors.Join(errs...)
}

// apply returns c with the given keys set; unknown keys and bad values are
// all reported.
func (c TopicConfig) apply(kv map[string]string) (TopicConfig, error) {
	var errs []error
	num := func(k, v string) int64 {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not an integer", k, v))
		}
		return n
	}
	dur := func(k, v string) time.Duration {
		n := num(k, v)
		switch {
		case n < 0:
			return -1
		case n > math.MaxInt64/int64(time.Millisecond):
			errs = append(errs, fmt.Errorf("%s: %d ms is too large", k, n))
			return -1
		}
		return time.Duration(n) * time.Millisecond
	}
	for _, k := range slices.Sorted(maps.Keys(kv)) {
		v := kv[k]
		switch k {
		case ConfigRetentionBytes:
			c.RetentionBytes = num(k, v)
		case ConfigRetentionMs:
			c.Retention = dur(k, v)
		case ConfigSegmentBytes:
			c.SegmentBytes = num(k, v)
		case ConfigSegmentMs:
			c.SegmentAge = dur(k, v)
		case ConfigFsync:
			c.Fsync = v
			if p, err := segment.ParseFsyncPolicy(v); err == nil {
				c.Fsync = p.String() // canonical form
			}
		case ConfigMaxMessageBytes:
			n := num(k, v)
			if n > 1<<31-1 || n < 0 {
				n = -1
			}
			c.MaxMessageBytes = int32(n)
		default:
			errs = append(errs, fmt.Errorf("unknown config %q (known: %s, %s, %s, %s, %s, %s)", k,
				ConfigRetentionBytes, ConfigRetentionMs, ConfigSegmentBytes, ConfigSegmentMs, ConfigFsync, ConfigMaxMessageBytes))
		}
	}
	if len(errs) == 0 {
		if err := c.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return c, errors.Join(errs...)
}

// Map renders the config with every key, as DescribeTopic shows it and as it
// is persisted.
func (c TopicConfig) Map() map[string]string {
	ms := func(d time.Duration) string {
		if d < 0 {
			return "-1"
		}
		return strconv.FormatInt(d.Milliseconds(), 10)
	}
	return map[string]string{
		ConfigRetentionBytes:  strconv.FormatInt(c.RetentionBytes, 10),
		ConfigRetentionMs:     ms(c.Retention),
		ConfigSegmentBytes:    strconv.FormatInt(c.SegmentBytes, 10),
		ConfigSegmentMs:       ms(c.SegmentAge),
		ConfigFsync:           c.Fsync,
		ConfigMaxMessageBytes: strconv.FormatInt(int64(c.MaxMessageBytes), 10),
	}
}

// segmentOptions maps the topic config onto the partition log's options.
func (c TopicConfig) segmentOptions() segment.Options {
	fsync, err := segment.ParseFsyncPolicy(c.Fsync)
	if err != nil {
		panic("BUG: unvalidated fsync policy " + c.Fsync)
	}
	o := segment.Options{
		SegmentBytes:   c.SegmentBytes,
		RetentionBytes: c.RetentionBytes,
		Fsync:          fsync,
		MaxBatchBytes:  int(c.MaxMessageBytes),
	}
	o.SegmentMaxAge = c.SegmentAge // negative: never roll by age
	if c.Retention > 0 {
		o.RetentionAge = c.Retention
	} else {
		o.RetentionAge = -1
	}
	return o
}
