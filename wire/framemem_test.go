package wire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// pausingReader serves first, then reports on waiting that it ran dry and
// blocks until resume is closed before serving rest.
type pausingReader struct {
	first, rest *bytes.Reader
	waiting     chan struct{}
	resume      chan struct{}
	paused      bool
}

func (r *pausingReader) Read(p []byte) (int, error) {
	if r.first.Len() > 0 {
		return r.first.Read(p)
	}
	if !r.paused {
		r.paused = true
		r.waiting <- struct{}{}
		<-r.resume
	}
	return r.rest.Read(p)
}

func produceFrameOf(t testing.TB, corr uint32, payload int) []byte {
	t.Helper()
	return AppendFrame(nil, FrameHeader{API: APIProduce, Corr: corr}, (&ProduceRequest{Topic: "t"}).AppendMsgpack(nil), make([]byte, payload))
}

// TestFrameReaderIdleHoldsLittleBudget: once a frame has been returned and
// the reader waits for the next one, it holds at most its small buffer, so
// idle producer streams do not hold the budget large frames need.
func TestFrameReaderIdleHoldsLittleBudget(t *testing.T) {
	for _, size := range []int{100, 40 << 10, 1 << 20, 5 << 20} {
		r := &pausingReader{
			first:   bytes.NewReader(produceFrameOf(t, 1, size)),
			rest:    bytes.NewReader(produceFrameOf(t, 2, size)),
			waiting: make(chan struct{}),
			resume:  make(chan struct{}),
		}
		var b fakeBudget
		fr := NewFrameReader(r, 0)
		fr.SetBudget(&b)
		f, err := fr.Next()
		if err != nil || len(f.Payload) != size {
			t.Fatalf("%d-byte frame: %d bytes, %v", size, len(f.Payload), err)
		}
		if b.held < f.Size()-frameLengthSize {
			t.Fatalf("%d-byte frame: budget holds %d while the frame is in use", size, b.held)
		}
		type result struct {
			f   Frame
			err error
		}
		done := make(chan result)
		go func() {
			f, err := fr.Next()
			done <- result{f, err}
		}()
		<-r.waiting // Next is blocked on the next frame's first bytes
		if b.held > smallFrameBuffer {
			t.Errorf("%d-byte frame: %d bytes of budget held while waiting for the next frame", size, b.held)
		}
		close(r.resume)
		res := <-done
		if res.err != nil || len(res.f.Payload) != size || res.f.Corr != 2 {
			t.Fatalf("%d-byte frame, second: %d bytes, corr %d, %v", size, len(res.f.Payload), res.f.Corr, res.err)
		}
		if _, err := fr.Next(); err != io.EOF {
			t.Fatalf("end: %v", err)
		}
		if b.held > smallFrameBuffer {
			t.Errorf("%d-byte frame: %d bytes of budget held at the end of the stream", size, b.held)
		}
		fr.Close()
		if b.held != 0 {
			t.Fatalf("%d-byte frame: %d bytes held after Close", size, b.held)
		}
	}
}

// loopReader serves the same bytes over and over.
type loopReader struct {
	src  *bytes.Reader
	data []byte
}

func (r *loopReader) Read(p []byte) (int, error) {
	if r.src.Len() == 0 {
		r.src.Reset(r.data)
	}
	return r.src.Read(p)
}

// TestFrameReaderLargeFramesDoNotAllocate: steady 1 MiB produce traffic
// reuses pooled buffers instead of allocating one per frame.
func TestFrameReaderLargeFramesDoNotAllocate(t *testing.T) {
	frame := produceFrameOf(t, 0, 1<<20)
	var b fakeBudget
	fr := NewFrameReader(&loopReader{src: bytes.NewReader(frame), data: frame}, 0)
	fr.SetBudget(&b)
	next := func() {
		f, err := fr.Next()
		if err != nil || len(f.Payload) != 1<<20 {
			t.Fatalf("%d bytes, %v", len(f.Payload), err)
		}
	}
	for range 3 {
		next()
	}
	if allocs := testing.AllocsPerRun(50, next); allocs != 0 && !raceEnabled {
		t.Fatalf("%v allocations per 1 MiB frame", allocs)
	}
	// The frame's buffer is charged at most a quarter over its size.
	if limit := smallFrameBuffer + len(frame)*5/4; b.held > limit {
		t.Fatalf("%d bytes held for a %d-byte frame", b.held, len(frame))
	}
	fr.Close()
	if b.held != 0 {
		t.Fatalf("%d bytes held after Close", b.held)
	}
}

func TestFrameClass(t *testing.T) {
	prevIndex, prevSize := -1, smallFrameBuffer
	for n := smallFrameBuffer + 1; n <= maxPooledFrame; n += 1 + n/64 {
		i, size := frameClass(n)
		if i < 0 || i >= len(framePools) || size < n || size > n+n/4 {
			t.Fatalf("frameClass(%d) = %d, %d", n, i, size)
		}
		switch {
		case i == prevIndex && size != prevSize, i != prevIndex && (i != prevIndex+1 || size <= prevSize):
			t.Fatalf("frameClass(%d) = %d, %d after %d, %d", n, i, size, prevIndex, prevSize)
		}
		if j, s := frameClass(size); j != i || s != size {
			t.Fatalf("class %d of size %d maps to %d, %d", i, size, j, s)
		}
		prevIndex, prevSize = i, size
	}
	if i, size := frameClass(maxPooledFrame); i != len(framePools)-1 || size != maxPooledFrame {
		t.Fatalf("frameClass(max) = %d, %d", i, size)
	}
}

// sentinelBudget refuses everything with an error that wraps ErrFrameBudget
// already, as the broker's budget does.
type sentinelBudget struct{}

func (sentinelBudget) Acquire(n int) error {
	return fmt.Errorf("%w: a %d-byte frame does not fit", ErrFrameBudget, n)
}
func (sentinelBudget) Release(int) {}

// TestFrameBudgetErrorNamesSentinelOnce: whether or not the budget's error
// wraps ErrFrameBudget, Next's error matches it and says so once.
func TestFrameBudgetErrorNamesSentinelOnce(t *testing.T) {
	for name, b := range map[string]FrameBudget{
		"wrapping": sentinelBudget{},
		"plain":    &fakeBudget{limit: 1},
	} {
		fr := NewFrameReader(bytes.NewReader(produceFrameOf(t, 0, 100)), 0)
		fr.SetBudget(b)
		_, err := fr.Next()
		if !errors.Is(err, ErrFrameBudget) {
			t.Fatalf("%s: %v", name, err)
		}
		if n := strings.Count(err.Error(), ErrFrameBudget.Error()); n != 1 {
			t.Errorf("%s: %q names %q %d times", name, err, ErrFrameBudget, n)
		}
		fr.Close()
	}
}

// TestFrameReaderReusesEarlierFrameSize: after one large frame, the next
// large frame takes a buffer of that size once past the small buffer, rather
// than doubling (and copying) its way up again.
func TestFrameReaderReusesEarlierFrameSize(t *testing.T) {
	frame := produceFrameOf(t, 0, 1<<20)
	var b fakeBudget
	fr := NewFrameReader(&loopReader{src: bytes.NewReader(frame), data: frame}, 0)
	fr.SetBudget(&b)
	if _, err := fr.Next(); err != nil {
		t.Fatal(err)
	}
	b.peak = b.held
	if _, err := fr.Next(); err != nil {
		t.Fatal(err)
	}
	_, class := frameClass(len(frame) - frameLengthSize)
	if limit := smallFrameBuffer + class; b.peak > limit {
		t.Fatalf("second frame: budget peaked at %d, want at most %d (small buffer and one frame buffer)", b.peak, limit)
	}
	fr.Close()
}
