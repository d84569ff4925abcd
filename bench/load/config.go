package load

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rafka/rafka/bench"
	"github.com/rafka/rafka/client"
	"github.com/rafka/rafka/wire"
)

// Workload names.
const (
	WorkloadProduce = "produce"
	WorkloadConsume = "consume"
	WorkloadE2E     = "e2e"
)

// Consume start positions.
const (
	FromEarliest = "earliest"
	FromLatest   = "latest"
)

// Config describes one workload run. Zero fields take the defaults stated.
type Config struct {
	Workload string // produce | consume | e2e

	// Topic is created for the run (and deleted after it when the broker is
	// not a throwaway child). Default: rafka-bench-<random>.
	Topic      string
	Partitions int32 // default 1
	// ReplicationFactor is the replicas of each partition of the topic.
	// Default 1, so that figures stay comparable with single-broker runs
	// (the broker's own default is larger).
	ReplicationFactor int32

	RecordSize int // value bytes; default 1024
	// Count bounds the records produced; Duration bounds the producing time.
	// At least one must be set; with both, the first reached ends the run.
	Count    int64
	Duration time.Duration

	Producers int // default 1
	Consumers int // default 1 (consume and e2e)

	Acks        string        // none | leader | all; default leader
	Fsync       string        // topic fsync policy: always | interval:<ms> | never; "" broker default
	Linger      time.Duration // producer linger; 0: none (send as soon as in-flight limits allow)
	BatchBytes  int           // producer max batch bytes; default the client's (1 MiB)
	MaxInFlight int           // produce requests in flight per partition; default the client's
	Compression string        // none | lz4; default none
	// Compressibility of the generated values in [0, 1]: the fraction lz4
	// can remove. Default 0 (random bytes).
	Compressibility float64
	// Keys is the number of distinct keys cycled through; 0 sends unkeyed
	// records (spread by the producer's partitioner).
	Keys int
	// Rate is the target total produce rate in records/s; 0 is as fast as
	// possible.
	Rate float64

	From        string // consume: earliest (default) | latest
	Cold        bool   // consume earliest: restart the local broker between fill and read
	CreditBytes int64  // consumer flow-control window; default the client's

	// DrainTimeout bounds how long consumers may lag behind once producers
	// are done (e2e, consume latest), and the final flush. Default 60s.
	DrainTimeout time.Duration
	// MaxRunTime bounds a whole run whatever the other limits. Default: 10
	// minutes more than Duration (or 10 minutes).
	MaxRunTime time.Duration

	Seed uint64 // payload seed; runs with the same seed send the same bytes
}

// maxReplicationFactor is the most replicas a partition may have (the
// broker's limit).
const maxReplicationFactor = 16

// WithDefaults fills the zero fields.
func (c Config) WithDefaults() Config {
	if c.Topic == "" {
		c.Topic = fmt.Sprintf("rafka-bench-%d", time.Now().UnixNano()%1e9)
	}
	if c.Partitions == 0 {
		c.Partitions = 1
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = 1
	}
	if c.RecordSize == 0 {
		c.RecordSize = 1024
	}
	if c.Producers == 0 {
		c.Producers = 1
	}
	if c.Consumers == 0 {
		c.Consumers = 1
	}
	if c.Acks == "" {
		c.Acks = "leader"
	}
	if c.Compression == "" {
		c.Compression = "none"
	}
	if c.From == "" {
		c.From = FromEarliest
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 60 * time.Second
	}
	if c.MaxRunTime == 0 {
		c.MaxRunTime = c.Duration + 10*time.Minute
	}
	return c
}

// Validate reports every problem of a defaulted Config at once.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	switch c.Workload {
	case WorkloadProduce, WorkloadConsume, WorkloadE2E:
	default:
		add("workload %q: want produce, consume or e2e", c.Workload)
	}
	if c.Partitions < 1 {
		add("partitions %d: want >= 1", c.Partitions)
	}
	if c.ReplicationFactor < 1 || c.ReplicationFactor > maxReplicationFactor {
		add("replication factor %d: want 1 to %d", c.ReplicationFactor, maxReplicationFactor)
	}
	if c.RecordSize < 0 || c.RecordSize > 4<<20 {
		add("record size %d: want 0 to 4 MiB", c.RecordSize)
	}
	if c.Count < 0 || c.Duration < 0 {
		add("count %d and duration %v must not be negative", c.Count, c.Duration)
	}
	if c.Count == 0 && c.Duration == 0 {
		add("give a record count or a duration (or both)")
	}
	if c.Producers < 1 || c.Producers > 1024 {
		add("producers %d: want 1 to 1024", c.Producers)
	}
	if c.Consumers < 1 || c.Consumers > 1024 {
		add("consumers %d: want 1 to 1024", c.Consumers)
	}
	if c.Workload != WorkloadProduce && int32(min(c.Consumers, 1<<30)) > c.Partitions {
		add("consumers %d > partitions %d: a consumer would have nothing to read", c.Consumers, c.Partitions)
	}
	if _, err := ParseAcks(c.Acks); err != nil {
		errs = append(errs, err)
	}
	if c.Fsync != "" && c.Fsync != "always" && c.Fsync != "never" && !strings.HasPrefix(c.Fsync, "interval:") {
		add("fsync %q: want always, interval:<ms> or never", c.Fsync)
	}
	if _, err := ParseCompression(c.Compression); err != nil {
		errs = append(errs, err)
	}
	if c.Compressibility < 0 || c.Compressibility > 1 {
		add("compressibility %v: want 0 to 1", c.Compressibility)
	}
	if c.Keys < 0 {
		add("keys %d: want >= 0", c.Keys)
	}
	if c.Rate < 0 {
		add("rate %v: want >= 0", c.Rate)
	}
	if c.Linger < 0 {
		add("linger %v must not be negative", c.Linger)
	}
	if c.BatchBytes < 0 || c.MaxInFlight < 0 || c.CreditBytes < 0 {
		add("batch bytes, max in flight and credit bytes must not be negative")
	}
	if c.From != FromEarliest && c.From != FromLatest {
		add("from %q: want earliest or latest", c.From)
	}
	if c.Workload == WorkloadConsume && c.From == FromEarliest && c.Acks == "none" {
		add("consume from earliest needs acknowledged records to know how many to read: acks leader or all")
	}
	if c.Cold && (c.Workload != WorkloadConsume || c.From != FromEarliest) {
		add("cold applies to consume from earliest only")
	}
	stamped := c.Workload == WorkloadE2E || (c.Workload == WorkloadConsume && c.From == FromLatest)
	if stamped && c.RecordSize < bench.StampSize {
		add("record size %d: end-to-end latency needs at least %d bytes for the timestamp", c.RecordSize, bench.StampSize)
	}
	if c.DrainTimeout < 0 || c.MaxRunTime < 0 {
		add("drain timeout and max run time must not be negative")
	}
	return errors.Join(errs...)
}

// stamped reports whether values carry the producer's clock.
func (c Config) stamped() bool {
	return c.Workload == WorkloadE2E || (c.Workload == WorkloadConsume && c.From == FromLatest)
}

// ParseAcks maps none, leader and all to the client's levels.
func ParseAcks(s string) (client.Acks, error) {
	switch s {
	case "none":
		return client.AcksNone, nil
	case "leader", "1":
		return client.AcksLeader, nil
	case "all", "-1":
		return client.AcksAll, nil
	}
	return 0, fmt.Errorf("acks %q: want none, leader or all", s)
}

// ParseCompression maps none and lz4 to the client's codecs.
func ParseCompression(s string) (wire.Codec, error) {
	switch s {
	case "none":
		return client.CompressionNone, nil
	case "lz4":
		return client.CompressionLZ4, nil
	}
	return 0, fmt.Errorf("compression %q: want none or lz4", s)
}

// describe is the Config as shown in results.
func (c Config) describe() map[string]any {
	m := map[string]any{
		"record_size": c.RecordSize, "partitions": c.Partitions, "producers": c.Producers,
		"acks": c.Acks, "compression": c.Compression, "topic": c.Topic,
	}
	if c.ReplicationFactor != 1 {
		m["replication_factor"] = c.ReplicationFactor
	}
	if c.Workload != WorkloadProduce {
		m["consumers"] = c.Consumers
	}
	if c.Workload == WorkloadConsume {
		m["from"] = c.From
		if c.Cold {
			m["cold"] = true
		}
	}
	if c.Fsync != "" {
		m["fsync"] = c.Fsync
	}
	m["linger"] = c.Linger.String()
	if c.BatchBytes != 0 {
		m["batch_bytes"] = c.BatchBytes
	}
	if c.Compressibility != 0 {
		m["compressibility"] = c.Compressibility
	}
	if c.Keys != 0 {
		m["keys"] = c.Keys
	}
	if c.Rate != 0 {
		m["rate"] = c.Rate
	}
	if c.Count != 0 {
		m["count"] = c.Count
	}
	if c.Duration != 0 {
		m["duration"] = c.Duration.String()
	}
	return m
}
