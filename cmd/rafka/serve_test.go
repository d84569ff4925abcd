package main

import (
	"fmt"
	"testing"

	"github.com/rafka/rafka/node"
	"github.com/rafka/rafka/quicnet"
)

// TestServeFlagDefaults checks that `rafka serve --help` shows the defaults
// the broker really applies, taken from node and quicnet rather than
// repeated here.
func TestServeFlagDefaults(t *testing.T) {
	d := node.DefaultConfig()
	q := quicnet.Config{}.WithDefaults()
	want := map[string]any{
		"data-dir":              d.DataDir,
		"listen":                d.Listen,
		"admin-listen":          defaultAdminListen,
		"max-streams-per-conn":  q.MaxIncomingStreams,
		"stream-receive-window": q.MaxStreamReceiveWindow,
		"conn-receive-window":   q.MaxConnReceiveWindow,
		"idle-timeout":          q.IdleTimeout,
		"keep-alive":            q.KeepAlivePeriod,
		"hotstore-bytes":        d.HotstoreBytes,
		"max-frame-bytes":       d.MaxFrameBytes,
		"default-fsync":         d.TopicDefaults.Fsync,
		"retention-interval":    d.RetentionInterval,
		"shutdown-timeout":      d.ShutdownTimeout,
	}
	fs := newServeCmd().Flags()
	for name, v := range want {
		f := fs.Lookup(name)
		if f == nil {
			t.Errorf("no flag --%s", name)
			continue
		}
		if got := f.DefValue; got != fmt.Sprint(v) {
			t.Errorf("--%s default %q, the broker's is %q", name, got, fmt.Sprint(v))
		}
	}
}
