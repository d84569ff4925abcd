// Package buildinfo reports which build of a Rafka command is running:
// version, commit and Go version, for `rafka version`, `rafka --version` and
// the same in rafka-bench.
//
// The values come from the build information the Go toolchain embeds
// (runtime/debug.ReadBuildInfo): the main module's version for `go install
// module@version`, and the VCS revision for a build from a git checkout.
// Release builds may set them explicitly, which takes precedence:
//
//	go build -ldflags "-X github.com/rafka/rafka/cmd/internal/buildinfo.Version=v1.2.0 \
//	    -X github.com/rafka/rafka/cmd/internal/buildinfo.Commit=$(git rev-parse HEAD)" ./cmd/...
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version and Commit override what the build information says when set with
// -ldflags "-X ...". Empty: read from the build information.
var (
	Version string
	Commit  string
)

// Info describes a build.
type Info struct {
	Version   string `json:"version"`    // module version, "(devel)" for a local build
	Commit    string `json:"commit"`     // VCS revision, "unknown" when not recorded
	Modified  bool   `json:"modified"`   // the working tree had uncommitted changes
	GoVersion string `json:"go_version"` // the toolchain that built the binary
}

// Read returns the running binary's build information.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	return fromBuildInfo(bi, ok, Version, Commit)
}

func fromBuildInfo(bi *debug.BuildInfo, ok bool, version, commit string) Info {
	in := Info{Version: "(devel)", Commit: "unknown", GoVersion: runtime.Version()}
	if ok && bi != nil {
		if v := bi.Main.Version; v != "" {
			in.Version = v
		}
		if bi.GoVersion != "" {
			in.GoVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				in.Commit = s.Value
			case "vcs.modified":
				in.Modified = s.Value == "true"
			}
		}
	}
	if version != "" {
		in.Version = version
	}
	if commit != "" {
		in.Commit, in.Modified = commit, false
	}
	return in
}

// String is the one-line form the commands print: "rafka v1.2.0 (commit
// 3e3ce68..., go1.26.8)".
func (in Info) String() string {
	commit := in.Commit
	if in.Modified {
		commit += "+modified"
	}
	return fmt.Sprintf("%s (commit %s, %s)", in.Version, commit, in.GoVersion)
}
