package wire

import (
	"encoding/binary"
	"fmt"
	"io"
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

// FrameBudget bounds the memory FrameReaders hold for frames being read or
// just returned. Acquire must not block.
type FrameBudget interface {
	Acquire(n int) error // reserve n more bytes, or an error (wrapped; see ErrFrameBudget)
	Release(n int)       // give back n bytes
}

// FrameReader reads frames from a stream. It is not safe for concurrent use.
//
// Memory follows the bytes received, not the bytes announced: a frame's
// buffer starts at frameChunk bytes and doubles, up to the frame's length, only
// as data arrives, so a peer that announces 16 MiB and sends 4 KiB costs about
// 8 KiB. One buffer of at most keptFrameBuffer bytes is kept between frames; a
// larger frame gets a buffer of its own, dropped at the next Next or Close.
//
// With a FrameBudget (SetBudget), every buffer the reader holds is acquired
// from it before it is allocated: the kept buffer for as long as it is kept, a
// frame's own buffer until the next Next or Close (the returned frame's slices
// are valid until then), and while a buffer grows, both the old and the new
// one. Close gives everything back.
type FrameReader struct {
	r      io.Reader
	max    int
	budget FrameBudget
	buf    []byte // kept between frames; cap(buf) <= keptFrameBuffer
	big    []byte // the last frame's own buffer when it did not fit buf
	held   int    // bytes acquired from budget: cap(buf) + cap(big) outside Next
	lenBuf [frameLengthSize]byte
}

const (
	// keptFrameBuffer is the largest buffer a FrameReader keeps between
	// frames: room for a 1 MiB batch (the Go client's default batch limit)
	// plus headers.
	keptFrameBuffer = 2 << 20
	// frameChunk is the first allocation for a frame that does not fit the
	// kept buffer; the buffer then doubles as bytes arrive.
	frameChunk = 4 << 10
)

// NewFrameReader returns a reader that rejects frames over maxSize bytes
// (DefaultMaxFrameSize when maxSize <= 0).
func NewFrameReader(r io.Reader, maxSize int) *FrameReader {
	if maxSize <= 0 {
		maxSize = DefaultMaxFrameSize
	}
	return &FrameReader{r: r, max: maxSize}
}

// SetBudget makes the reader acquire the memory it holds from b. Call it
// before the first Next.
func (fr *FrameReader) SetBudget(b FrameBudget) { fr.budget = b }

// Close releases every buffer the reader holds, and gives their bytes back to
// the budget. The last frame's slices become invalid. It is idempotent; a
// reader may be used again after Close.
func (fr *FrameReader) Close() {
	fr.buf, fr.big = nil, nil
	fr.release(fr.held)
}

func (fr *FrameReader) acquire(n int) error {
	if fr.budget != nil {
		if err := fr.budget.Acquire(n); err != nil {
			return fmt.Errorf("%w: %d bytes for a frame: %w", ErrFrameBudget, n, err)
		}
	}
	fr.held += n
	return nil
}

func (fr *FrameReader) release(n int) {
	if n == 0 {
		return
	}
	fr.held -= n
	if fr.budget != nil {
		fr.budget.Release(n)
	}
}

// Next reads the next frame. The frame's slices are valid until the next call
// (or Close). io.EOF means the stream ended cleanly between frames; a stream
// cut inside a frame gives ErrShortFrame. After ErrFrameTooLarge,
// ErrMalformedFrame or ErrFrameBudget the stream is out of step and must be
// closed.
func (fr *FrameReader) Next() (Frame, error) {
	if fr.big != nil {
		fr.release(cap(fr.big))
		fr.big = nil
	}
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
	body, err := fr.readBody(int(length))
	if err != nil {
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			return Frame{}, fmt.Errorf("%w: stream ended inside a %d-byte frame", ErrShortFrame, length)
		}
		return Frame{}, err
	}
	return parseFrameBody(body)
}

// readBody reads n bytes into the kept buffer, or into a buffer that grows
// with the bytes received.
func (fr *FrameReader) readBody(n int) ([]byte, error) {
	if n <= cap(fr.buf) {
		body := fr.buf[:n]
		_, err := io.ReadFull(fr.r, body)
		return body, err
	}
	// work holds the bytes read so far (have) in a buffer of len(work). It
	// starts as the kept buffer, which stays held while work grows; every
	// other buffer is released once replaced or on failure.
	work, have, own := fr.buf[:cap(fr.buf)], 0, false
	drop := func() {
		if own {
			fr.release(cap(work))
		}
	}
	for have < n {
		if have == len(work) {
			size := min(n, max(2*len(work), frameChunk))
			if err := fr.acquire(size); err != nil {
				drop()
				return nil, err
			}
			next := make([]byte, size)
			copy(next, work[:have])
			drop()
			work, own = next, true
		}
		m, err := io.ReadFull(fr.r, work[have:min(n, len(work))])
		have += m
		if err != nil {
			drop()
			return nil, err
		}
	}
	if n <= keptFrameBuffer {
		fr.release(cap(fr.buf))
		fr.buf = work
	} else {
		// A rare large frame keeps its buffer only until the next call,
		// so one big request does not pin its size for the stream's life.
		fr.big = work
	}
	return work[:n], nil
}

// DecodeHeader decodes a frame's msgpack header into v, a pointer to one of
// this package's request or response types (see DecodeHeader).
func (fr *FrameReader) DecodeHeader(f *Frame, v any) error { return DecodeHeader(f.Header, v) }

// FrameWriter writes frames to a stream, reusing one buffer. It is not safe
// for concurrent use.
type FrameWriter struct {
	w   io.Writer
	buf []byte
}

// smallPayload is the largest payload copied next to the header so the frame
// goes out in one Write; bigger payloads are written separately, uncopied.
const smallPayload = 4 << 10

// NewFrameWriter returns a writer on w.
func NewFrameWriter(w io.Writer) *FrameWriter { return &FrameWriter{w: w} }

// WriteFrame encodes header (one of this package's request or response types,
// or a pointer to one) and writes the frame with the given payload pieces
// concatenated.
func (fw *FrameWriter) WriteFrame(fh FrameHeader, header any, payload ...[]byte) error {
	b, err := fw.AppendFrame(fh, header, payload...)
	if err != nil {
		return err
	}
	if _, err := fw.w.Write(b); err != nil {
		return err
	}
	if inlined(payload) {
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
// WriteFrame does. It fails with ErrNoCodec for a header that is not one of
// this package's types.
func (fw *FrameWriter) AppendFrame(fh FrameHeader, header any, payload ...[]byte) ([]byte, error) {
	ha, ok := header.(headerAppender)
	if !ok {
		return nil, fmt.Errorf("%w: %T", ErrNoCodec, header)
	}
	plen := 0
	for _, p := range payload {
		plen += len(p)
	}
	var fixed [FrameFixedSize]byte
	fw.buf = ha.AppendMsgpack(append(fw.buf[:0], fixed[:]...))
	hlen := len(fw.buf) - FrameFixedSize
	AppendFramePrefix(fw.buf[:0], fh, hlen, plen)
	if inlined(payload) {
		for _, p := range payload {
			fw.buf = append(fw.buf, p...)
		}
	}
	return fw.buf, nil
}

func inlined(payload [][]byte) bool {
	n := 0
	for _, p := range payload {
		n += len(p)
	}
	return n <= smallPayload
}
