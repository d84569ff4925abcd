package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sync"
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
//
// A FrameReader charges its budget, in bytes of buffer capacity:
//
//   - its small buffer (at most 64 KiB, for frames that fit it), from the
//     Next call that allocates or grows it until Close: at most 64 KiB per
//     reader, idle or not;
//   - a larger frame's buffer, from the Next call that starts receiving that
//     frame until the next Next call or Close, whichever comes first. It
//     grows as bytes arrive, so the charge is at most about twice the bytes
//     received, or the size of the reader's largest earlier frame if that
//     is more, and for the complete frame at most 5/4 of its length;
//   - while a buffer grows, the old and the new one until the copy is done.
//
// So a reader waiting for the next frame, after returning any frame, holds
// at most its small buffer: idle streams do not hold budget that large
// frames on other streams need. Everything is given back by Close, and a
// refused Acquire gives back what the frame being read held.
type FrameBudget interface {
	Acquire(n int) error // reserve n more bytes, or an error (wrapped; see ErrFrameBudget)
	Release(n int)       // give back n bytes
}

// FrameReader reads frames from a stream. It is not safe for concurrent use.
//
// Memory follows the bytes received, not the bytes announced: a frame's
// buffer starts at frameChunk bytes and doubles only as data arrives, so a
// peer that announces 16 MiB and sends 4 KiB costs about 8 KiB. Past 64 KiB
// received, a frame gets at once a buffer as large as the reader's largest
// earlier frame needed (if its announced length needs that much), so a stream
// of 1 MiB frames does not copy each one through every doubling. A reader
// keeps one small buffer of at most smallFrameBuffer bytes between frames;
// a larger frame is read into a buffer taken from a package-wide pool of
// size classes, which goes back to the pool at the next Next or Close, so
// steady traffic of large frames does not allocate per frame and an idle
// reader holds no large buffer. See FrameBudget for what is charged when.
type FrameReader struct {
	r      io.Reader
	max    int
	budget FrameBudget
	buf    []byte  // small buffer kept between frames; cap(buf) <= smallFrameBuffer, a power of two
	big    *[]byte // the last frame's pooled buffer when it did not fit buf, or nil
	held   int     // bytes acquired from budget: cap(buf) + cap(*big) outside Next
	seen   int     // capacity of the largest pooled buffer a complete frame needed
	lenBuf [frameLengthSize]byte
	timer  func(reading bool)
}

// SetFrameTimer installs f, called with true once a frame's length has
// arrived and its body is awaited, and with false once the body has been
// read or reading it failed. A server uses it to bound how long one frame
// may take to arrive (a read deadline) without timing out streams that are
// idle between frames. Set it before the first Next.
func (fr *FrameReader) SetFrameTimer(f func(reading bool)) { fr.timer = f }

const (
	// smallFrameBuffer is the largest buffer a FrameReader keeps between
	// frames, charged to its budget until Close.
	smallFrameShift  = 16
	smallFrameBuffer = 1 << smallFrameShift
	// frameChunk is the first allocation for a frame; the buffer then
	// doubles as bytes arrive.
	frameChunk = 4 << 10
)

// Pooled frame buffers come in size classes above smallFrameBuffer: four
// per power of two (5/4, 6/4, 7/4 and 2 times the power of two below), so
// that a frame just over a power of two (a 1 MiB batch plus its headers)
// takes a buffer 1/4 larger rather than twice its size. Every buffer in pool
// i has capacity exactly that of class i. Frames above maxPooledFrame get a
// buffer of their own, left to the garbage collector.
const (
	maxPooledShift  = 26 // 64 MiB
	maxPooledFrame  = 1 << maxPooledShift
	classesPerShift = 4
)

var framePools [(maxPooledShift - smallFrameShift) * classesPerShift]sync.Pool

// frameClass returns the index of the smallest size class that holds n
// bytes, for smallFrameBuffer < n <= maxPooledFrame, and that class's size.
func frameClass(n int) (int, int) {
	k := bits.Len(uint(n - 1)) // 2^(k-1) < n <= 2^k, k > smallFrameShift
	step := 1 << (k - 3)       // a quarter of 2^(k-1)
	m := (n + step - 1) / step // 5..8: the class is m quarters of 2^(k-1)
	return (k-1-smallFrameShift)*classesPerShift + m - 5, m * step
}

// getFrameBuffer returns a buffer of len and cap size (a class size, or
// above maxPooledFrame any size) from the pool or newly allocated.
func getFrameBuffer(size int) *[]byte {
	if size <= maxPooledFrame {
		i, _ := frameClass(size)
		if p, ok := framePools[i].Get().(*[]byte); ok {
			return p
		}
	}
	b := make([]byte, size)
	return &b
}

// putFrameBuffer gives a buffer from getFrameBuffer back to its pool.
func putFrameBuffer(p *[]byte) {
	if n := cap(*p); n <= maxPooledFrame {
		i, _ := frameClass(n)
		framePools[i].Put(p)
	}
}

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
	fr.dropBig()
	fr.buf = nil
	fr.release(fr.held)
}

// dropBig gives the last large frame's buffer back to the pool and its bytes
// back to the budget.
func (fr *FrameReader) dropBig() {
	if fr.big != nil {
		fr.release(cap(*fr.big))
		putFrameBuffer(fr.big)
		fr.big = nil
	}
}

func (fr *FrameReader) acquire(n int) error {
	if fr.budget != nil {
		if err := fr.budget.Acquire(n); err != nil {
			if errors.Is(err, ErrFrameBudget) {
				// The budget named the sentinel already: say it once.
				return fmt.Errorf("%w (asking %d bytes for a frame)", err, n)
			}
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
	// The previous frame is done with: its large buffer, if any, goes back
	// before this call waits for the next frame's bytes.
	fr.dropBig()
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
	if fr.timer != nil {
		fr.timer(true)
	}
	body, err := fr.readBody(int(length))
	if fr.timer != nil {
		fr.timer(false)
	}
	if err != nil {
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			return Frame{}, fmt.Errorf("%w: stream ended inside a %d-byte frame", ErrShortFrame, length)
		}
		return Frame{}, err
	}
	return parseFrameBody(body)
}

// TakeBuffer hands the caller the buffer that holds the frame Next last
// returned, so that the frame's slices stay valid after the next Next. It
// returns nil when the frame sits in the reader's small buffer (frames up to
// 64 KiB): the caller copies those. The reader gives the buffer's bytes back
// to its budget, and reads the next large frame into another pooled buffer;
// the caller passes the buffer to PutFrameBuffer once it is done with the
// frame (or drops it, leaving it to the garbage collector).
func (fr *FrameReader) TakeBuffer() *[]byte {
	p := fr.big
	if p != nil {
		fr.release(cap(*p))
		fr.big = nil
	}
	return p
}

// PutFrameBuffer gives a buffer from FrameReader.TakeBuffer back to the pool
// the readers take large frame buffers from. Nothing may use it afterwards.
func PutFrameBuffer(p *[]byte) {
	if n := cap(*p); n > smallFrameBuffer && n <= maxPooledFrame {
		if _, size := frameClass(n); size == n {
			putFrameBuffer(p)
		}
	}
}

// readBody reads n bytes into the small buffer, grown up to smallFrameBuffer
// as bytes arrive, or beyond that into pooled buffers that grow the same way.
func (fr *FrameReader) readBody(n int) ([]byte, error) {
	if n <= cap(fr.buf) {
		body := fr.buf[:n:n]
		_, err := io.ReadFull(fr.r, body)
		return body, err
	}
	// work holds the bytes read so far (have) in a buffer of len(work):
	// the small buffer, kept (and charged) whatever happens, or the pooled
	// buffer pw, released and put back once replaced or on failure.
	work, have := fr.buf[:cap(fr.buf)], 0
	var pw *[]byte
	drop := func() {
		if pw != nil {
			fr.release(cap(*pw))
			putFrameBuffer(pw)
			pw = nil
		}
	}
	for have < n {
		if have == len(work) {
			size := max(2*len(work), frameChunk)
			if size <= smallFrameBuffer {
				// Grow the small buffer; it stays a power of two.
				if err := fr.acquire(size); err != nil {
					return nil, err
				}
				next := make([]byte, size)
				copy(next, work[:have])
				fr.release(cap(fr.buf))
				fr.buf, work = next, next
			} else {
				// Grown from the small buffer, skip the doublings up
				// to the size earlier frames needed.
				if pw == nil {
					size = max(size, fr.seen)
				}
				if size = min(n, size); size <= maxPooledFrame {
					_, size = frameClass(size)
				}
				if err := fr.acquire(size); err != nil {
					drop()
					return nil, err
				}
				p := getFrameBuffer(size)
				copy(*p, work[:have])
				drop()
				pw, work = p, *p
			}
		}
		m, err := io.ReadFull(fr.r, work[have:min(n, len(work))])
		have += m
		if err != nil {
			drop()
			return nil, err
		}
	}
	// A large frame keeps its buffer only until the next call, so it does
	// not pin its size (or its budget) for the stream's life.
	fr.big = pw
	fr.seen = max(fr.seen, len(work))
	return work[:n:n], nil
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
