package meta

import (
	"fmt"
	"testing"
)

// benchState returns a state of 10 brokers and n topics of 10 partitions.
func benchState(b *testing.B, n int) *applier {
	a := newApplier(b)
	a.must(InitCluster{ClusterID: "c"})
	for i := range 10 {
		a.must(RegisterBroker{ID: fmt.Sprint("broker-", i), RaftID: uint64(i + 1), Instance: "i", Addr: "127.0.0.1:9000", Zone: fmt.Sprint("z", i%3)})
	}
	for i := range n {
		name := fmt.Sprint("topic-", i)
		reps, err := PlaceTopic(a.s, name, 10, 1)
		if err != nil {
			b.Fatal(err)
		}
		tp := topic(name, 10, "x")
		tp.Replicas = reps
		tp.Configs = map[string]string{"retention.ms": "86400000"}
		a.must(CreateTopic{Topic: tp})
	}
	return a
}

func BenchmarkApplyCreateTopic(b *testing.B) {
	a := benchState(b, 0)
	reps, _ := PlaceTopic(a.s, "t", 10, 1)
	cmds := make([][]byte, b.N)
	for i := range cmds {
		tp := topic(fmt.Sprint("t", i), 10, "x")
		tp.Replicas = reps
		cmds[i], _ = EncodeCommand(CreateTopic{Topic: tp})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		a.index++
		if r := a.s.Apply(a.index, cmds[i]); r.Err != nil {
			b.Fatal(r.Err)
		}
	}
}

func BenchmarkTopic(b *testing.B) {
	a := benchState(b, 1000)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := a.s.Topic("topic-500"); !ok {
			b.Fatal("no topic")
		}
	}
}

func BenchmarkSnapshotRestore(b *testing.B) {
	for _, n := range []int{100, 1000} {
		a := benchState(b, n)
		snap, _ := a.s.Snapshot()
		b.Run(fmt.Sprintf("topics=%d/snapshot", n), func(b *testing.B) {
			b.SetBytes(int64(len(snap)))
			b.ReportAllocs()
			for b.Loop() {
				a.s.Snapshot()
			}
		})
		b.Run(fmt.Sprintf("topics=%d/restore", n), func(b *testing.B) {
			b.SetBytes(int64(len(snap)))
			b.ReportAllocs()
			s := NewState()
			for b.Loop() {
				if err := s.Restore(snap); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
