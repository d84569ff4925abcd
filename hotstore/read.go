package hotstore

// This file holds the reader side of LockFreeRing: the search of the live
// chunks and the pinned copy.

// readResult is the outcome of one read attempt.
type readResult int

const (
	readHit readResult = iota
	readMiss
	readRetry // the writer moved the ring during the search: try again
)

// Read appends to dst the entries starting with the one whose range contains
// offset, in order and contiguous, totalling at most maxBytes bytes but always
// at least one entry, and returns the extended slice and the offset after the
// last entry copied. It reports ok == false, with dst and offset returned
// unchanged, when offset is older than the oldest entry held or at or after
// the newest one, or when the entries were evicted while it searched for
// them. Read is safe to call from any number of goroutines, concurrently with
// Append and Reset, and takes no lock.
func (r *LockFreeRing) Read(offset int64, maxBytes int, dst []byte) (out []byte, next int64, ok bool) {
	for range readAttempts {
		out, next, res := r.read(offset, maxBytes, dst)
		switch res {
		case readHit:
			r.hits.Add(1)
			return out, next, true
		case readMiss:
			r.misses.Add(1)
			return dst, offset, false
		}
	}
	r.misses.Add(1)
	return dst, offset, false
}

func (r *LockFreeRing) read(offset int64, maxBytes int, dst []byte) ([]byte, int64, readResult) {
	// Load first before last: first <= last at every instant and both only
	// grow, so f <= l here.
	f := r.first.Load()
	l := r.last.Load()
	if f == l {
		return nil, 0, readMiss
	}
	base, gen, ok := r.peek(f)
	if !ok {
		return nil, 0, readRetry
	}
	if offset < base {
		return nil, 0, readMiss
	}

	// Binary search for the newest chunk in [f, l) whose base <= offset.
	// All chunks live at one instant share a generation and their bases grow
	// with their sequence; a chunk that left its slot or belongs to another
	// generation means the ring moved: start again.
	lo, hi := f, l-1 // invariant: chunk lo has base <= offset; the answer is in [lo, hi]
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		b, g, ok := r.peek(mid)
		if !ok || g != gen {
			return nil, 0, readRetry
		}
		if b <= offset {
			lo = mid
		} else {
			hi = mid - 1
		}
	}

	c := r.pin(lo)
	if c == nil {
		return nil, 0, readRetry
	}
	n := int(c.n.Load())
	ents := c.ents[:n]
	k := searchNext(ents, offset)
	if k == n {
		c.unpin()
		if lo == l-1 && r.last.Load() == l {
			// c is the newest chunk and offset is past its last published
			// entry: offset is at or after the newest entry.
			return nil, 0, readMiss
		}
		return nil, 0, readRetry
	}

	// Copy runs of entries, one copy per chunk, following the chain of
	// chunks while the next one continues the same generation at the offset
	// where the previous ended. c is pinned at the top of each iteration.
	out := dst
	total := 0
	var next int64
	seq := lo
	for {
		start := 0
		if k > 0 {
			start = ents[k-1].end
		}
		j := k
		// Take entries while they fit; the very first always goes.
		for j < len(ents) && (total == 0 && j == k || total+ents[j].end-start <= maxBytes) {
			j++
		}
		end := ents[j-1].end
		out = append(out, c.data[start:end]...)
		total += end - start
		next = ents[j-1].next
		if j < len(ents) {
			break // the next entry does not fit
		}
		// c is exhausted as far as we loaded n; the writer may have
		// published more entries since.
		if n2 := int(c.n.Load()); n2 > n {
			n, ents, k = n2, c.ents[:n2], j
			if total+ents[k].end-ents[k-1].end > maxBytes {
				break
			}
			continue
		}
		c.unpin()
		c = nil
		seq++
		nc := r.pin(seq)
		if nc == nil {
			break
		}
		c = nc
		if c.gen.Load() != gen || c.base.Load() != next {
			break
		}
		n = int(c.n.Load())
		ents = c.ents[:n]
		k = 0
		if total+ents[0].end > maxBytes {
			break
		}
	}
	if c != nil {
		c.unpin()
	}
	return out, next, readHit
}

// searchNext returns the index of the first entry with next > offset, or
// len(ents) if there is none.
func searchNext(ents []ent, offset int64) int {
	lo, hi := 0, len(ents)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if ents[mid].next > offset {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}
