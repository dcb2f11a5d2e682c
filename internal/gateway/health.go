package gateway

import (
	"encoding/json"
	"github.com/mcpgate/mcpgate/internal/upstream"
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
	// Replicas lists the replicas of a server with several urls.
	Replicas []ReplicaHealth `json:"replicas,omitempty"`
}

// ReplicaHealth is one replica's state in /readyz.
type ReplicaHealth struct {
	Replica     string `json:"replica"`
	Up          bool   `json:"up"`
	Breaker     string `json:"breaker"`
	Outstanding int64  `json:"outstanding"`
	LastError   string `json:"last_error,omitempty"`
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
		sh := ServerHealth{Up: h.Up, Transport: transport, Since: h.Since, Failures: h.Failures, LastError: h.LastError}
		if rs, ok := s.dialer.(interface {
			Replicas() []upstream.ReplicaStatus
		}); ok && len(s.cfg.URLs) > 1 {
			for _, r := range rs.Replicas() {
				sh.Replicas = append(sh.Replicas, ReplicaHealth{Replica: r.Replica, Up: r.Health.Up, Breaker: string(r.Breaker),
					Outstanding: r.Outstanding, LastError: r.Health.LastError})
			}
		}
		rd.Servers[name] = sh
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
