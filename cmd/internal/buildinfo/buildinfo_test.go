package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/rafka/rafka", Version: "v1.2.0"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "abc123"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	tests := []struct {
		name            string
		bi              *debug.BuildInfo
		ok              bool
		version, commit string
		want            Info
		wantString      string
	}{
		{"from build info", bi, true, "", "",
			Info{Version: "v1.2.0", Commit: "abc123", Modified: true, GoVersion: "go1.26.8"},
			"v1.2.0 (commit abc123+modified, go1.26.8)"},
		{"ldflags override", bi, true, "v9.9.9", "def456",
			Info{Version: "v9.9.9", Commit: "def456", GoVersion: "go1.26.8"},
			"v9.9.9 (commit def456, go1.26.8)"},
		{"no build info", nil, false, "", "",
			Info{Version: "(devel)", Commit: "unknown", GoVersion: Read().GoVersion}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fromBuildInfo(tt.bi, tt.ok, tt.version, tt.commit)
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			if tt.wantString != "" && got.String() != tt.wantString {
				t.Fatalf("String() = %q, want %q", got.String(), tt.wantString)
			}
		})
	}
}
