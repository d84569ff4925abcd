package load

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestFailoverConfigValidate(t *testing.T) {
	if err := (FailoverConfig{}).WithDefaults().Validate(3); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	err := FailoverConfig{ReplicationFactor: 3, RecordSize: 8, Rate: -1, Kills: -1, Settle: -time.Second}.WithDefaults().Validate(2)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"replication factor 3", "record size 8", "rate -1", "kills -1", "negative"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not report %q", err, want)
		}
	}
}

// TestFailover kills the leader of a partition while producing and checks
// that nothing acknowledged is lost. With one replica the killed broker is
// restarted at once; three replicas need replication between brokers and
// are skipped while the broker refuses more than one replica.
func TestFailover(t *testing.T) {
	for _, rf := range []int32{1, 3} {
		t.Run(map[int32]string{1: "one replica", 3: "three replicas"}[rf], func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cl := startCluster(t, ctx, 3)
			r, err := RunFailover(ctx, cl.C, FailoverConfig{ReplicationFactor: rf, Rate: 1000, Kills: 2,
				Settle: 500 * time.Millisecond, Duration: time.Minute, Fsync: "never"}, Options{})
			if err != nil && r == nil && rf > 1 && strings.Contains(err.Error(), "one replica per partition") {
				t.Skipf("replication is not available: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Kills) != 2 || r.Lost != 0 || r.Acked == 0 || r.Read < r.Acked || r.OutOfOrder != 0 {
				t.Fatalf("%+v", r)
			}
			for i, k := range r.Kills {
				if k.RecoveryMs < 0 || k.Spike.Count == 0 || k.Broker == "" {
					t.Errorf("kill %d: %+v", i+1, k)
				}
			}
			if r.RecoveryMaxMs < r.RecoveryP50Ms || len(r.Brokers) != 3 {
				t.Errorf("recovery p50 %v max %v, %d brokers", r.RecoveryP50Ms, r.RecoveryMaxMs, len(r.Brokers))
			}
			var restarts int
			for _, u := range r.Brokers {
				restarts += u.Restarts
			}
			if restarts != 2 {
				t.Errorf("%d restarts in %+v", restarts, r.Brokers)
			}
		})
	}
}
