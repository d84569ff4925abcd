package wire

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// The header codecs. Every request and response header has exactly one codec,
// written by hand over bytes:
//
//	func (m T) AppendMsgpack(dst []byte) []byte  // appends the encoding
//	func (m *T) ParseMsgpack(b []byte) error      // b holds exactly one header
//
// The encoding is what msgpack's reflection encoder writes for the struct with
// `as_array` (the `_msgpack` tag on each type), so a client in another
// language reads and writes headers with a stock msgpack library:
//
//   - a struct is an array of its fields in declaration order;
//   - strings are str; integers are fixed-width by Go type (int8 d0, int32 d2,
//     int64 d3, uint16 cd, uint32 ce, uint64 cf); ErrorCode is a uint16;
//     booleans are false (c2) and true (c3);
//   - a list is an array, a nil list is nil (c0); a config map is a map of str
//     to str with its keys in sorted order (what msgpack writes with sorted
//     map keys), a nil map is nil.
//
// Decoders accept any msgpack integer encoding whose value fits the field,
// maps in any key order, and nothing else: no nil where a struct, string or
// integer is expected, no bin for str, no duplicate map keys, arrays of
// exactly the struct's field count, no bytes after the header.
//
// Nothing is sized from a count before the count is bounded. A list or map
// count is checked against the bytes left (each element needs at least its
// minimal encoding), against MaxListLen or MaxConfigEntries, and against
// MaxHeaderElements for the whole header, before anything is allocated; a
// string is allocated only once its bytes are present. So a header costs at
// most a small multiple of its own size, whatever it claims.
//
// Decoding a string into a struct that already holds the same string keeps the
// old one: a stream that decodes into one reused header pays nothing for its
// topic name. The hot headers (produce, fetch, subscribe data and credit)
// encode and decode without allocating.

// Header limits. They bound what a decoder allocates for one header; a header
// beyond them is rejected as malformed.
const (
	// MaxListLen bounds every list in a header: the partitions of a subscribe
	// request or response, of a topic in a metadata or describe response, the
	// topics of a metadata request or response, and the brokers.
	MaxListLen = 10_000
	// MaxConfigEntries bounds the config map of create, alter and describe.
	MaxConfigEntries = 1_000
	// MaxHeaderElements bounds the list elements and map entries of one
	// header, all lists together.
	MaxHeaderElements = 100_000
)

// HeaderCodec is implemented by pointers to every request and response
// header type of this package.
type HeaderCodec interface {
	AppendMsgpack(dst []byte) []byte
	ParseMsgpack(b []byte) error
}

type headerAppender interface{ AppendMsgpack(dst []byte) []byte }

type headerParser interface{ ParseMsgpack(b []byte) error }

// DecodeHeader decodes a msgpack header into v, a pointer to one of this
// package's request or response types. Errors wrap ErrMalformedFrame, or
// ErrNoCodec for any other v.
func DecodeHeader(header []byte, v any) error {
	hp, ok := v.(headerParser)
	if !ok {
		return fmt.Errorf("%w: %T", ErrNoCodec, v)
	}
	return hp.ParseMsgpack(header)
}

// EncodeHeader returns the msgpack encoding of a header, one of this package's
// request or response types (or a pointer to one).
func EncodeHeader(header any) ([]byte, error) {
	ha, ok := header.(headerAppender)
	if !ok {
		return nil, fmt.Errorf("%w: %T", ErrNoCodec, header)
	}
	return ha.AppendMsgpack(nil), nil
}

// ---- encoding ----

func mpArray(dst []byte, n int) []byte {
	switch {
	case n < 16:
		return append(dst, msgpcode.FixedArrayLow|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, msgpcode.Array16), uint16(n))
	default:
		return binary.BigEndian.AppendUint32(append(dst, msgpcode.Array32), uint32(n))
	}
}

func mpMap(dst []byte, n int) []byte {
	switch {
	case n < 16:
		return append(dst, msgpcode.FixedMapLow|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, msgpcode.Map16), uint16(n))
	default:
		return binary.BigEndian.AppendUint32(append(dst, msgpcode.Map32), uint32(n))
	}
}

func mpNil(dst []byte) []byte { return append(dst, msgpcode.Nil) }

func mpString(dst []byte, s string) []byte {
	switch l := len(s); {
	case l < 32:
		dst = append(dst, msgpcode.FixedStrLow|byte(l))
	case l < 256:
		dst = append(dst, msgpcode.Str8, byte(l))
	case l <= math.MaxUint16:
		dst = append(dst, msgpcode.Str16)
		dst = binary.BigEndian.AppendUint16(dst, uint16(l))
	default:
		dst = append(dst, msgpcode.Str32)
		dst = binary.BigEndian.AppendUint32(dst, uint32(l))
	}
	return append(dst, s...)
}

func mpInt8(dst []byte, v int8) []byte { return append(dst, msgpcode.Int8, byte(v)) }

func mpInt32(dst []byte, v int32) []byte {
	return binary.BigEndian.AppendUint32(append(dst, msgpcode.Int32), uint32(v))
}

func mpInt64(dst []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(append(dst, msgpcode.Int64), uint64(v))
}

func mpUint16(dst []byte, v uint16) []byte {
	return binary.BigEndian.AppendUint16(append(dst, msgpcode.Uint16), v)
}

func mpUint64(dst []byte, v uint64) []byte {
	return binary.BigEndian.AppendUint64(append(dst, msgpcode.Uint64), v)
}

func mpUint32(dst []byte, v uint32) []byte {
	return binary.BigEndian.AppendUint32(append(dst, msgpcode.Uint32), v)
}

func mpBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, msgpcode.True)
	}
	return append(dst, msgpcode.False)
}

// mpStringSize is the encoded size of s.
func mpStringSize(s string) int {
	switch l := len(s); {
	case l < 32:
		return 1 + l
	case l < 256:
		return 2 + l
	case l <= math.MaxUint16:
		return 3 + l
	default:
		return 5 + l
	}
}

func mpCode(dst []byte, c ErrorCode) []byte { return mpUint16(dst, uint16(c)) }

func mpStrings(dst []byte, l []string) []byte {
	if l == nil {
		return mpNil(dst)
	}
	dst = mpArray(dst, len(l))
	for _, s := range l {
		dst = mpString(dst, s)
	}
	return dst
}

// mpList appends a list of structs: nil for a nil slice.
func mpList[T any](dst []byte, l []T, appendOne func([]byte, *T) []byte) []byte {
	if l == nil {
		return mpNil(dst)
	}
	dst = mpArray(dst, len(l))
	for i := range l {
		dst = appendOne(dst, &l[i])
	}
	return dst
}

// mpConfigs appends a config map with its keys sorted (cold path: it
// allocates the key list).
func mpConfigs(dst []byte, m map[string]string) []byte {
	if m == nil {
		return mpNil(dst)
	}
	dst = mpMap(dst, len(m))
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		dst = mpString(mpString(dst, k), m[k])
	}
	return dst
}

// ---- decoding ----

// mpReader decodes msgpack values from b. The first error sticks: later reads
// return zero values, so a parser reads all its fields and checks once.
type mpReader struct {
	b        []byte
	err      error
	elements int // list elements and map entries decoded so far
}

// Minimal encoded sizes used to bound a list count by the bytes left.
const (
	minStringSize = 1 // fixstr ""
	minEntrySize  = 2 // a map entry: two fixstr
)

func (r *mpReader) failf(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
}

// finish checks that the header was consumed exactly and wraps any error.
func (r *mpReader) finish(name string) error {
	if r.err == nil && len(r.b) != 0 {
		r.failf("%d bytes after the header", len(r.b))
	}
	if r.err != nil {
		return fmt.Errorf("%w: %s header: %v", ErrMalformedFrame, name, r.err)
	}
	return nil
}

func (r *mpReader) need(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.failf("need %d bytes, have %d", n, len(r.b))
		return nil
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

func (r *mpReader) code() (byte, bool) {
	p := r.need(1)
	if p == nil {
		return 0, false
	}
	return p[0], true
}

// peekNil consumes a nil and reports whether there was one.
func (r *mpReader) peekNil() bool {
	if r.err == nil && len(r.b) > 0 && r.b[0] == msgpcode.Nil {
		r.b = r.b[1:]
		return true
	}
	return false
}

// length reads the length that follows a code: 2 or 4 big-endian bytes.
func (r *mpReader) length(size int) int {
	p := r.need(size)
	if p == nil {
		return 0
	}
	if size == 2 {
		return int(binary.BigEndian.Uint16(p))
	}
	return int(binary.BigEndian.Uint32(p))
}

// arrayHeader reads an array header and returns its count (unchecked).
func (r *mpReader) arrayHeader() int {
	c, ok := r.code()
	switch {
	case !ok:
		return 0
	case c >= msgpcode.FixedArrayLow && c <= msgpcode.FixedArrayHigh:
		return int(c & msgpcode.FixedArrayMask)
	case c == msgpcode.Array16:
		return r.length(2)
	case c == msgpcode.Array32:
		return r.length(4)
	}
	r.failf("code %#x where an array was expected", c)
	return 0
}

// fields reads the array header of a struct with n fields.
func (r *mpReader) fields(n int) {
	if got := r.arrayHeader(); r.err == nil && got != n {
		r.failf("array of %d fields, want %d", got, n)
	}
}

// count checks a list or map count against the bytes left (each element
// needing at least minSize of them), limit and the header's element budget,
// before the caller allocates for it.
func (r *mpReader) count(n, minSize, limit int, what string) int {
	switch {
	case r.err != nil:
		return 0
	case n > limit:
		r.failf("%d %s, limit %d", n, what, limit)
	case n > len(r.b)/minSize:
		r.failf("%d %s in %d bytes", n, what, len(r.b))
	case r.elements+n > MaxHeaderElements:
		r.failf("more than %d list elements in one header", MaxHeaderElements)
	default:
		r.elements += n
		return n
	}
	return 0
}

// listLen reads the array header of a list: -1 for nil, else the bounded count.
func (r *mpReader) listLen(minSize, limit int, what string) int {
	if r.peekNil() {
		return -1
	}
	return r.count(r.arrayHeader(), minSize, limit, what)
}

// readList decodes a list of structs (nil stays nil).
func readList[T any](r *mpReader, minSize int, what string, readOne func(*T, *mpReader)) []T {
	n := r.listLen(minSize, MaxListLen, what)
	if n < 0 || r.err != nil {
		return nil
	}
	l := make([]T, n)
	for i := range l {
		readOne(&l[i], r)
		if r.err != nil {
			return nil
		}
	}
	return l
}

func (r *mpReader) strings(what string) []string {
	n := r.listLen(minStringSize, MaxListLen, what)
	if n < 0 || r.err != nil {
		return nil
	}
	l := make([]string, n)
	for i := range l {
		l[i] = string(r.str())
	}
	if r.err != nil {
		return nil
	}
	return l
}

func (r *mpReader) configs() map[string]string {
	if r.peekNil() {
		return nil
	}
	c, ok := r.code()
	n := 0
	switch {
	case !ok:
	case c >= msgpcode.FixedMapLow && c <= msgpcode.FixedMapHigh:
		n = int(c & msgpcode.FixedMapMask)
	case c == msgpcode.Map16:
		n = r.length(2)
	case c == msgpcode.Map32:
		n = r.length(4)
	default:
		r.failf("code %#x where a map was expected", c)
	}
	n = r.count(n, minEntrySize, MaxConfigEntries, "config entries")
	if r.err != nil {
		return nil
	}
	m := make(map[string]string, n)
	for range n {
		k, v := r.str(), r.str()
		if r.err != nil {
			return nil
		}
		if _, dup := m[string(k)]; dup {
			r.failf("config key %q twice", k)
			return nil
		}
		m[string(k)] = string(v)
	}
	return m
}

// int reads any msgpack integer and checks lo <= v <= hi.
func (r *mpReader) int(lo, hi int64) int64 {
	c, ok := r.code()
	if !ok {
		return 0
	}
	var v int64
	switch {
	case msgpcode.IsFixedNum(c):
		v = int64(int8(c))
	case c == msgpcode.Uint8 || c == msgpcode.Int8:
		p := r.need(1)
		if p == nil {
			return 0
		}
		if v = int64(p[0]); c == msgpcode.Int8 {
			v = int64(int8(p[0]))
		}
	case c == msgpcode.Uint16 || c == msgpcode.Int16:
		p := r.need(2)
		if p == nil {
			return 0
		}
		if v = int64(binary.BigEndian.Uint16(p)); c == msgpcode.Int16 {
			v = int64(int16(v))
		}
	case c == msgpcode.Uint32 || c == msgpcode.Int32:
		p := r.need(4)
		if p == nil {
			return 0
		}
		if v = int64(binary.BigEndian.Uint32(p)); c == msgpcode.Int32 {
			v = int64(int32(v))
		}
	case c == msgpcode.Uint64 || c == msgpcode.Int64:
		p := r.need(8)
		if p == nil {
			return 0
		}
		u := binary.BigEndian.Uint64(p)
		if c == msgpcode.Uint64 && u > math.MaxInt64 {
			r.failf("integer %d outside [%d, %d]", u, lo, hi)
			return 0
		}
		v = int64(u)
	default:
		r.failf("code %#x where an integer was expected", c)
		return 0
	}
	if v < lo || v > hi {
		r.failf("integer %d outside [%d, %d]", v, lo, hi)
		return 0
	}
	return v
}

// uint64 reads any msgpack integer that is not negative.
func (r *mpReader) uint64() uint64 {
	if r.err == nil && len(r.b) >= 9 && r.b[0] == msgpcode.Uint64 {
		v := binary.BigEndian.Uint64(r.b[1:])
		r.b = r.b[9:]
		return v
	}
	return uint64(r.int(0, math.MaxInt64))
}

func (r *mpReader) uint32() uint32    { return uint32(r.int(0, math.MaxUint32)) }
func (r *mpReader) int8() int8        { return int8(r.int(math.MinInt8, math.MaxInt8)) }
func (r *mpReader) int32() int32      { return int32(r.int(math.MinInt32, math.MaxInt32)) }
func (r *mpReader) int64() int64      { return r.int(math.MinInt64, math.MaxInt64) }
func (r *mpReader) code16() ErrorCode { return ErrorCode(r.int(0, math.MaxUint16)) }

// bool reads a msgpack boolean; nothing else is one (no integers).
func (r *mpReader) bool() bool {
	c, ok := r.code()
	switch {
	case !ok:
		return false
	case c == msgpcode.True:
		return true
	case c != msgpcode.False:
		r.failf("code %#x where a boolean was expected", c)
	}
	return false
}

// str reads a msgpack str and returns its bytes (a sub-slice of the input).
func (r *mpReader) str() []byte {
	c, ok := r.code()
	n := 0
	switch {
	case !ok:
		return nil
	case msgpcode.IsFixedString(c):
		n = int(c & msgpcode.FixedStrMask)
	case c == msgpcode.Str8:
		if p := r.need(1); p != nil {
			n = int(p[0])
		}
	case c == msgpcode.Str16:
		n = r.length(2)
	case c == msgpcode.Str32:
		n = r.length(4)
	default:
		r.failf("code %#x where a string was expected", c)
		return nil
	}
	return r.need(n)
}

// string reads a str into *s, keeping *s when it already holds those bytes.
func (r *mpReader) string(s *string) {
	b := r.str()
	if r.err == nil && *s != string(b) {
		*s = string(b)
	}
}
