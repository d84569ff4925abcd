package client

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff returns the delay before retry number attempt (1 for the first
// retry): base doubled per attempt, capped at maxDelay, with "equal jitter"
// (a uniformly random point in the upper half) so that clients that failed
// together do not retry in lockstep.
func backoff(attempt int, base, maxDelay time.Duration) time.Duration {
	d := base
	for i := 1; i < attempt && d < maxDelay; i++ {
		d *= 2
	}
	d = min(d, maxDelay)
	half := d / 2
	return half + rand.N(half+1)
}

// sleepCtx waits for d or until ctx is done, returning ctx's error then.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
