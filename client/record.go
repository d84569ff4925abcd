package client

import (
	"time"

	"github.com/rafka/rafka/wire"
)

// AnyPartition in Record.Partition lets the producer's partitioner choose.
const AnyPartition int32 = -1

// Header is one record header: a string key and a byte value.
type Header = wire.Header

// Record is one message.
//
// To produce, set Topic, Value and usually Key; set Partition to AnyPartition
// to let the partitioner choose (keyed records then go to the partition whose
// hash range holds the key's hash). The producer sets Partition, Timestamp
// (when zero) and, on delivery, Offset. The producer keeps the *Record until
// its delivery callback ran: do not modify it before; Key, Value and Headers
// are copied by Produce and may be reused as soon as it returns.
//
// A consumed record has every field set; its Key, Value and header values
// belong to it (they share a buffer with the other records of the same
// delivery, which stays alive as long as any of them is referenced).
type Record struct {
	Topic     string
	Partition int32
	Key       []byte // nil: no key
	Value     []byte
	Headers   []Header
	Timestamp time.Time
	Offset    int64 // -1 until known (and for records produced with AcksNone)
}

// Compression codecs for WithCompression.
const (
	CompressionNone = wire.CodecNone
	CompressionLZ4  = wire.CodecLZ4
)

// Acks is how much durability a produce request waits for.
type Acks int8

// Acks levels (see docs/architecture.md).
const (
	// AcksNone: the broker sends no answer; delivery callbacks report success
	// once the request is written, with Offset -1.
	AcksNone = Acks(wire.AcksNone)
	// AcksLeader: the leader appended the batch under the topic's fsync policy.
	AcksLeader = Acks(wire.AcksLeader)
	// AcksAll: a quorum of replicas committed the batch.
	AcksAll = Acks(wire.AcksAll)
)
