package node

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/rafka/rafka/wire"
)

// brokerMetrics holds every metric of one broker in its own set, so several
// brokers in one process (tests) do not collide. Metrics are created once and
// kept; per-partition gauges are dropped when the partition goes away.
type brokerMetrics struct {
	set *metrics.Set

	apis           map[wire.API]*apiMetrics // fixed after construction
	unknownAPI     *apiMetrics
	bytesIn        *metrics.Counter
	bytesOut       *metrics.Counter
	protocolErrors *metrics.Counter
	fsyncDuration  *metrics.PrometheusHistogram

	mu       sync.Mutex
	partSets map[*partition]*metrics.Set // guarded by mu
}

type apiMetrics struct {
	requests *metrics.Counter
	errors   *metrics.Counter
	latency  *metrics.PrometheusHistogram
}

// latencyBuckets spans 50 µs to 10 s for request latency and fsync duration.
var latencyBuckets = []float64{
	0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10,
}

func newBrokerMetrics(b *Broker) *brokerMetrics {
	s := metrics.NewSet()
	m := &brokerMetrics{set: s, apis: make(map[wire.API]*apiMetrics), partSets: make(map[*partition]*metrics.Set)}
	for api := wire.API(1); api < 64; api++ {
		if api.Known() {
			m.apis[api] = newAPIMetrics(s, api.String())
		}
	}
	m.unknownAPI = newAPIMetrics(s, "unknown")
	m.bytesIn = s.NewCounter("rafka_node_received_bytes_total")
	m.bytesOut = s.NewCounter("rafka_node_sent_bytes_total")
	m.protocolErrors = s.NewCounter("rafka_node_protocol_errors_total")
	m.fsyncDuration = s.NewPrometheusHistogramExt("rafka_segment_fsync_duration_seconds", latencyBuckets)
	s.NewGauge("rafka_quic_open_connections", func() float64 {
		if b.srv == nil {
			return 0
		}
		return float64(b.srv.Connections())
	})
	s.NewGauge("rafka_hotstore_hit_ratio", func() float64 { return b.hotstoreHitRatio() })
	return m
}

func newAPIMetrics(s *metrics.Set, name string) *apiMetrics {
	return &apiMetrics{
		requests: s.NewCounter(fmt.Sprintf(`rafka_node_requests_total{api=%q}`, name)),
		errors:   s.NewCounter(fmt.Sprintf(`rafka_node_request_errors_total{api=%q}`, name)),
		latency:  s.NewPrometheusHistogramExt(fmt.Sprintf(`rafka_node_request_duration_seconds{api=%q}`, name), latencyBuckets),
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
		am.errors.Inc()
	}
	am.latency.UpdateDuration(start)
}

// addPartition registers the per-partition gauges.
func (m *brokerMetrics) addPartition(p *partition) {
	s := metrics.NewSet()
	labels := fmt.Sprintf(`{topic=%q,partition="%d"}`, p.Topic(), p.ID())
	s.NewGauge("rafka_partition_log_end_offset"+labels, func() float64 { return float64(p.HighWatermark()) })
	s.NewGauge("rafka_partition_log_start_offset"+labels, func() float64 { return float64(p.LogStartOffset()) })
	s.NewGauge("rafka_partition_size_bytes"+labels, func() float64 { return float64(p.Stats().SizeBytes) })
	s.NewGauge("rafka_partition_segments"+labels, func() float64 { return float64(p.Stats().Segments) })
	m.mu.Lock()
	m.partSets[p] = s
	m.mu.Unlock()
}

func (m *brokerMetrics) removePartition(p *partition) {
	m.mu.Lock()
	delete(m.partSets, p)
	m.mu.Unlock()
}

// write renders this broker's metrics in Prometheus text format.
func (m *brokerMetrics) write(w io.Writer) {
	m.set.WritePrometheus(w)
	m.mu.Lock()
	for _, s := range m.partSets {
		s.WritePrometheus(w)
	}
	m.mu.Unlock()
	metrics.WriteProcessMetrics(w)
	metrics.WriteFDMetrics(w)
}

// hotstoreHitRatio is hits / (hits + misses) over every partition, 0 when
// nothing was read yet.
func (b *Broker) hotstoreHitRatio() float64 {
	var hits, misses uint64
	for _, t := range b.topics() {
		for _, p := range t.parts {
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
