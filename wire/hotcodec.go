package wire

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// Hand-written codecs of the headers on the data path. Each type has two:
//
//   - EncodeMsgpack / DecodeMsgpack, used by msgpack.Marshal, Unmarshal and any
//     msgpack.Encoder or Decoder;
//   - appendMsgpack / parseMsgpack, straight over bytes, which FrameWriter and
//     FrameReader use: no reflection, no allocation (a string field allocates
//     only when it differs from the value already in the struct, so a stream
//     decoding into one reused header pays nothing for its topic).
//
// Both produce exactly the bytes of the reflection encoding with `as_array`
// (array of the fields in order; strings as str; integers fixed-width by Go
// type: int8 d0, int32 d2, int64 d3, uint16 cd). Both decoders accept any
// msgpack integer encoding whose value fits the field, accept only str for
// strings, reject nil, and require an array of exactly the field count; they
// accept and reject the same inputs.

type headerAppender interface{ appendMsgpack(dst []byte) []byte }

type headerParser interface {
	parseMsgpack(b []byte) error // b must hold exactly one header
}

// ---- encoding over bytes ----

func mpArray(dst []byte, n int) []byte { return append(dst, msgpcode.FixedArrayLow|byte(n)) } // n < 16

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

// ---- decoding over bytes ----

type mpReader struct{ b []byte }

func (r *mpReader) need(n int) ([]byte, error) {
	if len(r.b) < n {
		return nil, fmt.Errorf("wire: msgpack: need %d bytes, have %d", n, len(r.b))
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p, nil
}

func (r *mpReader) code() (byte, error) {
	p, err := r.need(1)
	if err != nil {
		return 0, err
	}
	return p[0], nil
}

func (r *mpReader) arrayLen(want int) error {
	c, err := r.code()
	if err != nil {
		return err
	}
	var n uint64
	switch {
	case c >= msgpcode.FixedArrayLow && c <= msgpcode.FixedArrayHigh:
		n = uint64(c & msgpcode.FixedArrayMask)
	case c == msgpcode.Array16:
		p, err := r.need(2)
		if err != nil {
			return err
		}
		n = uint64(binary.BigEndian.Uint16(p))
	case c == msgpcode.Array32:
		p, err := r.need(4)
		if err != nil {
			return err
		}
		n = uint64(binary.BigEndian.Uint32(p))
	default:
		return fmt.Errorf("wire: msgpack: code %#x where an array was expected", c)
	}
	return checkArrayLen(int64(n), want)
}

func checkArrayLen(n int64, want int) error {
	if n != int64(want) {
		return fmt.Errorf("wire: msgpack: array of %d fields, want %d", n, want)
	}
	return nil
}

// int reads any msgpack integer and checks lo <= v <= hi.
func (r *mpReader) int(lo, hi int64) (int64, error) {
	c, err := r.code()
	if err != nil {
		return 0, err
	}
	var v int64
	switch {
	case msgpcode.IsFixedNum(c):
		v = int64(int8(c))
	case c == msgpcode.Uint8 || c == msgpcode.Int8:
		p, err := r.need(1)
		if err != nil {
			return 0, err
		}
		if v = int64(p[0]); c == msgpcode.Int8 {
			v = int64(int8(p[0]))
		}
	case c == msgpcode.Uint16 || c == msgpcode.Int16:
		p, err := r.need(2)
		if err != nil {
			return 0, err
		}
		if v = int64(binary.BigEndian.Uint16(p)); c == msgpcode.Int16 {
			v = int64(int16(v))
		}
	case c == msgpcode.Uint32 || c == msgpcode.Int32:
		p, err := r.need(4)
		if err != nil {
			return 0, err
		}
		if v = int64(binary.BigEndian.Uint32(p)); c == msgpcode.Int32 {
			v = int64(int32(v))
		}
	case c == msgpcode.Uint64 || c == msgpcode.Int64:
		p, err := r.need(8)
		if err != nil {
			return 0, err
		}
		u := binary.BigEndian.Uint64(p)
		if c == msgpcode.Uint64 && u > math.MaxInt64 {
			return 0, errIntRange(u, lo, hi)
		}
		v = int64(u)
	default:
		return 0, fmt.Errorf("wire: msgpack: code %#x where an integer was expected", c)
	}
	if v < lo || v > hi {
		return 0, errIntRange(v, lo, hi)
	}
	return v, nil
}

func errIntRange[T int64 | uint64](v T, lo, hi int64) error {
	return fmt.Errorf("wire: msgpack: integer %d outside [%d, %d]", v, lo, hi)
}

// str reads a msgpack str and returns its bytes (a sub-slice of the input).
func (r *mpReader) str() ([]byte, error) {
	c, err := r.code()
	if err != nil {
		return nil, err
	}
	var n int
	switch {
	case msgpcode.IsFixedString(c):
		n = int(c & msgpcode.FixedStrMask)
	case c == msgpcode.Str8:
		p, err := r.need(1)
		if err != nil {
			return nil, err
		}
		n = int(p[0])
	case c == msgpcode.Str16:
		p, err := r.need(2)
		if err != nil {
			return nil, err
		}
		n = int(binary.BigEndian.Uint16(p))
	case c == msgpcode.Str32:
		p, err := r.need(4)
		if err != nil {
			return nil, err
		}
		n = int(binary.BigEndian.Uint32(p))
	default:
		return nil, fmt.Errorf("wire: msgpack: code %#x where a string was expected", c)
	}
	return r.need(n)
}

// string reads a str into *s, keeping *s when it already holds those bytes.
func (r *mpReader) string(s *string) error {
	b, err := r.str()
	if err != nil {
		return err
	}
	if *s != string(b) {
		*s = string(b)
	}
	return nil
}

func (r *mpReader) int8(p *int8) error {
	v, err := r.int(math.MinInt8, math.MaxInt8)
	*p = int8(v)
	return err
}

func (r *mpReader) int32(p *int32) error {
	v, err := r.int(math.MinInt32, math.MaxInt32)
	*p = int32(v)
	return err
}

func (r *mpReader) int64(p *int64) error {
	v, err := r.int(math.MinInt64, math.MaxInt64)
	*p = v
	return err
}

func (r *mpReader) code16(p *ErrorCode) error {
	v, err := r.int(0, math.MaxUint16)
	*p = ErrorCode(v)
	return err
}

func (r *mpReader) end() error {
	if len(r.b) != 0 {
		return fmt.Errorf("wire: msgpack: %d bytes after the header", len(r.b))
	}
	return nil
}

// ---- decoding through a msgpack.Decoder ----

func isIntCode(c byte) bool {
	if msgpcode.IsFixedNum(c) {
		return true
	}
	switch c {
	case msgpcode.Uint8, msgpcode.Uint16, msgpcode.Uint32, msgpcode.Uint64,
		msgpcode.Int8, msgpcode.Int16, msgpcode.Int32, msgpcode.Int64:
		return true
	}
	return false
}

func isStrCode(c byte) bool {
	return msgpcode.IsFixedString(c) || c == msgpcode.Str8 || c == msgpcode.Str16 || c == msgpcode.Str32
}

func decArray(d *msgpack.Decoder, want int) error {
	c, err := d.PeekCode()
	if err != nil {
		return err
	}
	if c == msgpcode.Nil {
		return fmt.Errorf("wire: msgpack: nil where an array was expected")
	}
	n, err := d.DecodeArrayLen()
	if err != nil {
		return err
	}
	return checkArrayLen(int64(n), want)
}

func decInt(d *msgpack.Decoder, lo, hi int64) (int64, error) {
	c, err := d.PeekCode()
	if err != nil {
		return 0, err
	}
	if !isIntCode(c) {
		return 0, fmt.Errorf("wire: msgpack: code %#x where an integer was expected", c)
	}
	var v int64
	if c == msgpcode.Uint64 {
		u, err := d.DecodeUint64()
		if err != nil {
			return 0, err
		}
		if u > math.MaxInt64 {
			return 0, errIntRange(u, lo, hi)
		}
		v = int64(u)
	} else if v, err = d.DecodeInt64(); err != nil {
		return 0, err
	}
	if v < lo || v > hi {
		return 0, errIntRange(v, lo, hi)
	}
	return v, nil
}

func decString(d *msgpack.Decoder, s *string) error {
	c, err := d.PeekCode()
	if err != nil {
		return err
	}
	if !isStrCode(c) {
		return fmt.Errorf("wire: msgpack: code %#x where a string was expected", c)
	}
	*s, err = d.DecodeString()
	return err
}

func decInt8(d *msgpack.Decoder, p *int8) error {
	v, err := decInt(d, math.MinInt8, math.MaxInt8)
	*p = int8(v)
	return err
}

func decInt32(d *msgpack.Decoder, p *int32) error {
	v, err := decInt(d, math.MinInt32, math.MaxInt32)
	*p = int32(v)
	return err
}

func decInt64(d *msgpack.Decoder, p *int64) error {
	v, err := decInt(d, math.MinInt64, math.MaxInt64)
	*p = v
	return err
}

func decCode(d *msgpack.Decoder, p *ErrorCode) error {
	v, err := decInt(d, 0, math.MaxUint16)
	*p = ErrorCode(v)
	return err
}

// firstErr returns the first non-nil error.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
