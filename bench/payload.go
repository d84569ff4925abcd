package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
)

// StampSize is the number of bytes Stamp writes at the start of a value.
const StampSize = 8

// payloadBlock is the unit of compressibility: each block of this many
// bytes starts with random bytes and ends with a run of one repeated byte,
// which lz4 encodes as a single match. Large enough that lz4's per-sequence
// overhead (about 3 bytes) stays near 1%.
const payloadBlock = 256

// minPayloadPool is the smallest buffer values are cut from: much larger
// than lz4's 64 KiB window and than a default 1 MiB batch, so compression
// finds only the redundancy that was asked for, not repeated values.
const minPayloadPool = 8 << 20

// Payloads hands out record values of one size. It is not safe for
// concurrent use: give each producer its own, made with Fork (which shares
// the bytes) or NewPayloads.
type Payloads struct {
	size int
	buf  []byte
	off  int
}

// NewPayloads returns a generator of size-byte values whose lz4-compressed
// size is about (1-compressibility) of the original: in every 256-byte
// block, a fraction compressibility of the bytes is a run of one byte and
// the rest is random. compressibility 0 is incompressible, 0.9 shrinks to
// about a tenth. seed makes the bytes reproducible.
func NewPayloads(size int, compressibility float64, seed uint64) (*Payloads, error) {
	if size < 0 {
		return nil, fmt.Errorf("bench: payload size %d < 0", size)
	}
	if compressibility < 0 || compressibility > 1 || compressibility != compressibility {
		return nil, fmt.Errorf("bench: compressibility %v outside [0, 1]", compressibility)
	}
	n := max(minPayloadPool, 4*size)
	n = (n + payloadBlock - 1) / payloadBlock * payloadBlock
	buf := make([]byte, n+size) // the tail repeats the head so a value never wraps
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	random := payloadBlock - int(compressibility*payloadBlock+0.5)
	for blk := 0; blk < n; blk += payloadBlock {
		b := buf[blk : blk+payloadBlock]
		for i := 0; i < random; i += 8 {
			var w [8]byte
			binary.LittleEndian.PutUint64(w[:], rng.Uint64())
			copy(b[i:random], w[:])
		}
		fill := byte(rng.Uint32())
		for i := random; i < payloadBlock; i++ {
			b[i] = fill
		}
	}
	copy(buf[n:], buf[:size])
	return &Payloads{size: size, buf: buf[:n+size]}, nil
}

// forkStride is how far apart in the pool Fork starts successive
// generators: more than a default batch, and odd so that their values do
// not line up with the block layout alike.
const forkStride = 1<<20 + 13

// Fork returns a generator of the same values starting i strides further
// into the same bytes: producers each get their own without generating
// (and holding) a pool each. The pool is never written after NewPayloads,
// so forks may be used concurrently, each by one goroutine.
func (p *Payloads) Fork(i int) *Payloads {
	pool := len(p.buf) - p.size
	return &Payloads{size: p.size, buf: p.buf, off: (p.off + i%pool*(forkStride%pool)) % pool}
}

// Size is the length of every value Next returns.
func (p *Payloads) Size() int { return p.size }

// Next returns the next value. It aliases the generator's buffer: callers
// that modify it (Stamp) must copy it first; the client copies values on
// Produce, so a value may be handed to it directly.
func (p *Payloads) Next() []byte {
	pool := len(p.buf) - p.size
	v := p.buf[p.off : p.off+p.size]
	// Advance by an odd number of bytes past the value so successive values
	// do not start on block boundaries in lockstep with the block layout.
	p.off += p.size + 13
	if p.off >= pool {
		p.off -= pool
	}
	return v
}

// errNoStamp reports a value too short to carry a timestamp.
var errNoStamp = errors.New("bench: value shorter than the 8-byte timestamp")

// Stamp writes t (Unix nanoseconds) into the first 8 bytes of v.
func Stamp(v []byte, unixNano int64) error {
	if len(v) < StampSize {
		return errNoStamp
	}
	binary.LittleEndian.PutUint64(v, uint64(unixNano))
	return nil
}

// ReadStamp returns the Unix nanoseconds Stamp wrote into v.
func ReadStamp(v []byte) (int64, error) {
	if len(v) < StampSize {
		return 0, errNoStamp
	}
	return int64(binary.LittleEndian.Uint64(v)), nil
}
