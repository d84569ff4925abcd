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
		if ok, why := b.Ready(); !ok {
			http.Error(w, "not ready: "+why, http.StatusServiceUnavailable)
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

// Ready reports whether the broker should get traffic, with the reason
// when not (/readyz): serving, joined to its cluster and caught up with its
// metadata, no partition offline, storage healthy.
func (b *Broker) Ready() (bool, string) {
	if !b.ready.Load() {
		return false, "starting or shutting down"
	}
	if ok, why := b.cluster.ready(); !ok {
		return false, why
	}
	if off := b.offlinePartitions(); len(off) > 0 {
		return false, "partitions offline:\n" + strings.Join(off, "\n")
	}
	if bad := b.StorageFailing(); len(bad) > 0 {
		return false, "storage failing (disk full or fsync failed):\n" + strings.Join(bad, "\n")
	}
	return true, ""
}

// ClusterID is the id of the broker's cluster, "" while it is joining.
func (b *Broker) ClusterID() string { return b.cluster.clusterID() }
