// Package grafana_test checks the Grafana dashboard rafka.json, and the
// Prometheus rules of ../prometheus/rules.yml, against a live cluster of
// three brokers: every metric name a query reads must be one the brokers
// export once they have served produce, consume and cluster requests (or
// one listed here as another exporter's, or a recording rule of
// rules.yml), so a renamed metric breaks this test instead of leaving a
// panel empty.
package grafana_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/rafka/rafka/client"
	"github.com/rafka/rafka/node"
	"github.com/rafka/rafka/node/nodetest"
	"github.com/rafka/rafka/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// otherExporters are metrics the queries may read that the broker does not
// export: Prometheus's own per-target series and node_exporter's.
var otherExporters = []string{
	"up",
	"node_filesystem_avail_bytes",
	"node_filesystem_size_bytes",
}

func TestMetricNamesExtractor(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`sum by (job, instance) (rate(a_total{api="produce"}[5m]))`, []string{"a_total"}},
		{`x:y:rate5m / b > 0.05 and on (job) c{code="a{b}"} offset 5m`, []string{"x:y:rate5m", "b", "c"}},
		{`histogram_quantile(0.99, sum by (le) (rate(h_bucket{job=~"$job",instance=~"$instance"}[$__rate_interval])))`, []string{"h_bucket"}},
		{`sum by (topic) (max by (topic, partition) (a)) / count without (x) (b)`, []string{"a", "b"}},
		{`sum without(instance)(a) * on(job) group_left(zone) b`, []string{"a", "b"}},
		{`a / ignoring(x) group_left b unless c`, []string{"a", "b", "c"}},
		{`{__name__="by_name", job="rafka"} + {__name__=~'re.*'}`, []string{"by_name", "re.*"}},
		{"max_over_time(a[5m:1m]) > bool 1e-3 # comment b\n or vector(0)", []string{"a"}},
		{`count(a == 0) or vector(0) + 0x1F + .5 + Inf`, []string{"a"}},
		{"`raw` + a{l=`x\"}`}", []string{"a"}},
		{`rate(a[${range}]) @ start() - b offset -5m`, []string{"a", "b"}},
	} {
		got, err := metricNames(tc.expr)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("metricNames(%q) = %q, %v; want %q", tc.expr, got, err, tc.want)
		}
	}
	for _, bad := range []string{`a{l="x}`, `rate(a[5m)`, `a}`, `sum by (l a`} {
		if got, err := metricNames(bad); err == nil {
			t.Errorf("metricNames(%q) = %q, want an error", bad, got)
		}
	}
}

func FuzzMetricNames(f *testing.F) {
	for _, s := range []string{
		`sum by (job) (rate(a_total{api="produce"}[5m]))`,
		`{__name__="x"} offset 5m and on(a) group_left(b) c`,
		"`x` # y\n$z ${w}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		names, err := metricNames(expr)
		if err != nil {
			return
		}
		for _, n := range names {
			if n == "" || !strings.Contains(expr, n) {
				t.Fatalf("metricNames(%q) gave %q, not in the expression", expr, n)
			}
		}
	})
}

// query is one PromQL expression of the dashboard or the rules.
type query struct {
	where string // panel title, variable or rule name
	expr  string
}

// dashboardQueries returns every target expression of rafka.json's panels
// (rows included) and the metric selector of every label_values variable.
func dashboardQueries(t *testing.T) []query {
	t.Helper()
	b, err := os.ReadFile("rafka.json")
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var d struct {
		Panels     []json.RawMessage `json:"panels"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("rafka.json: %v", err)
	}
	var out []query
	var walk func([]json.RawMessage)
	walk = func(ps []json.RawMessage) {
		for _, raw := range ps {
			var p panel
			if err := json.Unmarshal(raw, &p); err != nil {
				t.Fatalf("rafka.json: panel: %v", err)
			}
			for _, tg := range p.Targets {
				if tg.Expr == "" {
					t.Errorf("panel %q: a target without expr", p.Title)
				}
				out = append(out, query{"panel " + strconv.Quote(p.Title), tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		// The query is a string or {"query": "..."}.
		var q string
		if json.Unmarshal(v.Query, &q) != nil {
			var o struct {
				Query string `json:"query"`
			}
			if err := json.Unmarshal(v.Query, &o); err != nil {
				t.Fatalf("variable %s: query %s", v.Name, v.Query)
			}
			q = o.Query
		}
		// label_values(SELECTOR, LABEL) reads SELECTOR's metric;
		// label_values(LABEL) reads none.
		if inner, ok := strings.CutPrefix(strings.TrimSpace(q), "label_values("); ok {
			if i := strings.LastIndexByte(inner, ','); i >= 0 {
				out = append(out, query{"variable " + v.Name, inner[:i]})
			}
			continue
		}
		out = append(out, query{"variable " + v.Name, q})
	}
	return out
}

// ruleQueries returns the expressions of a Prometheus rules file and the
// names of its recording rules. It reads the subset of YAML rules.yml is
// written in: `- record:`/`- alert:` items, each with an `expr:` either on
// one line or as a `|` block.
func ruleQueries(t *testing.T, path string) (qs []query, recorded []string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		name        string
		block       bool
		blockIndent int
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		indent := len(line) - len(strings.TrimLeft(line, " "))
		if block {
			if trimmed == "" || indent > blockIndent {
				qs[len(qs)-1].expr += "\n" + trimmed
				continue
			}
			block = false
		}
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if v, ok := strings.CutPrefix(trimmed, "- record:"); ok {
			name = strings.TrimSpace(v)
			recorded = append(recorded, name)
		}
		if v, ok := strings.CutPrefix(trimmed, "- alert:"); ok {
			name = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(trimmed, "expr:"); ok {
			v = strings.TrimSpace(v)
			qs = append(qs, query{"rule " + name, ""})
			if v == "|" || v == "|-" {
				block, blockIndent = true, indent
				continue
			}
			qs[len(qs)-1].expr = v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return qs, recorded
}

// scrape returns the sample names of a broker's /metrics.
func scrape(ctx context.Context, t *testing.T, adminAddr string) map[string]bool {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+adminAddr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	// No keep-alive: no idle connection outlives the test (goleak).
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		t.Fatal(err)
	}
	names := make(map[string]bool)
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	return names
}

// exercise makes a cluster export what it exports only once used: a
// replicated topic (partition and raft metrics), produced to with acks=all
// under fsync=always (the fsync histogram) and read back (the consumer
// side), a request error (error counters appear at the first one), and
// cluster info.
func exercise(ctx context.Context, t *testing.T, c *nodetest.Cluster) {
	t.Helper()
	cl := c.Client()
	if err := cl.CreateTopic(ctx, "dash", 3, map[string]string{node.ConfigFsync: "always"}, client.WithReplicationFactor(3)); err != nil {
		t.Fatal(err)
	}
	var we *wire.Error
	if err := cl.CreateTopic(ctx, "dash", 3, nil); !errors.As(err, &we) || we.Code != wire.ErrTopicAlreadyExists {
		t.Fatalf("creating the topic again: %v, want TOPIC_ALREADY_EXISTS", err)
	}
	p, err := cl.NewProducer(client.WithAcks(client.AcksAll))
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	for i := range n {
		r := &client.Record{Topic: "dash", Partition: client.AnyPartition, Key: []byte(strconv.Itoa(i)), Value: []byte("v")}
		if err := p.Produce(ctx, r, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	cs, err := cl.NewConsumer()
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	var as []client.Assignment
	for part := range int32(3) {
		as = append(as, client.Assignment{Topic: "dash", Partition: part, Start: client.Earliest()})
	}
	if err := cs.Assign(ctx, as...); err != nil {
		t.Fatal(err)
	}
	for read := 0; read < n; {
		rs, err := cs.Poll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		read += len(rs)
	}
	if _, err := cl.ClusterInfo(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestQueriesNameExportedMetrics starts three brokers, exercises them,
// scrapes them all and checks every name the dashboard's queries and the
// rules read.
func TestQueriesNameExportedMetrics(t *testing.T) {
	c := nodetest.NewCluster(t, 3, func(_ int, cfg *node.Config) { cfg.AdminListen = "127.0.0.1:0" })
	ctx, cancel := context.WithTimeout(context.Background(), nodetest.WaitTimeout)
	defer cancel()
	exercise(ctx, t, c)

	exported := make(map[string]bool)
	for _, br := range c.Running() {
		for name := range scrape(ctx, t, br.B.AdminAddr()) {
			exported[name] = true
		}
	}
	for _, must := range []string{"rafka_node_request_errors_total", "rafka_segment_fsync_duration_seconds_bucket", "rafka_partitions_led"} {
		if !exported[must] {
			t.Fatalf("no %s exported: the test no longer exercises the brokers as it should", must)
		}
	}

	dash := dashboardQueries(t)
	if len(dash) < 30 {
		t.Fatalf("read %d queries from rafka.json; the reader missed some", len(dash))
	}
	rules, recorded := ruleQueries(t, "../prometheus/rules.yml")
	if len(rules) < 10 {
		t.Fatalf("read %d rules from rules.yml; the reader missed some", len(rules))
	}
	for _, q := range append(dash, rules...) {
		names, err := metricNames(q.expr)
		if err != nil {
			t.Errorf("%s: %q: %v", q.where, q.expr, err)
			continue
		}
		if len(names) == 0 {
			t.Errorf("%s: no metric in %q", q.where, q.expr)
		}
		for _, n := range names {
			switch {
			case exported[n], slices.Contains(otherExporters, n), slices.Contains(recorded, n):
			case strings.Contains(n, ":"):
				t.Errorf("%s reads %s, which no recording rule of rules.yml defines", q.where, n)
			default:
				t.Errorf("%s reads %s, which no broker exports (nor is it listed in otherExporters)", q.where, n)
			}
		}
	}
	t.Logf("%d dashboard queries and %d rules checked against %d exported names", len(dash), len(rules), len(exported))
}

// TestDashboardLayout checks what Grafana needs to show every panel:
// distinct panel ids, panels inside the 24-column grid, a datasource on
// every panel with queries.
func TestDashboardLayout(t *testing.T) {
	b, err := os.ReadFile("rafka.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			ID         int                      `json:"id"`
			Type       string                   `json:"type"`
			Title      string                   `json:"title"`
			Datasource json.RawMessage          `json:"datasource"`
			Targets    []any                    `json:"targets"`
			GridPos    struct{ H, W, X, Y int } `json:"gridPos"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if d.UID == "" {
		t.Error("no uid: links to the dashboard would break on every import")
	}
	ids := make(map[int]string)
	for _, p := range d.Panels {
		what := fmt.Sprintf("panel %d %q", p.ID, p.Title)
		if prev, ok := ids[p.ID]; ok {
			t.Errorf("%s: id also used by %q", what, prev)
		}
		ids[p.ID] = p.Title
		if g := p.GridPos; g.W < 1 || g.H < 1 || g.X < 0 || g.X+g.W > 24 || g.Y < 0 {
			t.Errorf("%s: gridPos %+v outside the 24-column grid", what, g)
		}
		if p.Type != "row" && (len(p.Targets) == 0 || len(p.Datasource) == 0) {
			t.Errorf("%s: no targets or no datasource", what)
		}
	}
}
