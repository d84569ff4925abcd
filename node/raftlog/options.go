package raftlog

import (
	"errors"
	"fmt"
	"log/slog"
)

// DefaultMaxRecordBytes is the default of Options.MaxRecordBytes.
const DefaultMaxRecordBytes = 64 << 20

// minMaxRecordBytes is the smallest Options.MaxRecordBytes accepted: room
// for a hard state and a few entries.
const minMaxRecordBytes = 1 << 10

// Options configures a FileStorage. The zero value of every field means its
// default.
type Options struct {
	// MaxRecordBytes bounds one record, written or read: a Save (its entries
	// and snapshot) and the base record of a rewrite (the snapshot and every
	// entry kept). Default 64 MiB, at least 1 KiB. A length read from disk
	// above it is a torn record. Raise it only with the group's snapshot
	// size; replay holds the whole file in memory once.
	MaxRecordBytes int
	// Logger gets replay truncations and write failures. Nil discards.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.MaxRecordBytes == 0 {
		o.MaxRecordBytes = DefaultMaxRecordBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Validate reports every invalid field at once.
func (o Options) Validate() error {
	var errs []error
	if o.MaxRecordBytes < minMaxRecordBytes || o.MaxRecordBytes > maxRecordLimit {
		errs = append(errs, fmt.Errorf("raftlog: MaxRecordBytes %d outside [%d, %d]", o.MaxRecordBytes, minMaxRecordBytes, maxRecordLimit))
	}
	return errors.Join(errs...)
}
