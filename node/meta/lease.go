package meta

import (
	"sync"
	"time"
)

// Leases tracks broker heartbeats on the metadata leader, to decide whom to
// fence. It keeps no clock: every call is given the time. It is safe for
// concurrent use (heartbeat handlers renew while the driver checks).
//
// Leases live only in the leader's memory and are never replicated: a new
// leader starts with Reset, giving every broker a full lease, so it never
// fences on what it did not see itself. A broker fenced by mistake (a long
// pause) registers again and is back with a new epoch.
type Leases struct {
	timeout time.Duration

	// mu guards leases.
	mu     sync.Mutex
	leases map[string]lease
}

type lease struct {
	epoch uint64    // the registration the heartbeats came from
	at    time.Time // the last renewal, or when the lease was first seen
}

// NewLeases returns an empty table; a broker whose last renewal is more
// than timeout old is expired.
func NewLeases(timeout time.Duration) *Leases {
	return &Leases{timeout: timeout, leases: make(map[string]lease)}
}

// Renew records a heartbeat from broker id at epoch, at now. A heartbeat
// from an older epoch than the one recorded (a previous incarnation's, late)
// is ignored, as is one older than the last renewal.
func (l *Leases) Renew(id string, epoch uint64, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	old, ok := l.leases[id]
	if ok && (epoch < old.epoch || epoch == old.epoch && now.Before(old.at)) {
		return
	}
	l.leases[id] = lease{epoch: epoch, at: now}
}

// Reset gives every lease a full timeout from now. Call it on becoming the
// metadata leader.
func (l *Leases) Reset(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, le := range l.leases {
		le.at = now
		l.leases[id] = le
	}
}

// Expired returns the alive brokers of state whose lease has run out at now
// (no renewal at their current epoch for longer than the timeout), sorted by
// ID, each with the epoch to name in FenceBroker. A broker alive in state
// with no lease at its current epoch (it registered since the last check, or
// the leader just took over) gets one starting at now rather than being
// expired. Leases of brokers no longer alive in state are dropped.
func (l *Leases) Expired(state *State, now time.Time) []Broker {
	brokers := state.Brokers()
	l.mu.Lock()
	defer l.mu.Unlock()
	alive := make(map[string]bool, len(brokers))
	var out []Broker
	for _, b := range brokers {
		if b.State != BrokerAlive {
			continue
		}
		alive[b.ID] = true
		le, ok := l.leases[b.ID]
		switch {
		case !ok || le.epoch < b.Epoch:
			// A heartbeat at a newer epoch than the state's comes from a
			// registration not applied here yet: it counts.
			l.leases[b.ID] = lease{epoch: b.Epoch, at: now}
		case now.Sub(le.at) > l.timeout:
			out = append(out, b)
		}
	}
	for id := range l.leases {
		if !alive[id] {
			delete(l.leases, id)
		}
	}
	return out // sorted: Brokers is
}

// Age returns how long ago broker id last renewed its lease (or was first
// seen), for operators; ok is false when there is no lease.
func (l *Leases) Age(id string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	le, ok := l.leases[id]
	if !ok {
		return 0, false
	}
	return now.Sub(le.at), true
}
