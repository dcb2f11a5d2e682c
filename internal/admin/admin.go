// Package admin owns the admin listener's HTTP surface: health, readiness,
// metrics and profiling today; the admin API and the dashboard as they land.
package admin

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Readiness reports whether the gateway should receive traffic, with a
// JSON-encodable body that explains why.
type Readiness func() (ready bool, body any)

// Option configures the admin handler.
type Option func(*options)

type options struct {
	metrics prometheus.Gatherer
}

// WithMetrics serves g at /metrics, in the text, OpenMetrics or protobuf
// format the scraper asks for; protobuf carries native histograms. A nil g
// leaves /metrics out.
func WithMetrics(g prometheus.Gatherer) Option {
	return func(o *options) { o.metrics = g }
}

// Handler returns the admin listener's handler.
func Handler(ready Readiness, opts ...Option) http.Handler {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ok, body := ready()
		w.Header().Set("Content-Type", "application/json")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(body)
	})
	if o.metrics != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(o.metrics, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	}
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
