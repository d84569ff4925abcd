package segment

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rafka/rafka/wire"
)

// Log is a partition's log: an ordered list of segments, the last of which
// (the active segment) takes appends. See doc.go for the contract and the lock
// order.
type Log struct {
	dir string
	fs  FS

	// lifeMu serialises Close and SetOptions, which stop and start the
	// fsync goroutines.
	lifeMu sync.Mutex
	// retMu serialises EnforceRetention runs; taken before mu, and held while
	// files are deleted without mu.
	retMu sync.Mutex

	// syncMu serialises fsync rounds (syncOnce), so that durable only grows.
	syncMu sync.Mutex

	// mu guards the fields below and the writer state of every segment. It is
	// held across the pwrite of an append (that is what orders appends) and
	// across a roll.
	mu     sync.Mutex
	opts   Options
	active *segment
	closed bool

	// Published state, written under mu, read lock-free.
	segs     atomic.Pointer[[]*segment] // immutable list, oldest first
	start    atomic.Int64
	next     atomic.Int64
	size     atomic.Int64
	durable  atomic.Int64 // every offset below it is fsynced
	isClosed atomic.Bool
	mode     atomic.Int64 // FsyncMode in force
	maxBatch atomic.Int64
	sticky   atomic.Pointer[error] // first fsync failure; set once

	// gcMu guards the group-commit handoff (a leaf lock).
	gcMu     sync.Mutex
	pending  *round // the round the next waiters join; nil until one does
	syncerOn bool   // a syncer goroutine is serving rounds

	kick chan struct{} // wakes the syncer; capacity 1
	stop chan struct{} // closed to stop the fsync goroutines
	wg   sync.WaitGroup

	onSync atomic.Pointer[func(time.Duration)] // Options.OnSync in force

	// flushMu guards the rolled segments waiting for their fsync (flush.go)
	// and how far they are flushed; a leaf.
	flushMu   sync.Mutex
	unflushed []pendingFlush // oldest first; each holds a segment reference
	flushedTo int64          // every rolled segment ending at or below it is flushed

	// cleanMu guards cleanAt and serialises writes of the clean marker: the
	// flusher and Close raise it, TruncateFrom lowers it. Taken after mu
	// (by TruncateFrom), before flushMu.
	cleanMu   sync.Mutex
	cleanAt   int64
	flushKick chan struct{} // wakes the flusher; capacity 1
	flushStop chan struct{} // closed by Close to stop the flusher
	flushWG   sync.WaitGroup
}

// round is one group-commit fsync. Its fields are written before done is
// closed.
type round struct {
	done chan struct{}
	err  error
}

// AppendResult gives the offsets an Append assigned.
type AppendResult struct {
	BaseOffset int64 // base offset of the first batch
	LastOffset int64 // last offset of the last batch
	NextOffset int64 // the log's next offset after the append
	// Spans describes each stored batch, in order, so that callers need not
	// parse the headers again (to cache the batches, say).
	Spans []Span
}

// Span is one batch of an append, as stored.
type Span struct {
	BaseOffset   int64 // offset stamped on the batch
	NextOffset   int64 // BaseOffset plus the offsets the batch takes
	MaxTimestamp int64 // the batch header's max timestamp
	Start, Len   int   // the batch is batches[Start:Start+Len] of the append
}

// Open opens the log in dir, creating dir and an empty first segment as
// needed, and recovers it: see doc.go. The recovered data is fsynced before
// Open returns.
func Open(dir string, opts Options) (*Log, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	fs := opts.FS
	if err := fs.MkdirAll(dir); err != nil {
		return nil, ioError("mkdir", dir, err)
	}
	bases, orphans, err := listSegments(fs, dir)
	if err != nil {
		return nil, err
	}
	for _, name := range orphans {
		opts.Logger.Info("segment: removing orphan index file", "dir", dir, "file", name)
		if err := fs.Remove(dir + "/" + name); err != nil {
			return nil, ioError("remove", name, err)
		}
	}
	var segs []*segment
	fail := func(err error) (*Log, error) {
		for _, s := range segs {
			s.release()
		}
		return nil, err
	}
	if len(bases) == 0 {
		s, err := createSegment(fs, dir, opts.InitialOffset, opts.SegmentBytes, 0)
		if err != nil {
			return nil, err
		}
		segs = append(segs, s)
		if err := fs.SyncDir(dir); err != nil {
			return fail(ioError("fsync", dir, err))
		}
	}
	clean, ok, err := readClean(fs, dir, &opts)
	if err != nil {
		return nil, err
	}
	if !ok && len(bases) > 0 {
		// No marker: a log written before markers existed, when every
		// segment was fsynced before the next one was created.
		clean = bases[len(bases)-1]
	}
	for i := 0; i < len(bases); i++ {
		base := bases[i]
		var s *segment
		var err error
		if last := i == len(bases)-1; !last && bases[i+1] <= clean {
			s, err = openSealed(fs, dir, base, &opts)
		} else {
			nextBase := int64(-1)
			if !last {
				nextBase = bases[i+1]
			}
			var active bool
			s, active, err = recoverSegment(fs, dir, base, clean, nextBase, &opts)
			if err == nil && active && !last {
				err = removeSegmentsAfter(fs, dir, bases[i+1:], s, &opts)
				bases = bases[:i+1]
			}
		}
		if err != nil {
			if s != nil {
				s.release()
			}
			return fail(err)
		}
		if i > 0 {
			if prev := segs[i-1].next.Load(); prev != base {
				s.release()
				return fail(fmt.Errorf("%w: %s: segment ends at offset %d but the next one starts at %d",
					ErrCorrupt, dir, prev, base))
			}
		}
		segs = append(segs, s)
	}
	act := segs[len(segs)-1]
	if err := act.logF.Sync(); err != nil {
		return fail(ioError("fsync", act.logName, err))
	}
	if err := writeClean(fs, dir, act.next.Load()); err != nil {
		return fail(err)
	}
	l := &Log{dir: dir, fs: fs, opts: opts, active: act, kick: make(chan struct{}, 1),
		flushKick: make(chan struct{}, 1), flushStop: make(chan struct{}), cleanAt: act.next.Load()}
	l.flushedTo = act.next.Load()
	var size int64
	for _, s := range segs {
		size += s.written.Load()
	}
	l.segs.Store(&segs)
	l.start.Store(segs[0].base)
	l.next.Store(act.next.Load())
	l.durable.Store(act.next.Load())
	l.size.Store(size)
	l.maxBatch.Store(int64(opts.MaxBatchBytes))
	l.mode.Store(int64(opts.Fsync.Mode))
	l.onSync.Store(&opts.OnSync)
	l.startGoroutines(opts.Fsync)
	l.flushWG.Add(1)
	go l.flusher(l.flushStop)
	return l, nil
}

// removeSegmentsAfter deletes the segments with the given base offsets, which
// follow kept, the segment where recovery cut the log: they hold no
// acknowledged data (see doc.go). kept's truncation is made durable first;
// the newest go first.
func removeSegmentsAfter(fs FS, dir string, bases []int64, kept *segment, o *Options) error {
	if err := kept.logF.Sync(); err != nil {
		return ioError("fsync", kept.logName, err)
	}
	for i := len(bases) - 1; i >= 0; i-- {
		s := newSegment(fs, dir, bases[i])
		o.Logger.Warn("segment: deleting segment after the recovery cut", "file", s.logName,
			"cut_at_offset", kept.next.Load())
		if err := s.removeFiles(); err != nil {
			return err
		}
	}
	if err := fs.SyncDir(dir); err != nil {
		return ioError("fsync", dir, err)
	}
	return nil
}

func (l *Log) warn(msg string, err error) {
	l.opts.Logger.Warn("segment: "+msg, "dir", l.dir, "err", err)
}

func (l *Log) stickyErr() error {
	if p := l.sticky.Load(); p != nil {
		return *p
	}
	return nil
}

// validateAppend checks every batch of an append and appends a span for
// each to spans, with its position, length and max timestamp, and the
// offsets it takes in NextOffset (BaseOffset left 0; Append fills both in).
// It returns the spans and how many offsets the batches occupy.
func validateAppend(batches []byte, maxBatch int, spans []Span) ([]Span, int64, error) {
	if len(batches) == 0 {
		return spans, 0, fmt.Errorf("segment: empty append: %w", wire.ErrCorruptBatch)
	}
	if len(batches) >= maxAppendBytes {
		return spans, 0, fmt.Errorf("segment: append of %d bytes: %w", len(batches), wire.ErrBatchTooLarge)
	}
	var offsets int64
	for p, i := 0, 0; p < len(batches); i++ {
		h, n, err := wire.VerifyBatch(batches[p:], maxBatch)
		if err != nil {
			if errors.Is(err, wire.ErrShortBatch) {
				err = fmt.Errorf("%w: %w", wire.ErrCorruptBatch, err)
			}
			return spans, 0, fmt.Errorf("segment: batch %d at byte %d: %w", i, p, err)
		}
		c := int64(h.OffsetCount())
		spans = append(spans, Span{NextOffset: c, MaxTimestamp: h.MaxTimestamp, Start: p, Len: n})
		offsets += c
		p += n
	}
	if offsets > math.MaxUint32 {
		return spans, 0, fmt.Errorf("segment: append spans %d offsets: %w", offsets, wire.ErrBatchTooLarge)
	}
	return spans, offsets, nil
}

// Append stores one or more complete, concatenated batches: AppendSpans with
// spans of its own.
func (l *Log) Append(batches []byte, term uint64) (AppendResult, error) {
	return l.AppendSpans(batches, term, nil)
}

// AppendSpans stores one or more complete, concatenated batches. It verifies
// all of them first (header, checksum, MaxBatchBytes) and stores nothing if
// any is bad; the error then wraps wire.ErrCorruptBatch or
// wire.ErrBatchTooLarge. It stamps each batch's base offset (consecutive from
// NextOffset) and term in the caller's buffer, writes them with one pwrite
// and publishes them to readers. It does not wait for fsync: see
// WaitDurable. Each header is parsed once: the result's Spans (spans[:0]
// grown as needed, so a caller can reuse one slice) describe the batches.
// The caller must not change batches during the call. Safe for concurrent
// use.
func (l *Log) AppendSpans(batches []byte, term uint64, spans []Span) (AppendResult, error) {
	spans, offsets, err := validateAppend(batches, int(l.maxBatch.Load()), spans[:0])
	if err != nil {
		return AppendResult{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return AppendResult{}, ErrClosed
	}
	if err := l.stickyErr(); err != nil {
		return AppendResult{}, err
	}
	n := int64(len(batches))
	if err := l.makeRoomLocked(n, offsets); err != nil {
		return AppendResult{}, err
	}
	s := l.active
	base := s.next.Load()
	next := base
	for i := range spans {
		sp := &spans[i]
		b := batches[sp.Start:]
		wire.SetBaseOffset(b, next)
		wire.SetTerm(b, term)
		sp.BaseOffset = next
		next += sp.NextOffset
		sp.NextOffset = next
	}
	pos := s.written.Load()
	if _, err := s.logF.WriteAt(batches, pos); err != nil {
		// Nothing is published; the next append overwrites what was written.
		return AppendResult{}, ioError("write", s.logName, err)
	}
	l.indexLocked(s, spans, pos)
	if pos == 0 {
		s.created = l.opts.Now()
	}
	s.written.Store(pos + n)
	s.next.Store(next)
	l.size.Add(n)
	l.next.Store(next)
	return AppendResult{BaseOffset: base, LastOffset: next - 1, NextOffset: next, Spans: spans}, nil
}

// indexLocked adds index entries for the batches just written at pos, updates
// the running max timestamp and publishes the new index snapshot.
func (l *Log) indexLocked(s *segment, spans []Span, pos int64) {
	interval := int64(l.opts.IndexIntervalBytes)
	maxTs := s.maxTs.Load()
	added := false
	for i := range spans {
		sp := &spans[i]
		at := pos + int64(sp.Start)
		if at-s.lastIdxPos >= interval {
			s.idxBuf, s.tixBuf = appendEntry(s.idxBuf, s.tixBuf, uint32(sp.BaseOffset-s.base), uint32(at), maxTs)
			s.lastIdxPos = at
			added = true
		}
		maxTs = max(maxTs, sp.MaxTimestamp)
	}
	if added {
		s.ix.Store(&index{idx: s.idxBuf, tix: s.tixBuf})
		if len(s.idxBuf)/idxEntrySize-s.flushed >= 512 {
			if err := s.flushIndexLocked(); err != nil {
				l.warn("index write failed; it will be rebuilt on open", err)
			}
		}
	}
	s.maxTs.Store(maxTs)
}

// makeRoomLocked rolls the active segment when an append of n bytes and
// offsets would overfill it or it is too old, grows an empty segment that
// is too small for the append, and extends the active segment's
// preallocation when the append would pass it.
func (l *Log) makeRoomLocked(n, offsets int64) error {
	s := l.active
	w := s.written.Load()
	if w == 0 {
		if n > s.capacity {
			return s.growLocked(n)
		}
		return s.allocateLocked(n)
	}
	roll := w+n > l.opts.SegmentBytes || w+n > s.capacity ||
		s.next.Load()+offsets-s.base > math.MaxUint32
	if age := l.opts.SegmentMaxAge; age > 0 && l.opts.Now().Sub(s.created) >= age {
		roll = true
	}
	if !roll {
		return s.allocateLocked(w + n)
	}
	return l.rollLocked(n)
}

// rollLocked seals the active segment and starts a new one. Order: write the
// old segment's index; under FsyncAlways fsync it (a failure is sticky and
// nothing changes); create and preallocate the new one (running out of space
// leaves the old one active and untouched); fsync the directory; trim the old
// one; publish the new list; hand the old one to the flusher (flush.go), which
// fsyncs it in the background under the other policies and then advances the
// clean marker. Under those policies the roll fsyncs inline only when
// maxPendingFlushes rolled segments are already waiting (backpressure).
func (l *Log) rollLocked(n int64) error {
	old := l.active
	if err := old.flushIndexLocked(); err != nil {
		l.warn("index write failed; it will be rebuilt on open", err)
	}
	inline := l.opts.Fsync.Mode == FsyncAlways || l.pendingFlushes() >= maxPendingFlushes
	if inline {
		if err := l.syncSegment(old); err != nil {
			return l.fail(err)
		}
	}
	ns, err := createSegment(l.fs, l.dir, old.next.Load(), max(l.opts.SegmentBytes, n), n)
	if err != nil {
		return err
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		l.warn("directory fsync failed", err)
	}
	old.sealLocked(l.warn)
	list := append(cloneList(l.segs.Load()), ns)
	l.segs.Store(&list)
	l.active = ns
	if !old.acquire() {
		panic("BUG: segment: the active segment has no reference")
	}
	l.flushMu.Lock()
	l.unflushed = append(l.unflushed, pendingFlush{s: old, synced: inline})
	l.flushMu.Unlock()
	select {
	case l.flushKick <- struct{}{}:
	default:
	}
	if l.opts.OnRoll != nil {
		l.opts.OnRoll()
	}
	return nil
}

func cloneList(p *[]*segment) []*segment {
	if p == nil {
		return nil
	}
	return append([]*segment(nil), (*p)...)
}

// fail records a failed fsync as the sticky error and returns it.
func (l *Log) fail(err error) error {
	e := fmt.Errorf("%w: %w", ErrSyncFailed, err)
	if l.sticky.CompareAndSwap(nil, &e) {
		l.opts.Logger.Error("segment: fsync failed; refusing appends until reopened", "dir", l.dir, "err", err)
	}
	return l.stickyErr()
}

// View is a zero-copy read result: whole batches in one segment's mapping.
// The bytes stay valid until Release; the segment is unmapped only when its
// last View is released.
type View struct {
	seg  *segment
	b    []byte
	next int64
	done atomic.Bool
}

// Bytes returns the batches. Do not use them after Release.
func (v *View) Bytes() []byte { return v.b }

// NextOffset is the offset after the last batch of the view: where the next
// Read continues.
func (v *View) NextOffset() int64 { return v.next }

// Release drops the view's reference. It is idempotent.
//
// Release also drops the view's pages from the process's mapping (not from
// the page cache): without it every segment page a consumer ever read would
// count in the broker's resident memory until the segment is unmapped.
func (v *View) Release() {
	if v.seg != nil && v.done.CompareAndSwap(false, true) {
		if d, ok := v.seg.logF.(pageDropper); ok {
			d.DropPages(v.b)
		}
		v.seg.release()
	}
}

func (l *Log) outOfRange(offset int64) error {
	return fmt.Errorf("%w: offset %d, log holds [%d, %d)", ErrOffsetOutOfRange, offset, l.start.Load(), l.next.Load())
}

// findLocked-free lookup: the segment whose range holds offset, from the
// published list (nil if none).
func findSegment(list []*segment, offset int64) *segment {
	i := sort.Search(len(list), func(i int) bool { return list[i].base > offset }) - 1
	if i < 0 {
		return nil
	}
	return list[i]
}

// Read returns whole batches starting with the one that contains offset,
// from one segment, at most maxBytes in total but always at least one batch.
// Every batch returned has been verified (header, checksum, offset
// continuity); corrupt data gives ErrCorrupt and is never returned. offset ==
// NextOffset gives an empty View; an offset outside [StartOffset, NextOffset]
// gives ErrOffsetOutOfRange. Safe for concurrent use; it never waits for
// appends.
func (l *Log) Read(offset int64, maxBytes int) (*View, error) {
	return l.read(offset, maxBytes, true)
}

// ReadUnverified is Read without the checksums: the batches' headers,
// framing and offset continuity are checked, their contents are not. It is
// for readers that verify every batch's checksum themselves and report a
// damaged one (subscribe streams to clients), so the broker does not hash
// each byte a consumer reads a second time.
func (l *Log) ReadUnverified(offset int64, maxBytes int) (*View, error) {
	return l.read(offset, maxBytes, false)
}

func (l *Log) read(offset int64, maxBytes int, checksum bool) (*View, error) {
	for range 4 {
		if l.isClosed.Load() {
			return nil, ErrClosed
		}
		// Load order matters: next before the list (a roll publishes the new
		// list before the offsets in it), start before the list (retention
		// moves start before dropping the segment).
		next := l.next.Load()
		if offset == next {
			return &View{next: offset}, nil
		}
		if offset < l.start.Load() || offset > next {
			return nil, l.outOfRange(offset)
		}
		s := findSegment(*l.segs.Load(), offset)
		if s == nil || !s.acquire() {
			continue // deleted by retention meanwhile; recheck the range
		}
		b, vnext, err := s.read(offset, maxBytes, checksum)
		if err != nil {
			s.release()
			if offset >= l.next.Load() {
				continue // TruncateFrom moved the end back meanwhile
			}
			return nil, err
		}
		return &View{seg: s, b: b, next: vnext}, nil
	}
	return nil, l.outOfRange(offset)
}

// OffsetForTimestamp returns the base offset of the first batch whose
// MaxTimestamp is >= tsMs, or NextOffset when there is none. It uses the time
// index (.tix) and walks at most about IndexIntervalBytes of headers, unless
// timestamps go backwards for long stretches.
func (l *Log) OffsetForTimestamp(tsMs int64) (int64, error) {
	for range 4 {
		if l.isClosed.Load() {
			return 0, ErrClosed
		}
		next := l.next.Load()
		var found *segment
		for _, s := range *l.segs.Load() {
			if s.written.Load() > 0 && s.maxTs.Load() >= tsMs {
				found = s
				break
			}
		}
		if found == nil {
			return next, nil
		}
		if !found.acquire() {
			continue
		}
		off, ok, err := found.offsetForTime(tsMs)
		found.release()
		if err != nil {
			return 0, err
		}
		if ok {
			return off, nil
		}
		return 0, fmt.Errorf("%w: %s: newest timestamp %d not found by a scan", ErrCorrupt, found.logName, found.maxTs.Load())
	}
	return l.next.Load(), nil
}

// StartOffset is the first offset the log holds.
func (l *Log) StartOffset() int64 { return l.start.Load() }

// NextOffset is the offset the next appended batch gets.
func (l *Log) NextOffset() int64 { return l.next.Load() }

// Size is the number of bytes of batches stored (not counting preallocation
// or indexes).
func (l *Log) Size() int64 { return l.size.Load() }

// Segments is the number of segments.
func (l *Log) Segments() int { return len(*l.segs.Load()) }

// Dir is the log's directory.
func (l *Log) Dir() string { return l.dir }

// EnforceRetention deletes the oldest whole segments that retention allows:
// while the log holds more than RetentionBytes, and those whose newest batch
// is older than RetentionAge. It never removes the active segment, so the
// log can stay above RetentionBytes by up to one segment. Files go at once;
// mappings go when the last View on them is released.
func (l *Log) EnforceRetention() (removed int, err error) {
	// retMu keeps runs one at a time, so files are deleted oldest first; the
	// deletions happen after l.mu is released, so appends never wait on
	// unlinks and directory fsyncs.
	l.retMu.Lock()
	defer l.retMu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return 0, ErrClosed
	}
	now := l.opts.Now().UnixMilli()
	list := *l.segs.Load()
	size := l.size.Load()
	n := 0
	for ; len(list)-n >= 2; n++ {
		s := list[n]
		byTime := l.opts.RetentionAge > 0 && s.maxTs.Load() < now-l.opts.RetentionAge.Milliseconds()
		bySize := l.opts.RetentionBytes > 0 && size > l.opts.RetentionBytes
		if !byTime && !bySize {
			break
		}
		size -= s.written.Load()
	}
	victims := list[:n:n]
	var freed int64
	onRetention := l.opts.OnRetention
	if n > 0 {
		rest := append([]*segment(nil), list[n:]...)
		l.start.Store(rest[0].base)
		l.segs.Store(&rest)
		for _, s := range victims {
			freed += s.written.Load()
			l.size.Add(-s.written.Load())
			s.dropped.Store(true)
		}
	}
	l.mu.Unlock()

	var errs []error
	for _, s := range victims {
		if err := s.removeFiles(); err != nil {
			errs = append(errs, err)
		}
		// Persist each deletion before the next, so a crash can only leave a
		// prefix deleted, never a hole.
		if err := l.fs.SyncDir(l.dir); err != nil {
			errs = append(errs, ioError("fsync", l.dir, err))
		}
		s.release()
	}
	if n > 0 && onRetention != nil {
		onRetention(n, freed)
	}
	return n, errors.Join(errs...)
}

// SetOptions changes the settings of an open log: roll, retention, fsync
// policy, index interval, batch limit, logger, clock and OnSync. FS cannot change and
// is ignored. Zero fields take their defaults, as in Open.
func (l *Log) SetOptions(o Options) error {
	l.lifeMu.Lock()
	defer l.lifeMu.Unlock()
	o.FS = l.fs
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return err
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	old := l.opts.Fsync
	l.opts = o
	l.maxBatch.Store(int64(o.MaxBatchBytes))
	l.onSync.Store(&o.OnSync)
	l.mu.Unlock()
	if old != o.Fsync {
		l.stopGoroutines()
		l.mode.Store(int64(o.Fsync.Mode))
		l.startGoroutines(o.Fsync)
	}
	return nil
}

// Close stops the fsync goroutines, fsyncs what was appended (under every
// policy: a clean shutdown loses nothing, for one fsync) including rolled
// segments whose background fsync was pending, records the whole log as
// clean (so the next Open verifies nothing but the index tail), trims the active
// segment's preallocated tail and drops the log's references; mappings go
// when the last View is released. Appends, reads and waits fail with
// ErrClosed afterwards. It is idempotent and returns the sticky fsync error,
// if any.
func (l *Log) Close() error {
	l.lifeMu.Lock()
	defer l.lifeMu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.isClosed.Store(true)
	l.mu.Unlock()

	l.stopGoroutines()
	close(l.flushStop)
	l.flushWG.Wait()
	err := l.syncOnce() // also fsyncs every rolled segment still waiting
	if err == nil {
		l.advanceClean(l.durable.Load())
	}
	l.releaseUnflushed()

	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.active
	if ferr := s.flushIndexLocked(); ferr != nil {
		l.warn("index write failed; it will be rebuilt on open", ferr)
	}
	// Safe while mapped: only bytes past written go (see sealLocked).
	if terr := s.logF.Truncate(s.trimLength()); terr != nil {
		l.warn("cannot trim preallocated tail", ioError("truncate", s.logName, terr))
	}
	for _, s := range *l.segs.Load() {
		s.release()
	}
	empty := []*segment{}
	l.segs.Store(&empty)
	return err
}
