package bench

import (
	"bytes"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestBaselineCompare(t *testing.T) {
	bl := Baseline{MaxDrop: 0.25, Ratios: map[string]float64{"produce": 0.8, "consume": 1.0, "gone": 0.5}}
	vs, ok := bl.Compare(map[string]float64{
		"produce": 0.61,  // -23.75%: passes
		"consume": 0.74,  // -26%: fails
		"extra":   0.123, // not in the baseline: reported, passes
	})
	if ok {
		t.Fatal("comparison passed with a 26% drop and a missing ratio")
	}
	want := []Verdict{
		{Name: "consume", Baseline: 1.0, Measured: 0.74, Change: -0.26, OK: false},
		{Name: "extra", Measured: 0.123, OK: true},
		{Name: "gone", Baseline: 0.5, Missing: true},
		{Name: "produce", Baseline: 0.8, Measured: 0.61, Change: 0.61/0.8 - 1, OK: true},
	}
	if len(vs) != len(want) {
		t.Fatalf("verdicts %+v", vs)
	}
	for i := range want {
		g, w := vs[i], want[i]
		if g.Name != w.Name || g.OK != w.OK || g.Missing != w.Missing || g.Baseline != w.Baseline ||
			g.Measured != w.Measured || abs(g.Change-w.Change) > 1e-12 {
			t.Errorf("verdict %d = %+v, want %+v", i, g, w)
		}
	}
	var buf bytes.Buffer
	WriteVerdicts(&buf, vs, bl.MaxDrop)
	out := buf.String()
	for _, s := range []string{"FAIL  consume", "FAIL  gone", "ok    produce", "new   extra", "-26.0%"} {
		if !strings.Contains(out, s) {
			t.Errorf("verdicts lack %q:\n%s", s, out)
		}
	}

	// Exactly at the limit passes; improvements pass; zero max drop means
	// the default.
	vs, ok = Baseline{Ratios: map[string]float64{"a": 1}}.Compare(map[string]float64{"a": 0.75})
	if !ok || !vs[0].OK {
		t.Fatalf("a drop of exactly 25%% failed: %+v", vs)
	}
	if _, ok := (Baseline{Ratios: map[string]float64{"a": 1}}).Compare(map[string]float64{"a": 0.7499}); ok {
		t.Fatal("a drop past 25% passed")
	}
	if _, ok := (Baseline{Ratios: map[string]float64{"a": 1}}).Compare(map[string]float64{"a": 3}); !ok {
		t.Fatal("an improvement failed")
	}
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

func TestBaselineFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "baseline.json")
	in := Baseline{Machine: "2 cores", MaxDrop: 0.25, Ratios: map[string]float64{"x": 0.5}}
	if err := WriteBaseline(path, in); err != nil {
		t.Fatal(err)
	}
	out, err := LoadBaseline(path)
	if err != nil || out.Machine != in.Machine || out.Ratios["x"] != 0.5 || out.MaxDrop != 0.25 {
		t.Fatalf("%+v %v", out, err)
	}
	for _, bad := range []Baseline{{Ratios: map[string]float64{}}, {Ratios: map[string]float64{"x": 0}}, {MaxDrop: 1, Ratios: map[string]float64{"x": 1}}} {
		if err := WriteBaseline(path, bad); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadBaseline(path); err == nil {
			t.Errorf("baseline %+v accepted", bad)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the progress goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
