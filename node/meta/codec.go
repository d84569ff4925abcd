package meta

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"time"
)

// The command and snapshot codec. Fields are written in a fixed order with
// no names:
//
//	uvarint   unsigned integers (raft ids, indexes, epochs, counts, lengths)
//	varint    signed integers (partition counts, Unix seconds)
//	string    uvarint(len) | bytes
//	map       uvarint(count) | (string key | string value)*, keys sorted
//	time      varint(Unix seconds) | uvarint(nanoseconds, < 1e9), UTC
//
// The decoder never allocates more than the input justifies: a string's
// length and a list's count are checked against the bytes left (every element
// takes at least one byte) before anything is allocated, so a few corrupt
// bytes cannot ask for gigabytes.

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }
func appendVarint(b []byte, v int64) []byte   { return binary.AppendVarint(b, v) }

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendConfigs writes m with its keys sorted, so equal maps give equal
// bytes (snapshots of two brokers compare equal).
func appendConfigs(b []byte, m map[string]string) []byte {
	b = binary.AppendUvarint(b, uint64(len(m)))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		b = appendString(b, k)
		b = appendString(b, m[k])
	}
	return b
}

// Times are kept between the years 1 and 9999 (the zero time.Time is year 1),
// so every decoded time encodes back to the same bytes.
const (
	minUnix = -62135596800 // 0001-01-01T00:00:00Z
	maxUnix = 253402300799 // 9999-12-31T23:59:59Z
)

func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// decoder reads the fields above. The first error sticks: later reads return
// zero values, and err reports it wrapped in base.
type decoder struct {
	b    []byte
	base error // ErrInvalidCommand or ErrInvalidSnapshot
	err  error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", d.base, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) byte(what string) byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail("%s: truncated", what)
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("%s: bad uvarint", what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint(what string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("%s: bad varint", what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// int32 reads a varint that must fit an int32.
func (d *decoder) int32(what string) int32 {
	v := d.varint(what)
	if int64(int32(v)) != v {
		d.fail("%s: %d out of range", what, v)
		return 0
	}
	return int32(v)
}

// count reads a list length: at most the bytes left, each element taking at
// least one.
func (d *decoder) count(what string) int {
	v := d.uvarint(what)
	if v > uint64(len(d.b)) {
		d.fail("%s: count %d exceeds the %d bytes left", what, v, len(d.b))
		return 0
	}
	return int(v)
}

func (d *decoder) string(what string) string {
	n := d.uvarint(what)
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.fail("%s: length %d exceeds the %d bytes left", what, n, len(d.b))
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) configs(what string) map[string]string {
	n := d.count(what)
	if n == 0 {
		return nil
	}
	m := make(map[string]string, min(n, len(d.b)/2))
	prev := ""
	for i := range n {
		k := d.string(what)
		v := d.string(what)
		if d.err != nil {
			return nil
		}
		if i > 0 && k <= prev {
			d.fail("%s: keys not sorted and distinct", what)
			return nil
		}
		prev = k
		m[k] = v
	}
	return m
}

func (d *decoder) time(what string) time.Time {
	sec := d.varint(what)
	nsec := d.uvarint(what)
	if d.err != nil {
		return time.Time{}
	}
	if nsec >= 1e9 || sec < minUnix || sec > maxUnix {
		d.fail("%s: %d s %d ns out of range", what, sec, nsec)
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

// finish reports the first error, or trailing bytes.
func (d *decoder) finish() error {
	if d.err == nil && len(d.b) > 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	return d.err
}
