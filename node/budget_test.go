package node

import (
	"bytes"
	"errors"
	"testing"

	"github.com/rafka/rafka/wire"
)

// FuzzBudgetReader feeds arbitrary streams through a budgetReader: the frame
// reader sees exactly the frames (and errors) it would see without it until
// a frame does not fit, the charge never exceeds the budget, and closing
// returns every byte.
func FuzzBudgetReader(f *testing.F) {
	frame := func(n int) []byte {
		return wire.AppendFrame(nil, wire.FrameHeader{API: wire.APIProduce, Corr: 1}, []byte{0x90}, make([]byte, n))
	}
	f.Add(append(frame(10), frame(100)...), uint16(200))
	f.Add(frame(1000), uint16(100))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3}, uint16(1000))
	f.Add([]byte{5, 0, 0}, uint16(10))
	f.Add(append(frame(0), 1, 0), uint16(64))
	const maxFrame = 4 << 10
	f.Fuzz(func(t *testing.T, data []byte, limit uint16) {
		fb := newFrameBudget(int64(limit), int64(limit))
		cb := &connBudget{fb: fb}
		br := newBudgetReader(bytes.NewReader(data), cb, maxFrame)
		budgeted := wire.NewFrameReader(br, maxFrame)
		direct := wire.NewFrameReader(bytes.NewReader(data), maxFrame)
		for range 1000 {
			fd, errd := direct.Next()
			fbud, errb := budgeted.Next()
			if used := fb.used.Load(); used > int64(limit) || used < 0 {
				t.Fatalf("charged %d of %d", used, limit)
			}
			if errors.Is(errb, errFrameBudget) {
				if errd == nil && int64(len(fd.Header)+len(fd.Payload)+12) <= int64(limit) {
					t.Fatalf("a %d-byte frame was refused by an empty %d-byte budget", len(fd.Header)+len(fd.Payload)+12, limit)
				}
				break
			}
			if (errd == nil) != (errb == nil) || (errd != nil && errd.Error() != errb.Error()) {
				t.Fatalf("direct: %v, budgeted: %v", errd, errb)
			}
			if errd != nil {
				break
			}
			if fd.FrameHeader != fbud.FrameHeader || !bytes.Equal(fd.Header, fbud.Header) || !bytes.Equal(fd.Payload, fbud.Payload) {
				t.Fatal("the budgeted reader changed a frame")
			}
		}
		br.close()
		br.close()
		if used := fb.used.Load(); used != 0 {
			t.Fatalf("%d bytes still charged after close", used)
		}
	})
}

// The connection budget refuses what the connection cannot hold even when
// the broker could, and the broker budget what all connections together
// cannot; refused charges leave nothing behind.
func TestFrameBudgetLimits(t *testing.T) {
	fb := newFrameBudget(100, 60)
	a, b := fb.forConn(nil), &connBudget{fb: fb}
	if err := a.Acquire(60); err != nil {
		t.Fatal(err)
	}
	if err := a.Acquire(1); !errors.Is(err, errFrameBudget) {
		t.Fatalf("over the connection budget: %v", err)
	}
	if err := b.Acquire(41); !errors.Is(err, errFrameBudget) {
		t.Fatalf("over the broker budget: %v", err)
	}
	if err := b.Acquire(40); err != nil {
		t.Fatal(err)
	}
	if fb.used.Load() != 100 || fb.peak.Load() != 100 || fb.rejected.Load() != 2 {
		t.Fatalf("used %d peak %d rejected %d", fb.used.Load(), fb.peak.Load(), fb.rejected.Load())
	}
	a.Release(60)
	b.Release(40)
	fb.done(nil)
	if fb.used.Load() != 0 || len(fb.conns) != 0 {
		t.Fatalf("used %d, %d connections left", fb.used.Load(), len(fb.conns))
	}
}
