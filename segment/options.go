package segment

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/rafka/rafka/wire"
)

// Defaults applied by Open for zero fields of Options.
const (
	DefaultSegmentBytes       = 1 << 30
	DefaultSegmentMaxAge      = 7 * 24 * time.Hour
	DefaultRetentionAge       = 7 * 24 * time.Hour
	DefaultIndexIntervalBytes = 4096

	// maxSegmentBytes keeps file positions within the uint32 of an index
	// entry: a segment never grows past 2 GiB plus one append.
	maxSegmentBytes = 1 << 31
	// maxAppendBytes bounds one Append call for the same reason.
	maxAppendBytes = 1 << 31
)

// Options configures a Log. The zero value is usable: Open fills defaults.
type Options struct {
	// SegmentBytes is the size at which the active segment rolls: an append
	// that would take it past this goes to a new segment. A segment file is
	// preallocated in steps up to this size: 1 MiB first, doubling as it
	// fills. Default 1 GiB, at most 2 GiB.
	// Smaller segments let retention free space in finer steps; each costs
	// three files and mappings.
	SegmentBytes int64
	// SegmentMaxAge rolls the active segment when its first batch is older
	// than this at the time of an append (age counts from when the first batch
	// was appended; after a restart, from the first batch's timestamp). 0
	// never rolls by age; negative is taken as 0. Default 7 days.
	SegmentMaxAge time.Duration
	// RetentionBytes: EnforceRetention deletes the oldest whole segments while
	// the log holds more than this many bytes. <= 0 is unlimited (default).
	RetentionBytes int64
	// RetentionAge: EnforceRetention deletes the oldest whole segments whose
	// newest batch (largest MaxTimestamp) is older than this. 0 means the
	// default of 7 days; negative is unlimited.
	RetentionAge time.Duration
	// InitialOffset is the base offset of the first segment when Open finds
	// no segment in the directory (a new log, or one restarted empty at a
	// replicated position). Default 0; ignored when segments exist.
	InitialOffset int64
	// Fsync is the durability policy; see FsyncMode. Default never: durability
	// comes from replication, as in Kafka; always costs one fsync per
	// group-commit round.
	Fsync FsyncPolicy
	// IndexIntervalBytes is the spacing of offset and time index entries.
	// Smaller means faster lookups and larger index files (20 bytes an entry).
	// Default 4096.
	IndexIntervalBytes int
	// MaxBatchBytes bounds each batch given to Append. Default
	// wire.DefaultMaxBatchSize.
	MaxBatchBytes int
	// FS is the file layer. nil uses the operating system. Fixed at Open.
	FS FS
	// Logger receives recovery and fsync-failure reports. nil discards.
	Logger *slog.Logger
	// Now is the clock for roll and retention ages. nil is time.Now.
	Now func() time.Time
	// OnSync, if not nil, is called with the duration of every fsync of a
	// segment's .log file that an open Log makes: group-commit and interval
	// rounds, Sync, the fsync of a rolled segment (inline under always, in the
	// background otherwise) and Close; failed fsyncs included. It runs on the
	// goroutine that made the fsync, which may be the one acknowledging
	// FsyncAlways appenders, so it must be cheap and must not block (a
	// histogram update). It may be called concurrently. Default nil.
	OnSync func(d time.Duration)
	// OnRoll, if not nil, is called (under the append lock: keep it to a
	// counter update) each time the active segment rolls. Default nil.
	OnRoll func()
	// OnRetention, if not nil, is called after EnforceRetention deleted
	// segments, with how many and their bytes. Default nil.
	OnRetention func(segments int, bytes int64)
}

// withDefaults returns o with zero fields replaced by defaults.
func (o Options) withDefaults() Options {
	if o.SegmentBytes == 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	if o.SegmentMaxAge == 0 {
		o.SegmentMaxAge = DefaultSegmentMaxAge
	}
	if o.SegmentMaxAge < 0 {
		o.SegmentMaxAge = 0
	}
	if o.RetentionAge == 0 {
		o.RetentionAge = DefaultRetentionAge
	}
	if o.IndexIntervalBytes == 0 {
		o.IndexIntervalBytes = DefaultIndexIntervalBytes
	}
	if o.MaxBatchBytes == 0 {
		o.MaxBatchBytes = wire.DefaultMaxBatchSize
	}
	if o.FS == nil {
		o.FS = OSFS{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// validate reports every problem of a defaulted Options at once.
func (o Options) validate() error {
	var errs []error
	if o.SegmentBytes < wire.BatchHeaderSize || o.SegmentBytes > maxSegmentBytes {
		errs = append(errs, fmt.Errorf("SegmentBytes %d outside [%d, %d]", o.SegmentBytes, wire.BatchHeaderSize, maxSegmentBytes))
	}
	if o.InitialOffset < 0 {
		errs = append(errs, fmt.Errorf("InitialOffset %d is negative", o.InitialOffset))
	}
	if o.IndexIntervalBytes < 0 {
		errs = append(errs, fmt.Errorf("IndexIntervalBytes %d is negative", o.IndexIntervalBytes))
	}
	if o.MaxBatchBytes < wire.BatchHeaderSize || o.MaxBatchBytes > maxAppendBytes-1 {
		errs = append(errs, fmt.Errorf("MaxBatchBytes %d outside [%d, %d]", o.MaxBatchBytes, wire.BatchHeaderSize, maxAppendBytes-1))
	}
	if err := o.Fsync.validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("segment: invalid options: %w", errors.Join(errs...))
	}
	return nil
}

// FsyncMode selects when appended data is forced to stable storage.
type FsyncMode int

const (
	// FsyncNever leaves flushing to the kernel (typically within 30 s). A
	// machine crash can lose acknowledged appends; a process crash cannot.
	// Durability comes from replication. Fastest.
	FsyncNever FsyncMode = iota
	// FsyncInterval fsyncs from a background goroutine every Interval when
	// there is new data. A machine crash loses at most about Interval of
	// appends. WaitDurable does not wait.
	FsyncInterval
	// FsyncAlways makes WaitDurable (and AppendSync) return only once the data
	// is fsynced. Concurrent appenders share one fsync per round (group
	// commit), so the cost is one fsync per round, not per batch.
	FsyncAlways
)

// FsyncPolicy is a FsyncMode and, for FsyncInterval, its period.
type FsyncPolicy struct {
	Mode     FsyncMode
	Interval time.Duration // FsyncInterval only; whole milliseconds, >= 1 ms
}

// ParseFsyncPolicy parses "always", "never" or "interval:<ms>".
func ParseFsyncPolicy(s string) (FsyncPolicy, error) {
	switch s {
	case "always":
		return FsyncPolicy{Mode: FsyncAlways}, nil
	case "never":
		return FsyncPolicy{Mode: FsyncNever}, nil
	}
	if ms, ok := strings.CutPrefix(s, "interval:"); ok {
		n, err := strconv.ParseInt(ms, 10, 64)
		if err != nil || n < 1 || n > int64(time.Hour/time.Millisecond) {
			return FsyncPolicy{}, fmt.Errorf("segment: fsync policy %q: interval must be 1..3600000 ms", s)
		}
		return FsyncPolicy{Mode: FsyncInterval, Interval: time.Duration(n) * time.Millisecond}, nil
	}
	return FsyncPolicy{}, fmt.Errorf("segment: fsync policy %q: want always, never or interval:<ms>", s)
}

// String formats p so that ParseFsyncPolicy(p.String()) == p.
func (p FsyncPolicy) String() string {
	switch p.Mode {
	case FsyncAlways:
		return "always"
	case FsyncNever:
		return "never"
	case FsyncInterval:
		return "interval:" + strconv.FormatInt(p.Interval.Milliseconds(), 10)
	}
	return fmt.Sprintf("fsync(%d)", int(p.Mode))
}

func (p FsyncPolicy) validate() error {
	switch p.Mode {
	case FsyncAlways, FsyncNever:
		return nil
	case FsyncInterval:
		if p.Interval < time.Millisecond || p.Interval%time.Millisecond != 0 {
			return fmt.Errorf("fsync interval %v: want whole milliseconds >= 1ms", p.Interval)
		}
		return nil
	}
	return fmt.Errorf("unknown fsync mode %d", int(p.Mode))
}
