package node

import (
	"context"

	"github.com/rafka/rafka/wire"
)

// VerifyOn answers an APIVerify request as broker b does (forwarding the
// partitions it does not lead).
func VerifyOn(ctx context.Context, b *Broker, topic string, partitions ...int32) *wire.VerifyResponse {
	return b.handleVerify(ctx, &wire.VerifyRequest{Topic: topic, Partitions: partitions})
}

// VerifyMetrics is what rafka_replica_verify_runs_total and
// rafka_replica_divergent_ranges report on b.
func VerifyMetrics(b *Broker) (runs uint64, divergent int) {
	b.verify.mu.Lock()
	defer b.verify.mu.Unlock()
	for _, d := range b.verify.divergent {
		divergent += d
	}
	return b.verify.runs.Get(), divergent
}
