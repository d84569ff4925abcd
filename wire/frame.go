package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/vmihailenco/msgpack/v5"
)

// Frame layout: see the package doc. Frames are little-endian, like batches, so
// a client needs only one byte order.
const (
	// FrameFixedSize is the size of the fixed fields, length included.
	FrameFixedSize = 16
	// frameLengthSize is the size of the length field itself.
	frameLengthSize = 4

	// DefaultMaxFrameSize bounds a frame on decode unless a caller passes a
	// different limit. It leaves room for a maximum-size batch plus headers.
	DefaultMaxFrameSize = DefaultMaxBatchSize + 64<<10
)

// API identifies a request type. A response carries the API and correlation id
// of its request.
type API uint16

// FrameHeader is the fixed part of a frame after its length.
type FrameHeader struct {
	API     API
	Version uint16
	Corr    uint32
}

// Frame is one decoded frame. Header and Payload are sub-slices of the buffer
// they were parsed from: a FrameReader reuses that buffer on its next call.
type Frame struct {
	FrameHeader
	Header  []byte // msgpack-encoded header
	Payload []byte // raw bytes after the header
}

// Size is the encoded size of the frame, length field included.
func (f *Frame) Size() int { return FrameFixedSize + len(f.Header) + len(f.Payload) }

// AppendFrame appends a complete frame whose header is already msgpack-encoded.
func AppendFrame(dst []byte, fh FrameHeader, header, payload []byte) []byte {
	dst = AppendFramePrefix(dst, fh, len(header), len(payload))
	dst = append(dst, header...)
	return append(dst, payload...)
}

// AppendFramePrefix appends the fixed fields of a frame whose header and
// payload have the given lengths; the caller writes those bytes after it.
func AppendFramePrefix(dst []byte, fh FrameHeader, headerLen, payloadLen int) []byte {
	length := FrameFixedSize - frameLengthSize + headerLen + payloadLen
	dst = binary.LittleEndian.AppendUint32(dst, uint32(length))
	dst = binary.LittleEndian.AppendUint16(dst, uint16(fh.API))
	dst = binary.LittleEndian.AppendUint16(dst, fh.Version)
	dst = binary.LittleEndian.AppendUint32(dst, fh.Corr)
	return binary.LittleEndian.AppendUint32(dst, uint32(headerLen))
}

// ParseFrame decodes the frame at the start of b, returning sub-slices of b and
// the frame's total size. maxSize <= 0 means DefaultMaxFrameSize.
func ParseFrame(b []byte, maxSize int) (Frame, int, error) {
	if len(b) < frameLengthSize {
		return Frame{}, 0, fmt.Errorf("%w: %d bytes, need %d for the length", ErrShortFrame, len(b), frameLengthSize)
	}
	length := binary.LittleEndian.Uint32(b)
	if err := checkFrameLength(length, maxSize); err != nil {
		return Frame{}, 0, err
	}
	total := int(length) + frameLengthSize
	if len(b) < total {
		return Frame{}, 0, fmt.Errorf("%w: have %d of %d bytes", ErrShortFrame, len(b), total)
	}
	f, err := parseFrameBody(b[frameLengthSize:total])
	return f, total, err
}

func checkFrameLength(length uint32, maxSize int) error {
	if maxSize <= 0 {
		maxSize = DefaultMaxFrameSize
	}
	if uint64(length)+frameLengthSize > uint64(maxSize) {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, uint64(length)+frameLengthSize, maxSize)
	}
	if length < FrameFixedSize-frameLengthSize {
		return fmt.Errorf("%w: length %d below the fixed fields", ErrMalformedFrame, length)
	}
	return nil
}

// parseFrameBody decodes the bytes after the length field.
func parseFrameBody(body []byte) (Frame, error) {
	var f Frame
	f.API = API(binary.LittleEndian.Uint16(body[0:]))
	f.Version = binary.LittleEndian.Uint16(body[2:])
	f.Corr = binary.LittleEndian.Uint32(body[4:])
	hl := binary.LittleEndian.Uint32(body[8:])
	rest := body[12:]
	if uint64(hl) > uint64(len(rest)) {
		return Frame{}, fmt.Errorf("%w: header length %d exceeds the %d bytes left", ErrMalformedFrame, hl, len(rest))
	}
	f.Header = rest[:hl:hl]
	f.Payload = rest[hl:]
	return f, nil
}

// FrameReader reads frames from a stream, reusing one buffer. It is not safe
// for concurrent use.
type FrameReader struct {
	r      io.Reader
	max    int
	buf    []byte
	lenBuf [frameLengthSize]byte
	dec    *msgpack.Decoder
	decSrc bytes.Reader
}

// keptFrameBuffer is the largest buffer a FrameReader keeps between frames:
// room for a 1 MiB batch (the Go client's default batch limit) plus headers.
const keptFrameBuffer = 2 << 20

// NewFrameReader returns a reader that rejects frames over maxSize bytes
// (DefaultMaxFrameSize when maxSize <= 0).
func NewFrameReader(r io.Reader, maxSize int) *FrameReader {
	if maxSize <= 0 {
		maxSize = DefaultMaxFrameSize
	}
	fr := &FrameReader{r: r, max: maxSize}
	fr.dec = msgpack.NewDecoder(&fr.decSrc)
	return fr
}

// Next reads the next frame. The frame's slices are valid until the next call.
// io.EOF means the stream ended cleanly between frames; a stream cut inside a
// frame gives ErrShortFrame. After ErrFrameTooLarge or ErrMalformedFrame the
// stream is out of step and must be closed.
func (fr *FrameReader) Next() (Frame, error) {
	if _, err := io.ReadFull(fr.r, fr.lenBuf[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return Frame{}, fmt.Errorf("%w: stream ended inside the length field", ErrShortFrame)
		}
		return Frame{}, err
	}
	length := binary.LittleEndian.Uint32(fr.lenBuf[:])
	if err := checkFrameLength(length, fr.max); err != nil {
		return Frame{}, err
	}
	var body []byte
	switch {
	case int(length) <= cap(fr.buf):
		body = fr.buf[:length]
	case length <= keptFrameBuffer:
		fr.buf = make([]byte, length, min(max(int(length), 2*cap(fr.buf)), keptFrameBuffer))
		body = fr.buf
	default:
		// A rare large frame gets a buffer of its own, dropped after use,
		// so one big request does not pin its size for the stream's life.
		body = make([]byte, length)
	}
	if _, err := io.ReadFull(fr.r, body); err != nil {
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			return Frame{}, fmt.Errorf("%w: stream ended inside a %d-byte frame", ErrShortFrame, length)
		}
		return Frame{}, err
	}
	return parseFrameBody(body)
}

// DecodeHeader decodes a frame's msgpack header into v.
func (fr *FrameReader) DecodeHeader(f *Frame, v any) error {
	return decodeHeader(fr.dec, &fr.decSrc, f.Header, v)
}

// DecodeHeader decodes a msgpack header into v (a pointer to one of this
// package's request or response types). For the hot headers (produce, fetch,
// subscribe data and credit) it decodes straight from the bytes; for the others
// it allocates a decoder: streams should use FrameReader.DecodeHeader.
func DecodeHeader(header []byte, v any) error {
	if hp, ok := v.(headerParser); ok {
		return parseHeader(hp, header)
	}
	var src bytes.Reader
	return decodeHeader(msgpack.NewDecoder(&src), &src, header, v)
}

func decodeHeader(dec *msgpack.Decoder, src *bytes.Reader, header []byte, v any) error {
	if hp, ok := v.(headerParser); ok {
		return parseHeader(hp, header)
	}
	src.Reset(header)
	dec.ResetReader(src)
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: header: %v", ErrMalformedFrame, err)
	}
	if src.Len() != 0 {
		return fmt.Errorf("%w: header: %d trailing bytes", ErrMalformedFrame, src.Len())
	}
	return nil
}

// FrameWriter writes frames to a stream, reusing one buffer and one msgpack
// encoder. It is not safe for concurrent use.
type FrameWriter struct {
	w   io.Writer
	buf appendBuffer
	enc *msgpack.Encoder
}

// smallPayload is the largest payload copied next to the header so the frame
// goes out in one Write; bigger payloads are written separately, uncopied.
const smallPayload = 4 << 10

// NewFrameWriter returns a writer on w.
func NewFrameWriter(w io.Writer) *FrameWriter {
	fw := &FrameWriter{w: w}
	fw.enc = msgpack.NewEncoder(&fw.buf)
	return fw
}

// WriteFrame encodes header (msgpack) and writes the frame with the given
// payload pieces concatenated.
func (fw *FrameWriter) WriteFrame(fh FrameHeader, header any, payload ...[]byte) error {
	b, err := fw.AppendFrame(fh, header, payload...)
	if err != nil {
		return err
	}
	if _, err := fw.w.Write(b); err != nil {
		return err
	}
	if fw.inlined(payload) {
		return nil
	}
	for _, p := range payload {
		if _, err := fw.w.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// AppendFrame encodes the frame into the writer's buffer without writing it and
// returns the bytes, valid until the next call. Payloads larger than a few KiB
// are not included: the caller must write them after the returned bytes, as
// WriteFrame does.
func (fw *FrameWriter) AppendFrame(fh FrameHeader, header any, payload ...[]byte) ([]byte, error) {
	plen := 0
	for _, p := range payload {
		plen += len(p)
	}
	fw.buf.b = append(fw.buf.b[:0], make([]byte, FrameFixedSize)...)
	if ha, ok := header.(headerAppender); ok {
		fw.buf.b = ha.appendMsgpack(fw.buf.b)
	} else {
		fw.enc.ResetWriter(&fw.buf)
		if err := fw.enc.Encode(header); err != nil {
			return nil, fmt.Errorf("wire: encode %T: %w", header, err)
		}
	}
	hlen := len(fw.buf.b) - FrameFixedSize
	AppendFramePrefix(fw.buf.b[:0], fh, hlen, plen)
	if fw.inlined(payload) {
		for _, p := range payload {
			fw.buf.b = append(fw.buf.b, p...)
		}
	}
	return fw.buf.b, nil
}

func (fw *FrameWriter) inlined(payload [][]byte) bool {
	n := 0
	for _, p := range payload {
		n += len(p)
	}
	return n <= smallPayload
}

// EncodeHeader returns the msgpack encoding of a header (cold paths and tests).
func EncodeHeader(header any) ([]byte, error) { return msgpack.Marshal(header) }

type appendBuffer struct{ b []byte }

func (a *appendBuffer) Write(p []byte) (int, error) {
	a.b = append(a.b, p...)
	return len(p), nil
}

// WriteByte lets msgpack's encoder skip its own bufio wrapper.
func (a *appendBuffer) WriteByte(c byte) error {
	a.b = append(a.b, c)
	return nil
}

// parseHeader decodes a hot header without a msgpack.Decoder.
func parseHeader(hp headerParser, header []byte) error {
	if err := hp.parseMsgpack(header); err != nil {
		return fmt.Errorf("%w: header %T: %v", ErrMalformedFrame, hp, err)
	}
	return nil
}
