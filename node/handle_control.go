package node

import (
	"errors"
	"fmt"
	"slices"

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
			r.hdr = b.metadata(req.Topics)
			st.send(r)
		}
	case wire.APICreateTopic:
		var req wire.CreateTopicRequest
		if st.decode(f, r, &req) {
			r.hdr = errorResponse(b.CreateTopic(req.Name, req.Partitions, req.Configs))
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
			r.hdr = b.describe(req.Name)
			st.send(r)
		}
	case wire.APIListOffsets:
		var req wire.ListOffsetsRequest
		if st.decode(f, r, &req) {
			r.hdr = b.listOffsets(&req)
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

// metadata describes the requested topics (all when names is empty). With a
// single broker it leads every partition.
func (b *Broker) metadata(names []string) *wire.MetadataResponse {
	topics := b.topics()
	resp := &wire.MetadataResponse{Brokers: []wire.BrokerInfo{{ID: b.id, Addr: b.advertised()}}}
	if len(names) == 0 {
		for name := range topics {
			names = append(names, name)
		}
		slices.Sort(names)
	}
	for _, name := range names {
		t, ok := topics[name]
		if !ok {
			resp.Topics = append(resp.Topics, wire.TopicMetadata{
				Name: name, Error: wire.ErrUnknownTopicOrPartition, Message: fmt.Sprintf("topic %q does not exist", name)})
			continue
		}
		tm := wire.TopicMetadata{Name: name}
		n := int32(len(t.parts))
		for i := range n {
			start, end := wire.PartitionRange(i, n)
			tm.Partitions = append(tm.Partitions, wire.PartitionMetadata{
				Partition: i, Leader: b.id, Term: singleNodeTerm, HashStart: start, HashEnd: end})
		}
		resp.Topics = append(resp.Topics, tm)
	}
	return resp
}

func (b *Broker) describe(name string) *wire.DescribeTopicResponse {
	t, ok := b.topics()[name]
	if !ok {
		return &wire.DescribeTopicResponse{Name: name, Error: wire.ErrUnknownTopicOrPartition, Message: fmt.Sprintf("topic %q does not exist", name)}
	}
	resp := &wire.DescribeTopicResponse{Name: name, Configs: t.cfg.Map()}
	for _, p := range t.parts {
		if p.offline != nil {
			resp.Partitions = append(resp.Partitions, wire.PartitionInfo{Partition: p.id, Leader: b.id,
				LogStartOffset: -1, LogEndOffset: -1, HighWatermark: -1, SizeBytes: -1, Segments: -1})
			continue
		}
		hwm := p.hwm.Load()
		resp.Partitions = append(resp.Partitions, wire.PartitionInfo{
			Partition:      p.id,
			Leader:         b.id,
			LogStartOffset: p.log.StartOffset(),
			LogEndOffset:   hwm,
			HighWatermark:  hwm,
			SizeBytes:      p.log.Size(),
			Segments:       int32(p.log.Segments()),
		})
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
		resp.Offset = p.hwm.Load()
	case ts == wire.OffsetEarliest:
		resp.Offset = p.log.StartOffset()
	case ts < 0:
		resp.Error, resp.Message = wire.ErrInvalidTimestamp, fmt.Sprintf("timestamp %d: unix ms, -1 (latest) or -2 (earliest)", ts)
	default:
		off, err := p.log.OffsetForTimestamp(ts)
		if err != nil {
			resp.Error, resp.Message = errorCode(err), err.Error()
			return resp
		}
		resp.Offset = min(off, p.hwm.Load())
		resp.Timestamp = ts
	}
	return resp
}
