package group

import (
	"errors"
	"fmt"
)

// Errors returned by a Driver. Each is wrapped with context by %w, so callers
// classify them with errors.Is. The retriable ones say so: the same call may
// succeed later, once the group has a leader again.
var (
	// ErrClosed: the Driver was closed.
	ErrClosed = errors.New("group: driver closed")
	// ErrUnknownGroup: no group with that id is hosted by this Driver (never
	// added, or removed).
	ErrUnknownGroup = errors.New("group: unknown group")
	// ErrGroupExists: AddGroup for a group already hosted.
	ErrGroupExists = errors.New("group: group already added")
	// ErrGroupFailed: the group's storage or state machine failed (a Save,
	// a snapshot Restore); the group stopped and must be removed and added
	// again from its storage. The error wraps the cause.
	ErrGroupFailed = errors.New("group: group failed")
	// ErrNoLeader (retriable): this member knows no leader of the group, so
	// a proposal would have nowhere to go. Returned at once rather than
	// waiting for the context.
	ErrNoLeader = errors.New("group: no leader")
	// ErrProposalDropped (retriable): the proposal was refused by raft, or
	// the proposer saw the leader or the term change while it was pending,
	// or a snapshot replaced the log under it. The entry may still commit
	// and be applied later: a retry must be idempotent or carry its own
	// deduplication.
	ErrProposalDropped = errors.New("group: proposal dropped")
	// ErrNotLeader (retriable, elsewhere): ProposeAsync on a member of an
	// Untagged group that is not its leader; the error names the leader
	// when one is known (see NotLeaderError).
	ErrNotLeader = errors.New("group: not the leader")
	// ErrTooManyProposals (retriable): the group has Config.MaxPendingProposals
	// proposals of this member waiting to be applied.
	ErrTooManyProposals = errors.New("group: too many pending proposals")
	// ErrMalformedEnvelopes: ParseEnvelopes was given bytes that are not a
	// batch of envelopes, or a batch over its count limit.
	ErrMalformedEnvelopes = errors.New("group: malformed envelopes")
)

// NotLeaderError is the error of a proposal made on a member that does not
// lead an Untagged group: Leader is the leader's id (0 when none is known).
// It matches ErrNotLeader with errors.Is.
type NotLeaderError struct {
	Group, Leader uint64
}

func (e *NotLeaderError) Error() string {
	return fmt.Sprintf("group: %d: not the leader (leader %d)", e.Group, e.Leader)
}

// Is makes errors.Is(err, ErrNotLeader) true.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }
