// Package prometheus_test checks the alerting and recording rules of
// rules.yml against a real broker: every metric they name must be one the
// broker exports (or one listed here as another exporter's), so that a
// renamed metric cannot leave an alert silently matching nothing. The rules'
// logic is tested by promtool (rules_test.yml).
package prometheus_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rafka/rafka/client"
	"github.com/rafka/rafka/node"
	"github.com/rafka/rafka/quicnet"
	"github.com/rafka/rafka/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// otherExporters are the metrics rules.yml names that the broker does not
// export: Prometheus's own per-target series and node_exporter's.
var otherExporters = []string{
	"up",
	"node_filesystem_avail_bytes",
	"node_filesystem_size_bytes",
}

// promqlWords are the PromQL functions, aggregations and keywords rules.yml
// uses; any other identifier in an expression is a metric or a recording
// rule.
var promqlWords = []string{
	"sum", "max", "rate", "increase", "histogram_quantile",
	"by", "without", "and", "or", "unless", "offset", "on", "ignoring",
}

var (
	stringRE     = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	matchersRE   = regexp.MustCompile(`\{[^}]*\}`)
	groupingRE   = regexp.MustCompile(`\b(?:by|without|on|ignoring)\s*\([^)]*\)`)
	rangeRE      = regexp.MustCompile(`\[[^\]]*\]`)
	identifierRE = regexp.MustCompile(`\b[a-zA-Z_:][a-zA-Z0-9_:]*`)
)

// rule is one recording rule or alert of rules.yml.
type rule struct {
	name string // record or alert name
	expr string
}

// readRules reads the rules of a rules file. It understands the subset of
// YAML that rules.yml is written in: `- record:`/`- alert:` items, each
// with an `expr:` either on one line or as a `|` block.
func readRules(t *testing.T, path string) []rule {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		rules       []rule
		block       bool // inside an `expr: |` block
		blockIndent int
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		indent := len(line) - len(strings.TrimLeft(line, " "))
		if block {
			if trimmed == "" || indent > blockIndent {
				rules[len(rules)-1].expr += " " + trimmed
				continue
			}
			block = false
		}
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		for _, key := range []string{"- record:", "- alert:"} {
			if v, ok := strings.CutPrefix(trimmed, key); ok {
				rules = append(rules, rule{name: strings.TrimSpace(v)})
			}
		}
		if v, ok := strings.CutPrefix(trimmed, "expr:"); ok {
			if len(rules) == 0 {
				t.Fatalf("%s: expr before any rule: %q", path, line)
			}
			v = strings.TrimSpace(v)
			if v == "|" {
				block, blockIndent = true, indent
				continue
			}
			rules[len(rules)-1].expr = v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rules
}

// metricNames returns the metric and recording rule names expr reads.
func metricNames(expr string) []string {
	expr = stringRE.ReplaceAllString(expr, `""`)
	expr = matchersRE.ReplaceAllString(expr, " ")
	expr = groupingRE.ReplaceAllString(expr, " ")
	expr = rangeRE.ReplaceAllString(expr, " ")
	var out []string
	for _, id := range identifierRE.FindAllString(expr, -1) {
		if !slices.Contains(promqlWords, id) {
			out = append(out, id)
		}
	}
	return out
}

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`sum by (job, instance) (rate(a_total{api="produce"}[5m]))`, []string{"a_total"}},
		{`x:y:rate5m / b > 0.05 and on (job) c{code="a{b}"} offset 5m`, []string{"x:y:rate5m", "b", "c"}},
		{`histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))`, []string{"h_bucket"}},
	} {
		if got := metricNames(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("metricNames(%q) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}

// scrape returns the sample names of a broker's /metrics.
func scrape(t *testing.T, adminAddr string) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
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

// TestRulesNameExportedMetrics starts a broker, makes it count a request
// error (counters by error code appear at the first error), scrapes it and
// checks every name rules.yml reads.
func TestRulesNameExportedMetrics(t *testing.T) {
	dir := t.TempDir()
	cfg := node.DefaultConfig()
	cfg.DataDir = dir
	cfg.Listen = "127.0.0.1:0"
	cfg.AdminListen = "127.0.0.1:0"
	cfg.Logger = nil
	cfg.TopicDefaults.SegmentBytes = 1 << 20 // each partition preallocates one segment
	b, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		b.Shutdown(context.Background())
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.New(ctx, client.WithBrokers(b.Addr()), client.WithCAFile(quicnet.SelfSignedCertPath(dir)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.CreateTopic(ctx, "t", 1, nil); err != nil {
		t.Fatal(err)
	}
	var we *wire.Error
	if err := c.CreateTopic(ctx, "t", 1, nil); !errors.As(err, &we) || we.Code != wire.ErrTopicAlreadyExists {
		t.Fatalf("creating the topic again: %v, want TOPIC_ALREADY_EXISTS", err)
	}

	exported := scrape(t, b.AdminAddr())
	if !exported["rafka_node_request_errors_total"] {
		t.Fatal("no rafka_node_request_errors_total after a request error: the test no longer provokes one")
	}
	rules := readRules(t, "rules.yml")
	if len(rules) < 10 {
		t.Fatalf("read %d rules from rules.yml; the reader missed some", len(rules))
	}
	recorded := make(map[string]bool)
	for _, r := range rules {
		if strings.Contains(r.name, ":") {
			recorded[r.name] = true
		}
	}
	for _, r := range rules {
		if r.expr == "" {
			t.Errorf("rule %s: no expr read", r.name)
		}
		names := metricNames(r.expr)
		if len(names) == 0 {
			t.Errorf("rule %s: no metric in %q", r.name, r.expr)
		}
		for _, n := range names {
			switch {
			case recorded[n], exported[n], slices.Contains(otherExporters, n):
			case strings.Contains(n, ":"):
				t.Errorf("rule %s reads %s, which no recording rule of rules.yml defines", r.name, n)
			default:
				t.Errorf("rule %s reads %s, which the broker does not export (and is not listed in otherExporters)", r.name, n)
			}
		}
	}
}
