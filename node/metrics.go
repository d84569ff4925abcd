package node

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/rafka/rafka/wire"
)

// brokerMetrics holds every metric of one broker in its own set, so several
// brokers in one process (tests) do not collide. Metrics are created once and
// kept (hot paths hold the pointer); per-partition gauges and per-topic
// counters are registered when the partition or topic appears and removed
// when it goes away.
//
// Names follow rafka_<subsystem>_<name>_<unit>. Every family is registered
// with a help text (describe); /metrics is written with VictoriaMetrics'
// metadata (HELP and TYPE lines) and those texts filled in, so that
// `promtool check metrics` finds nothing to report.
type brokerMetrics struct {
	set *metrics.Set
	b   *Broker

	apis       map[wire.API]*apiMetrics // fixed after construction
	unknownAPI *apiMetrics
	streamAPI  *apiMetrics // stream-level errors: frames no request could be attributed to

	bytesIn        *metrics.Counter
	bytesOut       *metrics.Counter
	fsyncDuration  *metrics.PrometheusHistogram
	segmentRolls   *metrics.Counter
	retentionSegs  *metrics.Counter
	retentionBytes *metrics.Counter
	frameRejected  *metrics.Counter
	refusedConns   *metrics.Counter
	subscriptions  atomic.Int64 // active subscribe streams

	panicCounters map[string]*metrics.Counter // by stream goroutine; fixed after construction

	// help maps each family to its help text; written by newBrokerMetrics
	// only, read-only afterwards.
	help map[string]string

	// errMu guards errs; never held across I/O.
	errMu sync.Mutex
	errs  map[errKey]*metrics.Counter // request errors by api and code

	// mu guards the maps below; never held across I/O.
	mu     sync.Mutex
	parts  map[*partition][]string // registered gauge names per partition
	topics map[string]*topicMetrics
	// topicsRO is a copy of topics for lock-free lookups on hot paths,
	// replaced under mu whenever topics changes.
	topicsRO atomic.Pointer[map[string]*topicMetrics]
}

type apiMetrics struct {
	m        *brokerMetrics
	name     string
	requests *metrics.Counter
	latency  *metrics.PrometheusHistogram
}

type errKey struct {
	api  string
	code wire.ErrorCode
}

// topicMetrics are the per-topic traffic counters; refs counts the topic's
// partitions hosted here.
type topicMetrics struct {
	refs                 int // guarded by brokerMetrics.mu
	names                []string
	bytesIn, recordsIn   *metrics.Counter
	bytesOut, recordsOut *metrics.Counter
}

// latencyBuckets spans 50 µs to 10 s for request latency and fsync duration.
var latencyBuckets = []float64{
	0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10,
}

func newBrokerMetrics(b *Broker) *brokerMetrics {
	// HELP and TYPE lines are a process-wide switch of the library; every
	// broker wants them.
	metrics.ExposeMetadata(true)
	s := metrics.NewSet()
	m := &brokerMetrics{
		set: s, b: b,
		apis:          make(map[wire.API]*apiMetrics),
		panicCounters: make(map[string]*metrics.Counter),
		help:          make(map[string]string),
		errs:          make(map[errKey]*metrics.Counter),
		parts:         make(map[*partition][]string),
		topics:        make(map[string]*topicMetrics),
	}
	m.topicsRO.Store(&map[string]*topicMetrics{})
	m.describe("rafka_node_requests_total", "Requests answered, by API (acks=none produce requests included).")
	m.describe("rafka_node_request_errors_total", "Requests answered with an error code, by API and code (see docs/protocol.md); api=\"stream\" counts frames refused before they could be attributed to a request.")
	m.describe("rafka_node_request_duration_seconds", "Time from reading a request to writing its response (including the fsync wait of acknowledged produces), by API.")
	for api := wire.API(1); api < 64; api++ {
		if api.Known() {
			m.apis[api] = m.newAPIMetrics(api.String())
		}
	}
	m.unknownAPI = m.newAPIMetrics("unknown")
	m.streamAPI = &apiMetrics{m: m, name: "stream"}

	m.bytesIn = m.counter("rafka_node_received_bytes_total", "Bytes of request frames received, all APIs.")
	m.bytesOut = m.counter("rafka_node_sent_bytes_total", "Bytes of response and subscribe data frames sent, all APIs.")
	m.fsyncDuration = m.histogram("rafka_segment_fsync_duration_seconds", "Duration of segment log fsyncs (group commit, interval, rolled segments, close).")
	m.segmentRolls = m.counter("rafka_segment_rolls_total", "Active segments rolled (closed for appends, a new segment started), all partitions.")
	m.retentionSegs = m.counter("rafka_segment_retention_deleted_segments_total", "Segments deleted by retention (size or age), all partitions.")
	m.retentionBytes = m.counter("rafka_segment_retention_deleted_bytes_total", "Bytes of segments deleted by retention, all partitions.")
	m.frameRejected = m.counter("rafka_node_frame_budget_rejections_total", "Frames refused because they would exceed the per-connection or broker-wide memory budget for frames being received (the stream got THROTTLED and was closed).")
	m.refusedConns = m.counter("rafka_quic_refused_connections_total", "Connections closed at once because the broker held its maximum number of connections.")
	m.describe("rafka_node_panics_recovered_total", "Panics recovered in stream goroutines (reader, writer, pusher); each reset one stream with the internal error code. Any increase is a bug worth reporting.")
	for _, g := range []string{panicReader, panicWriter, panicPusher} {
		m.panicCounters[g] = s.NewCounter(fmt.Sprintf(`rafka_node_panics_recovered_total{goroutine=%q}`, g))
	}

	m.gauge("rafka_node_frame_memory_bytes", "Bytes held in frames being received, charged against the broker-wide frame memory budget.",
		func() float64 { return float64(b.budget.used.Load()) })
	m.gauge("rafka_node_frame_memory_limit_bytes", "The broker-wide frame memory budget (Config.MaxFrameMemory).",
		func() float64 { return float64(b.budget.limit) })
	m.gauge("rafka_node_subscriptions", "Subscribe streams open now.",
		func() float64 { return float64(m.subscriptions.Load()) })
	m.gauge("rafka_node_offline_partitions", "Partitions hosted here whose log could not be opened; they answer PARTITION_OFFLINE or STORAGE_ERROR until repaired.",
		func() float64 { return float64(b.offlineCount()) })
	m.gauge("rafka_quic_open_connections", "QUIC connections open now.", func() float64 {
		if b.srv == nil {
			return 0
		}
		return float64(b.srv.Connections())
	})
	m.gauge("rafka_raft_groups", "Raft groups hosted by this broker: the metadata group and one per partition replica.",
		func() float64 { return float64(b.raftStats().Groups) })
	m.gauge("rafka_raft_groups_quiesced", "Raft groups hosted here that are quiesced: idle, neither ticking nor heartbeating until a write, a message or their leader's broker going silent wakes them.",
		func() float64 { return float64(b.raftStats().Quiesced) })
	m.gauge("rafka_raft_peers_suspected", "Peer brokers silent on their raft link long enough to be reported down to the raft groups (their leaderships are taken over).",
		func() float64 {
			if b.cluster == nil || b.cluster.peers == nil {
				return 0
			}
			return float64(b.cluster.peers.suspected())
		})
	m.gauge("rafka_hotstore_hit_ratio", "Share of ring reads served from memory (hits / (hits + misses)) over all partitions since start; 0 before the first read.",
		func() float64 { return b.hotstoreHitRatio() })

	m.describe("rafka_partition_log_end_offset", "Offset after the last record readers may see (high watermark), per partition.")
	m.describe("rafka_partition_log_start_offset", "Offset of the first record still stored, per partition.")
	m.describe("rafka_partition_size_bytes", "Bytes of the partition's segments on disk, per partition.")
	m.describe("rafka_partition_segments", "Segments of the partition, per partition.")
	m.describe("rafka_topic_received_bytes_total", "Bytes of record batches appended by producers, per topic.")
	m.describe("rafka_topic_received_records_total", "Records appended by producers, per topic.")
	m.describe("rafka_topic_sent_bytes_total", "Bytes of record batches sent to consumers (fetch and subscribe), per topic.")
	m.describe("rafka_topic_sent_records_total", "Records sent to consumers (fetch and subscribe; whole batches, so records below a requested offset count), per topic.")
	return m
}

// describe records the help text of a metric family; every family the broker
// exports has one. Only newBrokerMetrics calls it.
func (m *brokerMetrics) describe(family, help string) { m.help[family] = help }

func (m *brokerMetrics) counter(name, help string) *metrics.Counter {
	m.describe(familyOf(name), help)
	return m.set.NewCounter(name)
}

func (m *brokerMetrics) gauge(name, help string, f func() float64) {
	m.describe(familyOf(name), help)
	m.set.NewGauge(name, f)
}

func (m *brokerMetrics) histogram(name, help string) *metrics.PrometheusHistogram {
	m.describe(familyOf(name), help)
	return m.set.NewPrometheusHistogramExt(name, latencyBuckets)
}

func familyOf(name string) string {
	if i := strings.IndexByte(name, '{'); i >= 0 {
		return name[:i]
	}
	return name
}

func (m *brokerMetrics) newAPIMetrics(name string) *apiMetrics {
	return &apiMetrics{
		m:        m,
		name:     name,
		requests: m.set.NewCounter(fmt.Sprintf(`rafka_node_requests_total{api=%q}`, name)),
		latency:  m.set.NewPrometheusHistogramExt(fmt.Sprintf(`rafka_node_request_duration_seconds{api=%q}`, name), latencyBuckets),
	}
}

func (m *brokerMetrics) api(a wire.API) *apiMetrics {
	if am, ok := m.apis[a]; ok {
		return am
	}
	return m.unknownAPI
}

func (am *apiMetrics) observe(start time.Time, code wire.ErrorCode) {
	am.requests.Inc()
	if code != wire.ErrNone {
		am.m.requestError(am.name, code)
	}
	am.latency.UpdateDuration(start)
}

// requestError counts an error answer; the counter of each (api, code) pair
// is created on first use and kept. Both come from fixed tables, so their
// number is bounded.
func (m *brokerMetrics) requestError(api string, code wire.ErrorCode) {
	k := errKey{api, code}
	m.errMu.Lock()
	c := m.errs[k]
	if c == nil {
		c = m.set.NewCounter(fmt.Sprintf(`rafka_node_request_errors_total{api=%q,code=%q}`, api, code.String()))
		m.errs[k] = c
	}
	m.errMu.Unlock()
	c.Inc()
}

// streamError counts a frame refused before it could be attributed to a
// request (too large, malformed, over the memory budget).
func (m *brokerMetrics) streamError(code wire.ErrorCode) {
	m.requestError(m.streamAPI.name, code)
	if code == wire.ErrThrottled {
		m.frameRejected.Inc()
	}
}

func (m *brokerMetrics) panics(goroutine string) *metrics.Counter { return m.panicCounters[goroutine] }

// addPartition registers the per-partition gauges and, with the topic's
// first partition, its traffic counters.
func (m *brokerMetrics) addPartition(p *partition) {
	labels := fmt.Sprintf(`{topic=%q,partition="%d"}`, p.Topic(), p.ID())
	gauges := []struct {
		name string
		f    func() float64
	}{
		{"rafka_partition_log_end_offset", func() float64 { return float64(p.HighWatermark()) }},
		{"rafka_partition_log_start_offset", func() float64 { return float64(p.LogStartOffset()) }},
		{"rafka_partition_size_bytes", func() float64 { return float64(p.Stats().SizeBytes) }},
		{"rafka_partition_segments", func() float64 { return float64(p.Stats().Segments) }},
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.parts[p]; ok {
		return
	}
	names := make([]string, 0, len(gauges))
	for _, g := range gauges {
		// A partition reopened before its predecessor was removed takes
		// the name over instead of panicking on a duplicate.
		m.set.UnregisterMetric(g.name + labels)
		m.set.NewGauge(g.name+labels, g.f)
		names = append(names, g.name+labels)
	}
	m.parts[p] = names
	tm := m.topics[p.Topic()]
	if tm == nil {
		l := fmt.Sprintf(`{topic=%q}`, p.Topic())
		tm = &topicMetrics{names: []string{
			"rafka_topic_received_bytes_total" + l, "rafka_topic_received_records_total" + l,
			"rafka_topic_sent_bytes_total" + l, "rafka_topic_sent_records_total" + l,
		}}
		tm.bytesIn = m.set.NewCounter(tm.names[0])
		tm.recordsIn = m.set.NewCounter(tm.names[1])
		tm.bytesOut = m.set.NewCounter(tm.names[2])
		tm.recordsOut = m.set.NewCounter(tm.names[3])
		m.topics[p.Topic()] = tm
		m.publishTopicsLocked()
	}
	tm.refs++
}

// removePartition drops what addPartition registered; the topic's counters
// go with its last partition.
func (m *brokerMetrics) removePartition(p *partition) {
	m.mu.Lock()
	defer m.mu.Unlock()
	names, ok := m.parts[p]
	if !ok {
		return // offline partitions have no metrics
	}
	delete(m.parts, p)
	for _, n := range names {
		m.set.UnregisterMetric(n)
	}
	tm := m.topics[p.Topic()]
	if tm.refs--; tm.refs == 0 {
		for _, n := range tm.names {
			m.set.UnregisterMetric(n)
		}
		delete(m.topics, p.Topic())
		m.publishTopicsLocked()
	}
}

func (m *brokerMetrics) publishTopicsLocked() {
	cp := make(map[string]*topicMetrics, len(m.topics))
	for k, v := range m.topics {
		cp[k] = v
	}
	m.topicsRO.Store(&cp)
}

// topicIn counts records appended to topic.
func (m *brokerMetrics) topicIn(topic string, bytes int, records int64) {
	if tm := (*m.topicsRO.Load())[topic]; tm != nil {
		tm.bytesIn.Add(bytes)
		tm.recordsIn.Add(int(records))
	}
}

// topicOut counts whole batches sent from topic.
func (m *brokerMetrics) topicOut(topic string, batches []byte) {
	tm := (*m.topicsRO.Load())[topic]
	if tm == nil {
		return
	}
	records := 0
	for rest := batches; len(rest) > 0; {
		h, n, err := wire.ParseBatchHeader(rest, len(rest))
		if err != nil {
			break // stored batches parse; never loop on a bad one
		}
		records += int(h.RecordCount)
		rest = rest[n:]
	}
	tm.bytesOut.Add(len(batches))
	tm.recordsOut.Add(records)
}

// write renders this broker's metrics and the process's in Prometheus text
// format, with a help text on every family.
func (m *brokerMetrics) write(w io.Writer) {
	m.refusedConns.Set(m.refused())
	if c := m.b.cluster; c != nil {
		c.syncDHTMetrics()
	}
	var buf bytes.Buffer
	m.set.WritePrometheus(&buf)
	metrics.WriteProcessMetrics(&buf)
	metrics.WriteFDMetrics(&buf)
	bw := bufio.NewWriter(w)
	writeExposition(bw, buf.Bytes(), func(family string) string { return m.help[family] })
	bw.Flush()
}

func (m *brokerMetrics) refused() uint64 {
	if m.b.srv == nil {
		return 0
	}
	return m.b.srv.RefusedConnections()
}

// hotstoreHitRatio is hits / (hits + misses) over every partition, 0 when
// nothing was read yet.
func (b *Broker) hotstoreHitRatio() float64 {
	var hits, misses uint64
	for _, t := range b.topics() {
		for _, p := range t.hosted() {
			if st, ok := p.RingStats(); ok {
				hits += st.Hits
				misses += st.Misses
			}
		}
	}
	if hits+misses == 0 {
		return 0
	}
	return float64(hits) / float64(hits+misses)
}

// segmentRolled is segment.Options.OnRoll.
func (m *brokerMetrics) segmentRolled() { m.segmentRolls.Inc() }

// retentionDeleted is segment.Options.OnRetention.
func (m *brokerMetrics) retentionDeleted(segments int, bytes int64) {
	m.retentionSegs.Add(segments)
	m.retentionBytes.AddInt64(bytes)
}
