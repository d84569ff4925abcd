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
// DescribeTopic (the protocol's names). Values are decimal integers unless
// stated. Each maps onto one TopicConfig field.
const (
	ConfigRetentionBytes  = "retention.bytes"   // RetentionBytes: delete oldest segments beyond this many bytes per partition; -1 unlimited
	ConfigRetentionMs     = "retention.ms"      // RetentionAge: delete segments whose newest record is older; -1 unlimited
	ConfigSegmentBytes    = "segment.bytes"     // SegmentBytes: roll a segment at this size
	ConfigSegmentMs       = "segment.ms"        // SegmentMaxAge: roll a segment this old; -1 never
	ConfigFsync           = "fsync"             // Fsync: always | interval:<ms> | never
	ConfigMaxMessageBytes = "max.message.bytes" // MaxBatchBytes: largest batch accepted
)

// Topic config defaults: what a zero TopicConfig field becomes.
const (
	// DefaultSegmentBytes is smaller than Kafka's 1 GiB so retention is finer.
	DefaultSegmentBytes = 128 << 20
	// DefaultMaxBatchBytes, or SegmentBytes when that is smaller: a batch must
	// fit in one segment.
	DefaultMaxBatchBytes = 4 << 20
	// DefaultRetentionAge and DefaultSegmentMaxAge: 7 days.
	DefaultRetentionAge  = 7 * 24 * time.Hour
	DefaultSegmentMaxAge = 7 * 24 * time.Hour
)

// Bounds of topic config values.
const (
	minSegmentBytes  = 1 << 20
	maxSegmentBytes  = 1 << 30
	minMaxBatchBytes = 1 << 10
	maxMaxBatchBytes = 16 << 20
)

// FsyncPolicy is when a topic's appends are forced to stable storage (see
// docs/storage.md). The zero value is the default: always, since a single
// broker has no replicas to fall back on and group commit keeps the cost
// low with pipelined producers.
type FsyncPolicy struct {
	p   segment.FsyncPolicy
	set bool
}

// ParseFsyncPolicy parses "always", "never" or "interval:<ms>"; "" is the
// zero (default) policy.
func ParseFsyncPolicy(s string) (FsyncPolicy, error) {
	if s == "" {
		return FsyncPolicy{}, nil
	}
	p, err := segment.ParseFsyncPolicy(s)
	if err != nil {
		return FsyncPolicy{}, fmt.Errorf("node: %w", err)
	}
	return FsyncPolicy{p: p, set: true}, nil
}

// segment is the policy in force: the default for the zero value.
func (f FsyncPolicy) segment() segment.FsyncPolicy {
	if !f.set {
		return segment.FsyncPolicy{Mode: segment.FsyncAlways}
	}
	return f.p
}

// String is the policy as the fsync key takes it.
func (f FsyncPolicy) String() string { return f.segment().String() }

// TopicConfig is the per-topic configuration. The zero value of each field
// means its default.
type TopicConfig struct {
	// RetentionBytes per partition; -1 unlimited. Default -1.
	RetentionBytes int64
	// RetentionAge: segments whose newest record is older go; -1 unlimited.
	// Default DefaultRetentionAge.
	RetentionAge time.Duration
	// SegmentBytes: the size at which a segment rolls, 1 MiB to 1 GiB. Its
	// file is preallocated in steps up to this size. Default
	// DefaultSegmentBytes.
	SegmentBytes int64
	// SegmentMaxAge: roll age; -1 never. Default DefaultSegmentMaxAge.
	SegmentMaxAge time.Duration
	// Fsync policy. Default always.
	Fsync FsyncPolicy
	// MaxBatchBytes bounds one batch, 1 KiB to 16 MiB and at most
	// SegmentBytes. Default (0): the smaller of DefaultMaxBatchBytes and
	// SegmentBytes, so a topic with small segments needs no other change.
	MaxBatchBytes int32
}

// withDefaults fills zero fields with their defaults; MaxBatchBytes stays 0
// (it follows SegmentBytes, see resolved) unless set.
func (c TopicConfig) withDefaults() TopicConfig {
	if c.RetentionBytes == 0 {
		c.RetentionBytes = -1
	}
	if c.RetentionAge == 0 {
		c.RetentionAge = DefaultRetentionAge
	}
	if c.SegmentBytes == 0 {
		c.SegmentBytes = DefaultSegmentBytes
	}
	if c.SegmentMaxAge == 0 {
		c.SegmentMaxAge = DefaultSegmentMaxAge
	}
	return c
}

// resolved is c with every default applied, MaxBatchBytes included: the
// config a topic runs with.
func (c TopicConfig) resolved() TopicConfig {
	c = c.withDefaults()
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = int32(min(DefaultMaxBatchBytes, c.SegmentBytes))
	}
	return c
}

// Validate reports every invalid value at once (zero values take their
// defaults first).
func (c TopicConfig) Validate() error {
	explicitMax := c.MaxBatchBytes != 0
	c = c.resolved()
	var errs []error
	if c.RetentionBytes < -1 {
		errs = append(errs, fmt.Errorf("%s %d: -1 or positive", ConfigRetentionBytes, c.RetentionBytes))
	}
	if c.RetentionAge < -1 || (c.RetentionAge >= 0 && c.RetentionAge < time.Millisecond) {
		errs = append(errs, fmt.Errorf("%s %d: -1 or at least 1 ms", ConfigRetentionMs, c.RetentionAge.Milliseconds()))
	}
	if c.SegmentBytes < minSegmentBytes || c.SegmentBytes > maxSegmentBytes {
		errs = append(errs, fmt.Errorf("%s %d: between %d (1 MiB) and %d (1 GiB)", ConfigSegmentBytes, c.SegmentBytes, minSegmentBytes, maxSegmentBytes))
	}
	if c.SegmentMaxAge < -1 || (c.SegmentMaxAge >= 0 && c.SegmentMaxAge < time.Second) {
		errs = append(errs, fmt.Errorf("%s %d: -1 or at least 1000", ConfigSegmentMs, c.SegmentMaxAge.Milliseconds()))
	}
	switch {
	case c.MaxBatchBytes < minMaxBatchBytes || c.MaxBatchBytes > maxMaxBatchBytes:
		errs = append(errs, fmt.Errorf("%s %d: between %d and %d", ConfigMaxMessageBytes, c.MaxBatchBytes, minMaxBatchBytes, maxMaxBatchBytes))
	case explicitMax && int64(c.MaxBatchBytes) > c.SegmentBytes:
		errs = append(errs, fmt.Errorf("%s %d exceeds %s %d: a batch must fit in one segment; lower %s or raise %s (unset, %s follows %s up to %d)",
			ConfigMaxMessageBytes, c.MaxBatchBytes, ConfigSegmentBytes, c.SegmentBytes, ConfigMaxMessageBytes, ConfigSegmentBytes,
			ConfigMaxMessageBytes, ConfigSegmentBytes, DefaultMaxBatchBytes))
	}
	return errors.Join(errs...)
}

// apply returns the resolved config of a topic: c (the broker's topic
// defaults) with the given keys set. Unknown keys and bad values are all
// reported.
func (c TopicConfig) apply(kv map[string]string) (TopicConfig, error) {
	var errs []error
	num := func(k, v string) int64 {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not an integer", k, v))
		}
		return n
	}
	// unlimited reads a setting where -1 means "no limit": 0 and other
	// negative values would otherwise be taken silently for a default or
	// for -1.
	unlimited := func(k, v string) int64 {
		n := num(k, v)
		if n == 0 || n < -1 {
			errs = append(errs, fmt.Errorf("%s: %d: want a positive value, or -1 for no limit", k, n))
		}
		return n
	}
	dur := func(k, v string) time.Duration {
		n := unlimited(k, v)
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
			c.RetentionBytes = unlimited(k, v)
		case ConfigRetentionMs:
			c.RetentionAge = dur(k, v)
		case ConfigSegmentBytes:
			c.SegmentBytes = num(k, v)
		case ConfigSegmentMs:
			c.SegmentMaxAge = dur(k, v)
		case ConfigFsync:
			p, err := segment.ParseFsyncPolicy(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", ConfigFsync, err))
			}
			c.Fsync = FsyncPolicy{p: p, set: true}
		case ConfigMaxMessageBytes:
			n := num(k, v)
			if n > math.MaxInt32 || n < 0 {
				n = -1
			}
			c.MaxBatchBytes = int32(n)
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
	return c.resolved(), errors.Join(errs...)
}

// Map renders the config with every key, as DescribeTopic shows it.
func (c TopicConfig) Map() map[string]string {
	c = c.resolved()
	ms := func(d time.Duration) string {
		if d < 0 {
			return "-1"
		}
		return strconv.FormatInt(d.Milliseconds(), 10)
	}
	return map[string]string{
		ConfigRetentionBytes:  strconv.FormatInt(c.RetentionBytes, 10),
		ConfigRetentionMs:     ms(c.RetentionAge),
		ConfigSegmentBytes:    strconv.FormatInt(c.SegmentBytes, 10),
		ConfigSegmentMs:       ms(c.SegmentMaxAge),
		ConfigFsync:           c.Fsync.String(),
		ConfigMaxMessageBytes: strconv.FormatInt(int64(c.MaxBatchBytes), 10),
	}
}

// segmentOptions maps a validated topic config onto its partitions' log
// options. Negative ages mean never / unlimited in both.
func (c TopicConfig) segmentOptions() segment.Options {
	c = c.resolved()
	return segment.Options{
		SegmentBytes:   c.SegmentBytes,
		SegmentMaxAge:  c.SegmentMaxAge,
		RetentionBytes: c.RetentionBytes,
		RetentionAge:   c.RetentionAge,
		Fsync:          c.Fsync.segment(),
		MaxBatchBytes:  int(c.MaxBatchBytes),
	}
}
