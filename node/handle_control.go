package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/rafka/rafka/node/meta"
	"github.com/rafka/rafka/node/replica"
	"github.com/rafka/rafka/wire"
)

// handleControl answers the rare requests: metadata, topic administration and
// offset lookups. Each usually arrives on a stream of its own.
func (st *stream) handleControl(f *wire.Frame, r *response) {
	b := st.b
	switch f.API {
	case wire.APIMetadata:
		var req wire.MetadataRequest
		if st.decode(f, r, &req) {
			r.hdr = b.metadata(st.ctx, req.Topics)
			st.send(r)
		}
	case wire.APICreateTopic:
		var req wire.CreateTopicRequest
		if st.decode(f, r, &req) {
			r.hdr = errorResponse(b.CreateTopic(req.Name, req.Partitions, req.Configs, int(req.ReplicationFactor)))
			st.send(r)
		}
	case wire.APIDeleteTopic:
		var req wire.DeleteTopicRequest
		if st.decode(f, r, &req) {
			r.hdr = errorResponse(b.DeleteTopic(req.Name))
			st.send(r)
		}
	case wire.APIAlterTopicConfig:
		var req wire.AlterTopicConfigRequest
		if st.decode(f, r, &req) {
			r.hdr = errorResponse(b.AlterTopicConfig(req.Name, req.Configs))
			st.send(r)
		}
	case wire.APIDescribeTopic:
		var req wire.DescribeTopicRequest
		if st.decode(f, r, &req) {
			r.hdr = b.describe(st.ctx, req.Name)
			st.send(r)
		}
	case wire.APIListOffsets:
		var req wire.ListOffsetsRequest
		if st.decode(f, r, &req) {
			r.hdr = b.listOffsets(&req)
			st.send(r)
		}
	case wire.APIClusterInfo:
		var req wire.ClusterInfoRequest
		if st.decode(f, r, &req) {
			r.hdr = b.clusterInfo()
			st.send(r)
		}
	case wire.APIDrainBroker:
		var req wire.DrainBrokerRequest
		if st.decode(f, r, &req) {
			r.hdr = b.DrainBroker(st.ctx, &req)
			st.send(r)
		}
	case wire.APIBrokerHeartbeat:
		var req wire.BrokerHeartbeatRequest
		if st.decode(f, r, &req) {
			r.hdr = b.cluster.handleHeartbeat(st.ctx, &req)
			st.send(r)
		}
	case wire.APIVerify:
		var req wire.VerifyRequest
		if st.decode(f, r, &req) {
			r.hdr = b.handleVerify(st.ctx, &req)
			st.send(r)
		}
	case wire.APIReplicaDigests:
		var req wire.ReplicaDigestsRequest
		if st.decode(f, r, &req) {
			r.hdr = b.replicaDigests(st.ctx, &req)
			st.send(r)
		}
	default:
		panic(fmt.Sprintf("BUG: handleControl called for api %d", f.API))
	}
}

func errorResponse(err error) *wire.ErrorResponse {
	if err == nil {
		return &wire.ErrorResponse{}
	}
	var we *wire.Error
	if errors.As(err, &we) {
		return &wire.ErrorResponse{Error: we.Code, Message: we.Message}
	}
	return &wire.ErrorResponse{Error: wire.ErrUnknown, Message: err.Error()}
}

// partitionLeader names the broker that leads a partition and its term, as
// metadata and describe report them: for a replicated partition hosted here,
// its raft group's leader; otherwise the first live replica in the
// placement (a hint the replicas correct with NOT_LEADER); "" when no
// replica is alive (the partition is offline).
func (b *Broker) partitionLeader(topic string, id int32) (leader string, term uint64) {
	if rp := b.topics()[topic].raft(id); rp != nil {
		if br, ok := b.cluster.state.BrokerByRaftID(rp.leader.Load()); ok {
			return br.ID, rp.term.Load()
		}
	}
	l, ok := b.preferredLeader(topic, id)
	if !ok {
		return "", 0
	}
	return l, replica.Term
}

// preferredLeader is the first live replica of a partition in its
// placement that is not being drained (the first live one if all are);
// ok is false when none is alive.
func (b *Broker) preferredLeader(topic string, id int32) (string, bool) {
	t, ok := b.cluster.state.Topic(topic)
	if !ok || id < 0 || int(id) >= len(t.Replicas) {
		return "", false
	}
	first := ""
	for _, r := range t.Replicas[id] {
		if br, ok := b.cluster.state.Broker(r); ok && br.State == meta.BrokerAlive {
			if br.Drain == meta.DrainNone {
				return r, true
			}
			if first == "" {
				first = r
			}
		}
	}
	return first, first != ""
}

// metadata describes the requested topics (all when names is empty) and the
// live brokers, from this broker's copy of the cluster metadata. A topic
// missing from it is confirmed missing with the metadata leader first
// (syncMeta).
func (b *Broker) metadata(ctx context.Context, names []string) *wire.MetadataResponse {
	resp := &wire.MetadataResponse{}
	for _, br := range b.cluster.state.Brokers() {
		if br.State == meta.BrokerAlive {
			resp.Brokers = append(resp.Brokers, wire.BrokerInfo{ID: br.ID, Addr: br.Addr, Zone: br.Zone})
		}
	}
	if len(resp.Brokers) == 0 {
		// Not registered yet (still joining): name this broker, so a
		// client can reach it.
		resp.Brokers = []wire.BrokerInfo{{ID: b.id, Addr: b.advertised(), Zone: b.cfg.Cluster.Zone}}
	}
	var infos []meta.TopicInfo
	if len(names) == 0 {
		infos = b.catalog.List()
	}
	var synced bool // syncMeta asked, once per request
	var syncErr *wire.Error
	for i, name := range names {
		if slices.Contains(names[:i], name) {
			continue // one answer per topic, however often it is asked for
		}
		info, ok := b.catalog.Get(name)
		if !ok && !synced {
			synced, syncErr = true, b.cluster.syncMeta(ctx)
			info, ok = b.catalog.Get(name)
		}
		if !ok {
			e := unknownTopic(name, syncErr)
			resp.Topics = append(resp.Topics, wire.TopicMetadata{Name: name, Error: e.Code, Message: e.Message})
			continue
		}
		infos = append(infos, info)
	}
	for _, info := range infos {
		tm := wire.TopicMetadata{Name: info.Name}
		n := info.Partitions
		for i := range n {
			start, end := wire.PartitionRange(i, n)
			leader, term := b.partitionLeader(info.Name, i)
			pm := wire.PartitionMetadata{Partition: i, Leader: leader, Term: term, HashStart: start, HashEnd: end}
			if leader == "" {
				pm.Error = wire.ErrPartitionOffline
			}
			tm.Partitions = append(tm.Partitions, pm)
		}
		resp.Topics = append(resp.Topics, tm)
	}
	return resp
}

// unknownTopic is the answer for a topic missing from this broker's
// metadata after syncMeta: UNKNOWN_TOPIC_OR_PARTITION once the metadata
// is confirmed up to date, syncErr (retriable) when it could not be.
func unknownTopic(name string, syncErr *wire.Error) *wire.Error {
	if syncErr != nil {
		return syncErr
	}
	return &wire.Error{Code: wire.ErrUnknownTopicOrPartition, Message: fmt.Sprintf("topic %q does not exist", name)}
}

// describe reports a topic's effective config (catalog overrides on the
// broker's defaults) and, per partition, its leader and the hosted
// replica's offsets and size (-1 when this broker does not serve it).
func (b *Broker) describe(ctx context.Context, name string) *wire.DescribeTopicResponse {
	info, ok := b.catalog.Get(name)
	if !ok {
		syncErr := b.cluster.syncMeta(ctx)
		if info, ok = b.catalog.Get(name); !ok {
			e := unknownTopic(name, syncErr)
			return &wire.DescribeTopicResponse{Name: name, Error: e.Code, Message: e.Message}
		}
	}
	cfg, err := b.cfg.TopicDefaults.apply(info.Configs)
	if err != nil {
		return &wire.DescribeTopicResponse{Name: name, Error: wire.ErrInvalidConfig, Message: err.Error()}
	}
	resp := &wire.DescribeTopicResponse{Name: name, Configs: cfg.Map()}
	t := b.topics()[name]
	for i := range info.Partitions {
		leader, _ := b.partitionLeader(name, i)
		pi := wire.PartitionInfo{Partition: i, Leader: leader,
			LogStartOffset: -1, LogEndOffset: -1, HighWatermark: -1, SizeBytes: -1, Segments: -1}
		if p := t.partition(i); p != nil {
			st := p.Stats()
			pi.LogStartOffset, pi.LogEndOffset, pi.HighWatermark = st.LogStartOffset, st.LogEndOffset, st.HighWatermark
			pi.SizeBytes, pi.Segments = st.SizeBytes, int32(st.Segments)
		}
		resp.Partitions = append(resp.Partitions, pi)
	}
	return resp
}

func (b *Broker) listOffsets(req *wire.ListOffsetsRequest) *wire.ListOffsetsResponse {
	resp := &wire.ListOffsetsResponse{Offset: -1, Timestamp: -1}
	p, e := b.lookup(req.Topic, req.Partition)
	if e != nil {
		resp.Error, resp.Message = e.Code, e.Message
		return resp
	}
	switch ts := req.Timestamp; {
	case ts == wire.OffsetLatest:
		resp.Offset = p.HighWatermark()
	case ts == wire.OffsetEarliest:
		resp.Offset = p.LogStartOffset()
	case ts < 0:
		resp.Error, resp.Message = wire.ErrInvalidTimestamp, fmt.Sprintf("timestamp %d: unix ms, -1 (latest) or -2 (earliest)", ts)
	default:
		off, err := p.OffsetForTimestamp(ts)
		if err != nil {
			resp.Error, resp.Message = errorCode(err), err.Error()
			return resp
		}
		resp.Offset = off
		resp.Timestamp = ts
	}
	return resp
}

// clusterInfo describes the cluster as this broker's copy of the metadata
// has it; lease ages are known on the metadata leader only.
func (b *Broker) clusterInfo() *wire.ClusterInfoResponse {
	c := b.cluster
	resp := &wire.ClusterInfoResponse{ClusterID: c.clusterID()}
	st, ok := c.status()
	if ok {
		resp.MetaTerm, resp.MetaCommit, resp.MetaApplied = st.Term, st.Commit, st.Applied
	}
	name := func(raftID uint64) string {
		if br, ok := c.state.BrokerByRaftID(raftID); ok {
			return br.ID
		}
		return strconv.FormatUint(raftID, 16)
	}
	if ok && st.Leader != 0 {
		resp.MetaLeader = name(st.Leader)
	}
	for _, v := range st.Voters {
		resp.Voters = append(resp.Voters, name(v))
	}
	for _, l := range st.Learners {
		resp.Learners = append(resp.Learners, name(l))
	}
	slices.Sort(resp.Voters)
	slices.Sort(resp.Learners)
	leads, hosts := map[string]int32{}, map[string]int32{}
	for _, t := range c.state.Topics() {
		for i, reps := range t.Replicas {
			for _, r := range reps {
				hosts[r]++
			}
			if l, _ := b.partitionLeader(t.Name, int32(i)); l != "" {
				leads[l]++
			}
		}
	}
	leader := c.isLeader()
	for _, br := range c.state.Brokers() {
		cb := wire.ClusterBroker{ID: br.ID, Addr: br.Addr, Zone: br.Zone, State: br.State.String(), LeaseAgeMs: -1,
			Epoch: br.Epoch, Leads: leads[br.ID], Hosts: hosts[br.ID], Voter: slices.Contains(st.Voters, br.RaftID)}
		if leader {
			if age, ok := c.leaseAge(br.ID); ok {
				cb.LeaseAgeMs = age.Milliseconds()
			}
		}
		resp.Brokers = append(resp.Brokers, cb)
	}
	b.clusterMovesAndDrains(resp)
	return resp
}
