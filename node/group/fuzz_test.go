package group

import (
	"errors"
	"testing"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// seedEnvelopes is a batch like the ones drivers exchange.
func seedEnvelopes() []Envelope {
	return []Envelope{
		{Group: 1, Msg: &pb.Message{Type: pb.MsgHeartbeat.Enum(), To: new(uint64(2)), From: new(uint64(1)), Term: new(uint64(3)), Commit: new(uint64(9))}},
		{Group: 1 << 40, Msg: &pb.Message{Type: pb.MsgApp.Enum(), To: new(uint64(2)), From: new(uint64(1)), Term: new(uint64(3)),
			LogTerm: new(uint64(3)), Index: new(uint64(8)), Commit: new(uint64(8)),
			Entries: []*pb.Entry{{Term: new(uint64(3)), Index: new(uint64(9)), Type: pb.EntryNormal.Enum(), Data: []byte("0123456789abcdefhello")}}}},
		{Group: 5, Msg: &pb.Message{Type: pb.MsgSnap.Enum(), To: new(uint64(2)), From: new(uint64(1)),
			Snapshot: &pb.Snapshot{Data: []byte("state"), Metadata: &pb.SnapshotMetadata{Index: new(uint64(4)), Term: new(uint64(2)),
				ConfState: &pb.ConfState{Voters: []uint64{1, 2, 3}}}}}},
	}
}

func TestEnvelopesRoundTrip(t *testing.T) {
	envs := seedEnvelopes()
	b, err := AppendEnvelopes([]byte("prefix"), envs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseEnvelopes(b[len("prefix"):], 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := range envs {
		if got[i].Group != envs[i].Group || !proto.Equal(got[i].Msg, envs[i].Msg) {
			t.Fatalf("envelope %d: got %v want %v", i, got[i], envs[i])
		}
	}
	if _, err := ParseEnvelopes(b[len("prefix"):], 2); !errors.Is(err, ErrMalformedEnvelopes) {
		t.Fatalf("over the count limit: %v", err)
	}
	if _, err := ParseEnvelopes(append(b[len("prefix"):], 0), 3); !errors.Is(err, ErrMalformedEnvelopes) {
		t.Fatalf("trailing byte: %v", err)
	}
	if _, err := AppendEnvelopes(nil, []Envelope{{Group: 0, Msg: &pb.Message{}}}); !errors.Is(err, ErrMalformedEnvelopes) {
		t.Fatalf("group 0: %v", err)
	}
}

// FuzzParseEnvelopes: no panic on any input, and what parses re-encodes to a
// batch that parses to equal envelopes.
func FuzzParseEnvelopes(f *testing.F) {
	b, err := AppendEnvelopes(nil, seedEnvelopes())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte{0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		envs, err := ParseEnvelopes(b, 1024)
		if err != nil {
			if !errors.Is(err, ErrMalformedEnvelopes) {
				t.Fatalf("error %v is not ErrMalformedEnvelopes", err)
			}
			return
		}
		b2, err := AppendEnvelopes(nil, envs)
		if err != nil {
			t.Fatal(err)
		}
		envs2, err := ParseEnvelopes(b2, 1024)
		if err != nil {
			t.Fatalf("re-encoded batch does not parse: %v", err)
		}
		if len(envs2) != len(envs) {
			t.Fatalf("%d envelopes, then %d", len(envs), len(envs2))
		}
		for i := range envs {
			if envs[i].Group != envs2[i].Group || !proto.Equal(envs[i].Msg, envs2[i].Msg) {
				t.Fatalf("envelope %d changed in the round trip", i)
			}
		}
	})
}
