package node

import (
	"fmt"
	"net/http"
	"net/http/pprof"
	"strings"
)

// adminHandler serves /metrics, /healthz, /readyz and /debug/pprof/.
func (b *Broker) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		b.metrics.write(w)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !b.ready.Load() {
			http.Error(w, "not ready: starting or shutting down", http.StatusServiceUnavailable)
			return
		}
		if off := b.offlinePartitions(); len(off) > 0 {
			http.Error(w, "not ready: partitions offline:\n"+strings.Join(off, "\n"), http.StatusServiceUnavailable)
			return
		}
		if bad := b.StorageFailing(); len(bad) > 0 {
			http.Error(w, "not ready: storage failing (disk full or fsync failed):\n"+strings.Join(bad, "\n"), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
