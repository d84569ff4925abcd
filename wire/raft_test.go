package wire

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestRaftMessagesSize(t *testing.T) {
	for _, c := range headerCases() {
		if m, ok := c.v.(*RaftMessages); ok {
			if got, want := m.SizeMsgpack(), len(m.AppendMsgpack(nil)); got != want {
				t.Fatalf("%+v: SizeMsgpack %d, encoding %d bytes", m, got, want)
			}
		}
	}
}

func TestRaftMessagesCheckFrame(t *testing.T) {
	m := &RaftMessages{ClusterID: "c1", From: 7, FromAddr: "127.0.0.1:9092", Count: MaxRaftBatch}
	fixed := FrameFixedSize + m.SizeMsgpack()
	if err := m.CheckFrame(1000-fixed, 1000); err != nil {
		t.Fatalf("frame of exactly the limit: %v", err)
	}
	if err := m.CheckFrame(1001-fixed, 1000); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("frame one byte over: %v", err)
	}
	if err := m.CheckFrame(DefaultMaxFrameSize, 0); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("default limit: %v", err)
	}
	if err := m.CheckFrame(-1, 0); !errors.Is(err, ErrMalformedFrame) {
		t.Fatalf("negative payload: %v", err)
	}
	m.Count++
	if err := m.CheckFrame(0, 0); !errors.Is(err, ErrMalformedFrame) {
		t.Fatalf("count over MaxRaftBatch: %v", err)
	}
}

// TestRaftFrame: a raft frame as a broker sends it (opaque payload, no
// response) comes back whole through a FrameReader, and a frame that passes
// CheckFrame with a given limit passes the reader's limit too.
func TestRaftFrame(t *testing.T) {
	m := RaftMessages{ClusterID: "c1", From: 3, FromAddr: "[::1]:9000", Count: 2}
	payload := []byte(strings.Repeat("envelope", 100))
	limit := FrameFixedSize + m.SizeMsgpack() + len(payload)
	if err := m.CheckFrame(len(payload), limit); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := NewFrameWriter(&buf).WriteFrame(FrameHeader{API: APIRaft}, m, payload); err != nil {
		t.Fatal(err)
	}
	fr := NewFrameReader(&buf, limit)
	defer fr.Close()
	f, err := fr.Next()
	if err != nil {
		t.Fatal(err)
	}
	var got RaftMessages
	if err := fr.DecodeHeader(&f, &got); err != nil || got != m || !bytes.Equal(f.Payload, payload) || f.API != APIRaft {
		t.Fatalf("%v %+v", err, got)
	}
}
