package client

import (
	"errors"
	"fmt"
	"time"

	"github.com/rafka/rafka/wire"
)

// ProducerOption configures a Producer. NewProducer validates the result once
// and reports every problem together.
type ProducerOption func(*producerConfig)

type producerConfig struct {
	linger         time.Duration
	maxBatchBytes  int
	codec          wire.Codec
	acks           Acks
	bufferBytes    int64
	maxInFlight    int
	retries        int
	backoffBase    time.Duration
	backoffMax     time.Duration
	requestTimeout time.Duration
	partitioner    Partitioner
	idempotent     bool
	probeInterval  time.Duration
}

func defaultProducerConfig() producerConfig {
	return producerConfig{
		linger:         5 * time.Millisecond,
		maxBatchBytes:  1 << 20,
		codec:          CompressionNone,
		acks:           AcksLeader,
		bufferBytes:    64 << 20,
		maxInFlight:    8,
		retries:        5,
		backoffBase:    100 * time.Millisecond,
		backoffMax:     5 * time.Second,
		requestTimeout: 30 * time.Second,
		idempotent:     true,
		probeInterval:  250 * time.Millisecond,
	}
}

// MaxIdempotentInFlight is the largest WithMaxInFlight an idempotent
// producer accepts: brokers remember the last 8 batches of each producer
// per partition with their offsets, so a retry of any request in flight is
// recognised (docs/replication.md, "Idempotent producers").
const MaxIdempotentInFlight = 8

// WithLinger sets how long a partition's batch waits for more records before
// it is sent (default 5ms). Zero sends as soon as the previous requests allow;
// a longer linger makes bigger batches and fewer requests at the cost of
// latency. A full batch is sent at once whatever the linger.
func WithLinger(d time.Duration) ProducerOption {
	return func(c *producerConfig) { c.linger = d }
}

// WithMaxBatchBytes bounds the uncompressed size of a batch (default 1 MiB).
// A record is never split: one larger than this travels alone in its batch.
func WithMaxBatchBytes(n int) ProducerOption {
	return func(c *producerConfig) { c.maxBatchBytes = n }
}

// WithCompression sets the batch codec: CompressionNone (default) or
// CompressionLZ4. A batch that lz4 does not shrink is sent uncompressed.
func WithCompression(codec wire.Codec) ProducerOption {
	return func(c *producerConfig) { c.codec = codec }
}

// WithAcks sets the acknowledgement level (default AcksLeader).
func WithAcks(a Acks) ProducerOption {
	return func(c *producerConfig) { c.acks = a }
}

// WithBufferBytes bounds the bytes of records produced but not yet delivered
// (default 64 MiB). When the buffer is full, Produce blocks until space frees
// up or its context is done: this is the producer's backpressure.
func WithBufferBytes(n int64) ProducerOption {
	return func(c *producerConfig) { c.bufferBytes = n }
}

// WithMaxInFlight bounds the produce requests of one partition sent but not
// yet answered on its broker stream (default 8). A broker stream also keeps at
// most this many max-size batches' bytes in flight over all its partitions.
func WithMaxInFlight(n int) ProducerOption {
	return func(c *producerConfig) { c.maxInFlight = n }
}

// WithRetries sets how many times a batch is sent again after a retriable
// failure (default 5); a batch that fails more often is reported to the
// delivery callbacks of its records.
func WithRetries(n int) ProducerOption {
	return func(c *producerConfig) { c.retries = n }
}

// WithRetryBackoff sets the first and the largest delay before a retry
// (default 100ms and 5s); the delay doubles per consecutive failure of a
// partition, with jitter.
func WithRetryBackoff(base, maxDelay time.Duration) ProducerOption {
	return func(c *producerConfig) { c.backoffBase, c.backoffMax = base, maxDelay }
}

// WithRequestTimeout bounds the wait for the answer to one produce request
// (default 30s); it is also sent to the broker as the request's timeout. A
// request without an answer in time breaks its stream and is retried.
func WithRequestTimeout(d time.Duration) ProducerOption {
	return func(c *producerConfig) { c.requestTimeout = d }
}

// WithIdempotence turns idempotent production on (the default) or off.
// An idempotent producer has a random producer id and numbers the records
// it sends to each partition; a batch sent again after a failure carries
// the same numbers, so the partition's leader stores it at most once and
// answers a retry with the offsets of the first copy. Without it a retry
// may store a batch twice. Brokers of this version always honour it;
// turning it off only matters to a peer that does not.
func WithIdempotence(on bool) ProducerOption {
	return func(c *producerConfig) { c.idempotent = on }
}

// WithLeaderProbe sets how long produce answers may be outstanding on a
// broker before the producer asks another broker who leads the partitions
// it waits for (default 250ms; 0 turns probing off). When the answer names
// another leader the producer sends what is outstanding there at once,
// instead of waiting out WithRequestTimeout on a broker that may be dead.
// It asks again every interval while answers are outstanding: one small
// metadata request per interval and broker stream.
func WithLeaderProbe(d time.Duration) ProducerOption {
	return func(c *producerConfig) { c.probeInterval = d }
}

// WithPartitioner sets the partitioner of records produced with AnyPartition
// (default NewHashPartitioner()).
func WithPartitioner(p Partitioner) ProducerOption {
	return func(c *producerConfig) { c.partitioner = p }
}

func (c *producerConfig) validate() error {
	var errs []error
	if c.linger < 0 {
		errs = append(errs, fmt.Errorf("linger %v must be >= 0", c.linger))
	}
	if c.maxBatchBytes < wire.BatchHeaderSize+1 || c.maxBatchBytes > wire.DefaultMaxBatchSize {
		errs = append(errs, fmt.Errorf("max batch bytes %d must be in [%d, %d]", c.maxBatchBytes, wire.BatchHeaderSize+1, wire.DefaultMaxBatchSize))
	}
	if c.codec != CompressionNone && c.codec != CompressionLZ4 {
		errs = append(errs, fmt.Errorf("unknown compression %v", c.codec))
	}
	if c.acks != AcksNone && c.acks != AcksLeader && c.acks != AcksAll {
		errs = append(errs, fmt.Errorf("unknown acks %d", c.acks))
	}
	if c.bufferBytes < int64(c.maxBatchBytes) {
		errs = append(errs, fmt.Errorf("buffer bytes %d must hold at least one batch of %d", c.bufferBytes, c.maxBatchBytes))
	}
	if c.maxInFlight < 1 {
		errs = append(errs, fmt.Errorf("max in flight %d must be >= 1", c.maxInFlight))
	}
	if c.retries < 0 {
		errs = append(errs, fmt.Errorf("retries %d must be >= 0", c.retries))
	}
	errs = append(errs, validateBackoff(c.backoffBase, c.backoffMax)...)
	if c.requestTimeout <= 0 {
		errs = append(errs, fmt.Errorf("request timeout %v must be positive", c.requestTimeout))
	}
	if c.idempotent && c.maxInFlight > MaxIdempotentInFlight {
		errs = append(errs, fmt.Errorf("max in flight %d: an idempotent producer allows at most %d", c.maxInFlight, MaxIdempotentInFlight))
	}
	if c.probeInterval < 0 {
		errs = append(errs, fmt.Errorf("leader probe interval %v must be >= 0", c.probeInterval))
	}
	if c.partitioner == nil {
		errs = append(errs, errors.New("nil partitioner"))
	}
	return joinOptionErrors(errs)
}
