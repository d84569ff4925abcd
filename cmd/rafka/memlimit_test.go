package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"1536MiB": 1536 << 20, "2GiB": 2 << 30, "2gib": 2 << 30, "100000000": 1e8,
		"1GB": 1e9, "70000 KiB": 70000 << 10, "1TiB": 1 << 40,
	} {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for in, msg := range map[string]string{
		"":                     "want auto, none or a size",
		"GiB":                  "want auto, none or a size",
		"-1GiB":                "want auto, none or a size",
		"2 parsecs":            "unknown unit",
		"1MiB":                 "below 64 MiB",
		"0":                    "below 64 MiB",
		"99999999999999999999": "out of range",
		"9999999999TiB":        "too large",
	} {
		if _, err := parseSize(in); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("parseSize(%q) = %v, want an error containing %q", in, err, msg)
		}
	}
}

func TestCgroupMemoryLimit(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	v2 := write("memory.max", "2147483648\n")
	unlimited := write("max", "max\n")
	v1none := write("v1", "9223372036854771712\n")
	missing := filepath.Join(dir, "missing")
	for _, c := range []struct {
		files []string
		want  int64
	}{
		{[]string{v2}, 2 << 30},
		{[]string{missing, v2}, 2 << 30},
		{[]string{unlimited, v2}, 0}, // v2 says no limit: v1 files are not looked at
		{[]string{v1none}, 0},
		{[]string{missing}, 0},
	} {
		if got, _ := cgroupMemoryLimit(c.files); got != c.want {
			t.Errorf("cgroupMemoryLimit(%v) = %d, want %d", c.files, got, c.want)
		}
	}
}

func TestApplyMemoryLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if n, err := applyMemoryLimit("1536MiB", logger); err != nil || n != 1536<<20 || debug.SetMemoryLimit(-1) != 1536<<20 {
		t.Fatalf("applyMemoryLimit(1536MiB) = %d, %v; runtime limit %d", n, err, debug.SetMemoryLimit(-1))
	}
	debug.SetMemoryLimit(prev)
	if n, err := applyMemoryLimit("none", logger); err != nil || n != 0 || debug.SetMemoryLimit(-1) != prev {
		t.Fatalf("applyMemoryLimit(none) = %d, %v; runtime limit changed", n, err)
	}
	if _, err := applyMemoryLimit("lots", logger); err == nil || !strings.Contains(err.Error(), "--memory-limit") {
		t.Fatalf("applyMemoryLimit(lots) = %v, want a --memory-limit error", err)
	}
	t.Setenv("GOMEMLIMIT", "1GiB")
	if n, err := applyMemoryLimit("auto", logger); err != nil || n != 0 || debug.SetMemoryLimit(-1) != prev {
		t.Fatalf("applyMemoryLimit(auto) with GOMEMLIMIT = %d, %v; want the runtime left alone", n, err)
	}
}
