package group

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"
)

// benchCluster starts n drivers with the given tick hosting groups 1..groups,
// each group led by driver (g mod n)+1.
func benchCluster(b *testing.B, n int, groups uint64, tick time.Duration, file bool, gcfg GroupConfig) *cluster {
	c := newCluster(b, file)
	c.tick = tick
	c.gcfg = gcfg
	members := ids(n)
	for _, id := range members {
		c.startDriver(id)
	}
	for g := uint64(1); g <= groups; g++ {
		for _, id := range members {
			c.addGroup(id, g, members)
		}
	}
	for g := uint64(1); g <= groups; g++ {
		if err := c.drivers[g%uint64(n)+1].Campaign(g); err != nil {
			b.Fatal(err)
		}
	}
	waitFor(b, "every group to have a leader", func() bool {
		for g := uint64(1); g <= groups; g++ {
			s, _ := c.drivers[g%uint64(n)+1].Status(g)
			if s.Leader == 0 {
				return false
			}
		}
		return true
	})
	return c
}

// BenchmarkProposeLatency measures propose-to-applied latency, one proposal
// at a time, on 3 drivers with FileStorage (fsync per Save on a tmp dir),
// proposing on the leader and on a follower.
func BenchmarkProposeLatency(b *testing.B) {
	for _, on := range []string{"leader", "follower"} {
		b.Run(on, func(b *testing.B) {
			c := benchCluster(b, 3, 1, 100*time.Millisecond, true, GroupConfig{})
			s, _ := c.drivers[2].Status(1)
			id := s.Leader
			if on == "follower" {
				id = id%3 + 1
			}
			data := make([]byte, 128)
			ctx := context.Background()
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, _, err := c.drivers[id].Propose(ctx, 1, data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkIdleGroups measures the CPU that idle groups cost: groups x 3
// drivers in one process, in-memory storage, ticking with nothing proposed.
// Each op is one tick interval of wall time; cpu-%-of-core is the process's
// user+system time over wall time, per-broker-% a third of it (each driver
// stands for one broker hosting a replica of every group). With quiesce,
// the groups are Quiesce groups and the measurement starts once they are
// all quiesced.
func BenchmarkIdleGroups(b *testing.B) {
	for _, tc := range []struct {
		groups  uint64
		tick    time.Duration
		quiesce bool
	}{
		{100, 100 * time.Millisecond, false}, {1000, 100 * time.Millisecond, false}, {1000, 10 * time.Millisecond, false},
		{1000, 100 * time.Millisecond, true}, {10000, 100 * time.Millisecond, true},
	} {
		b.Run(fmt.Sprintf("groups=%d/tick=%v/quiesce=%v", tc.groups, tc.tick, tc.quiesce), func(b *testing.B) {
			c := benchCluster(b, 3, tc.groups, tc.tick, false, GroupConfig{Quiesce: tc.quiesce})
			if tc.quiesce {
				waitFor(b, "every group to quiesce", func() bool {
					for _, d := range c.drivers {
						if st := d.Stats(); st.Quiesced != int(tc.groups) {
							return false
						}
					}
					return true
				})
			}
			var sentBefore uint64
			for _, d := range c.drivers {
				sentBefore += d.Stats().MessagesSent
			}
			before := cpuTime()
			start := time.Now()
			b.ResetTimer()
			for b.Loop() {
				time.Sleep(tc.tick)
			}
			b.StopTimer()
			wall := time.Since(start)
			cpu := 100 * float64(cpuTime()-before) / float64(wall)
			b.ReportMetric(cpu, "cpu-%-of-core")
			b.ReportMetric(cpu/float64(len(c.drivers)), "per-broker-%")
			var sent uint64
			for _, d := range c.drivers {
				sent += d.Stats().MessagesSent
			}
			b.ReportMetric(float64(sent-sentBefore)/wall.Seconds(), "msgs/s")
		})
	}
}

// cpuTime is the process's user plus system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
