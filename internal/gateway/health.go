package gateway

import (
	"encoding/json"
	"net/http"
	"time"
)

// serveHealthz reports that the process serves HTTP.
func (g *Gateway) serveHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

// Readiness is the /readyz body.
type Readiness struct {
	Ready    bool                    `json:"ready"`
	Draining bool                    `json:"draining,omitempty"`
	Sessions int                     `json:"sessions"`
	Servers  map[string]ServerHealth `json:"servers"`
}

// ServerHealth is one upstream server's state in /readyz.
type ServerHealth struct {
	Up        bool      `json:"up"`
	Transport string    `json:"transport"`
	Since     time.Time `json:"since"`
	Failures  int       `json:"consecutive_failures,omitempty"`
	LastError string    `json:"last_error,omitempty"`
}

// Readiness reports whether the gateway should receive traffic: the config
// is loaded, it is not shutting down, and at least one server (if any are
// configured) is reachable.
func (g *Gateway) Readiness() Readiness {
	rd := Readiness{Draining: g.draining.Load(), Sessions: g.sessions.Len(), Servers: map[string]ServerHealth{}}
	anyUp := len(g.servers) == 0
	for name, s := range g.servers {
		h := s.dialer.Health()
		transport := "http"
		if s.cfg.IsStdio() {
			transport = "stdio"
		}
		rd.Servers[name] = ServerHealth{Up: h.Up, Transport: transport, Since: h.Since, Failures: h.Failures, LastError: h.LastError}
		anyUp = anyUp || h.Up
	}
	rd.Ready = !rd.Draining && anyUp
	return rd
}

func (g *Gateway) serveReadyz(w http.ResponseWriter, _ *http.Request) {
	rd := g.Readiness()
	w.Header().Set("Content-Type", "application/json")
	if !rd.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(rd)
}
