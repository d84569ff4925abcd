package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
)

// DefaultMaxDrop is the largest drop of a ratio below its baseline that the
// perf check accepts.
const DefaultMaxDrop = 0.25

// Baseline is the committed reference of the perf check: each figure is a
// ratio of a Rafka measurement to the transport ceiling measured in the same
// run, so that a faster or slower machine moves both and the ratio stays.
type Baseline struct {
	// Machine and Note describe where and how the ratios were measured.
	Machine string `json:"machine"`
	Note    string `json:"note,omitempty"`
	// MaxDrop is the fraction a ratio may fall below its baseline (0.25:
	// fail under 75% of it). Zero means DefaultMaxDrop.
	MaxDrop float64 `json:"max_drop"`
	// Ratios by name, e.g. "produce_1k_mb_ratio".
	Ratios map[string]float64 `json:"ratios"`
}

// LoadBaseline reads a baseline file.
func LoadBaseline(path string) (Baseline, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Baseline{}, fmt.Errorf("bench: baseline: %w", err)
	}
	var bl Baseline
	if err := json.Unmarshal(b, &bl); err != nil {
		return Baseline{}, fmt.Errorf("bench: baseline %s: %w", path, err)
	}
	if len(bl.Ratios) == 0 {
		return Baseline{}, fmt.Errorf("bench: baseline %s: no ratios", path)
	}
	for name, v := range bl.Ratios {
		if !(v > 0) {
			return Baseline{}, fmt.Errorf("bench: baseline %s: ratio %s = %v, want > 0", path, name, v)
		}
	}
	if bl.MaxDrop < 0 || bl.MaxDrop >= 1 {
		return Baseline{}, fmt.Errorf("bench: baseline %s: max_drop %v outside [0, 1)", path, bl.MaxDrop)
	}
	return bl, nil
}

// WriteBaseline writes bl as indented JSON.
func WriteBaseline(path string, bl Baseline) error {
	b, err := json.MarshalIndent(bl, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Verdict is the comparison of one ratio with its baseline.
type Verdict struct {
	Name     string
	Baseline float64 // 0: not in the baseline
	Measured float64 // 0 with Missing: not measured
	Missing  bool    // in the baseline but not measured: a failure
	Change   float64 // Measured/Baseline - 1
	OK       bool
}

// Compare checks every baseline ratio against measured: a ratio fails when
// it is below (1-MaxDrop) times its baseline or was not measured. Measured
// ratios without a baseline are reported and pass. Verdicts are sorted by
// name; ok is true when all pass.
func (bl Baseline) Compare(measured map[string]float64) (verdicts []Verdict, ok bool) {
	maxDrop := bl.MaxDrop
	if maxDrop == 0 {
		maxDrop = DefaultMaxDrop
	}
	ok = true
	names := slices.Sorted(maps.Keys(bl.Ratios))
	for _, name := range names {
		base := bl.Ratios[name]
		got, have := measured[name]
		v := Verdict{Name: name, Baseline: base, Measured: got, Missing: !have}
		if have {
			v.Change = got/base - 1
			v.OK = got >= base*(1-maxDrop)
		}
		ok = ok && v.OK
		verdicts = append(verdicts, v)
	}
	for _, name := range slices.Sorted(maps.Keys(measured)) {
		if _, inBase := bl.Ratios[name]; !inBase {
			verdicts = append(verdicts, Verdict{Name: name, Measured: measured[name], OK: true})
		}
	}
	slices.SortFunc(verdicts, func(a, b Verdict) int { return strings.Compare(a.Name, b.Name) })
	return verdicts, ok
}

// WriteVerdicts prints one line per verdict.
func WriteVerdicts(w io.Writer, vs []Verdict, maxDrop float64) {
	if maxDrop == 0 {
		maxDrop = DefaultMaxDrop
	}
	for _, v := range vs {
		switch {
		case v.Missing:
			fmt.Fprintf(w, "FAIL  %-28s baseline %.3f, not measured\n", v.Name, v.Baseline)
		case v.Baseline == 0:
			fmt.Fprintf(w, "new   %-28s measured %.3f (no baseline)\n", v.Name, v.Measured)
		default:
			status := "ok  "
			if !v.OK {
				status = "FAIL"
			}
			fmt.Fprintf(w, "%s  %-28s measured %.3f  baseline %.3f  change %+6.1f%%  (fails below %+.0f%%)\n",
				status, v.Name, v.Measured, v.Baseline, 100*v.Change, -100*maxDrop)
		}
	}
}
