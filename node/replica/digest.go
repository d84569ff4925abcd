package replica

import (
	"fmt"
	"sync"

	"github.com/rafka/rafka/segment"
)

// Digests of committed ranges of the log, for comparing replicas (the
// consistency check, docs/replication.md). A range is given by offsets,
// not by segment, so that replicas whose segments roll at other offsets
// compare the same batches; the leader proposes ranges along its own
// segments, so that its digests of sealed segments can be cached.

// Digest is the digest of the batches whose base offsets lie in a range
// (see segment.Digest).
type Digest = segment.Digest

// Range is a range of offsets [From, To).
type Range struct{ From, To int64 }

// maxCachedDigests bounds the digest cache of one partition; past it the
// cache starts again empty (a log of more sealed segments than this is
// digested again at each check).
const maxCachedDigests = 4096

// digestCache holds the digests of committed ranges within sealed
// segments. Committed batches never change (raft never truncates a
// committed entry), so such a digest stays right until the log is
// replaced (a snapshot reset) or retention deletes the range.
type digestCache struct {
	mu  sync.Mutex
	log *segment.Log // the log the entries describe
	m   map[Range]Digest
}

// SegmentRanges splits [from, to) at the bases of the log's segments: one
// range per segment the window touches, in order. Empty when from >= to.
func (p *Partition) SegmentRanges(from, to int64) ([]Range, error) {
	if err := p.unavailable(); err != nil {
		return nil, err
	}
	var out []Range
	bases := p.seg().SegmentBases()
	for i, base := range bases {
		end := to
		if i+1 < len(bases) {
			end = min(bases[i+1], to)
		}
		if r := (Range{max(base, from), end}); r.From < r.To {
			out = append(out, r)
		}
	}
	return out, nil
}

// Digest returns the digest of the batches whose base offsets lie in r,
// which must be committed (r.To at most the high watermark) and held
// (r.From at least the log start). A range that lies in sealed segments is
// cached, so a check that asks again costs nothing; others are read, with
// pace called as segment.Log.Digest documents. A batch that fails its
// checksum is an error wrapping segment.ErrCorrupt.
func (p *Partition) Digest(r Range, pace func(n int) error) (Digest, error) {
	if err := p.unavailable(); err != nil {
		return Digest{}, err
	}
	if hwm := p.hwm.Load(); r.To > hwm {
		return Digest{}, fmt.Errorf("%w: digest of [%d, %d) past the high watermark %d", segment.ErrOffsetOutOfRange, r.From, r.To, hwm)
	}
	l := p.seg()
	bases := l.SegmentBases()
	sealed := r.To <= bases[len(bases)-1]
	if sealed {
		if d, ok := p.digests.get(l, r); ok {
			return d, nil
		}
	}
	d, err := l.Digest(r.From, r.To, pace)
	if err != nil {
		return Digest{}, fmt.Errorf("replica: %s/%d: %w", p.topic, p.id, err)
	}
	if sealed {
		p.digests.put(l, r, d, l.StartOffset())
	}
	return d, nil
}

func (c *digestCache) get(l *segment.Log, r Range) (Digest, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.log != l {
		return Digest{}, false
	}
	d, ok := c.m[r]
	return d, ok
}

// put caches d, dropping what describes another log or offsets below the
// log start.
func (c *digestCache) put(l *segment.Log, r Range, d Digest, start int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.log != l || len(c.m) >= maxCachedDigests {
		c.log, c.m = l, make(map[Range]Digest)
	}
	for k := range c.m {
		if k.From < start {
			delete(c.m, k)
		}
	}
	c.m[r] = d
}
