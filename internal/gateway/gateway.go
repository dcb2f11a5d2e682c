// Package gateway owns the data plane: it builds the gateway from a config,
// serves the MCP endpoints (/mcp aggregating every server, /servers/<name>/mcp
// fronting one), and wires the request path's stages in order.
package gateway

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgate/mcpgate/internal/argcheck"
	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/authn"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/limit"
	"github.com/mcpgate/mcpgate/internal/mcpwire"
	"github.com/mcpgate/mcpgate/internal/policy"
	"github.com/mcpgate/mcpgate/internal/session"
	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/telemetry"
	"github.com/mcpgate/mcpgate/internal/upstream"
	"github.com/mcpgate/mcpgate/internal/upstreamid"
	"github.com/prometheus/client_golang/prometheus"
)

// Options are the gateway's collaborators and tunables. The zero value is
// usable: a discarding logger, the authentication the config asks for (or
// one anonymous principal), no policy, no limits.
type Options struct {
	Logger        *slog.Logger
	Version       string // reported in serverInfo
	Authenticator Authenticator
	Authorizer    Authorizer
	Limiter       Limiter
	// Store holds tool pins; nil opens the config's store.path (owned and
	// closed by the gateway).
	Store *store.Store
	// CheckOnly builds the gateway to check a config (mcpgate validate):
	// persistent state is not opened or created.
	CheckOnly   bool
	PageSize    int           // items per page of merged lists; default 1000
	DialTimeout time.Duration // bound on connecting one upstream at initialize; default 10s
	EventBuffer int           // events kept per stream for resumption; default 256
}

// Gateway is the data plane built from one config.
type Gateway struct {
	cfg       *config.Config
	opts      Options
	logger    *slog.Logger
	servers   map[string]*server
	names     []string // sorted server names
	sessions  *session.Store[*clientSession]
	hosts     hostPolicy
	limits    mcpwire.Limits
	handler   http.Handler
	tls       *tls.Config        // the data listener's; nil without tls
	signer    *upstreamid.Signer // signs the identity asserted upstream; nil without a key
	store     *store.Store       // tool pins; nil when no server pins its tools
	ownStore  bool
	metrics   *telemetry.Metrics
	audit     *audit.Auditor // nil without audit sinks
	tracing   *telemetry.Tracing
	limiter   *limit.Limiter // caps and dampening; also the rate limits unless Options.Limiter is set
	coalescer *limit.Coalescer[sharedResult]
	schemas   *argcheck.Cache // nil when argument validation is off
	traceAll  bool            // an exporter is configured: every request gets a span
	draining  atomic.Bool
	stop      chan struct{}
	wg        sync.WaitGroup

	policyOn bool // an authorizer is configured: lists are filtered

	catMu    sync.Mutex                 // guards catNames
	catNames map[string]map[string]bool // tool names listed per server, for metrics

	pinMu       sync.Mutex      // guards quarantined
	quarantined map[string]bool // definitions already reported as quarantined
}

// server is one configured upstream server.
type server struct {
	name   string
	cfg    *config.Server
	dialer upstream.Dialer
}

// New builds a gateway. cfg must be validated and its secrets resolved.
func New(cfg *config.Config, opts Options) (_ *Gateway, err error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Authenticator == nil {
		if cfg.Auth.Enabled() {
			a, err := authn.New(cfg.Auth, authn.Options{Logger: opts.Logger})
			if err != nil {
				return nil, fmt.Errorf("auth: %w", err)
			}
			opts.Authenticator = a
		} else {
			opts.Authenticator = anonymous{}
		}
	}
	policyOn := opts.Authorizer != nil
	if opts.Authorizer == nil {
		p, err := policy.New(cfg.Policy)
		if err != nil {
			return nil, err
		}
		opts.Authorizer = allowAll{}
		if p.Enabled() {
			opts.Authorizer, policyOn = policyAuthorizer{p}, true
		}
	}
	lim, err := limit.New(cfg.Limits, cfg.State, limit.Options{Logger: opts.Logger, SessionTTL: cfg.Sessions.IdleTimeout.D()})
	if err != nil {
		return nil, fmt.Errorf("limits: %w", err)
	}
	if opts.Limiter == nil {
		opts.Limiter = rateLimiter{lim}
	}
	if opts.PageSize <= 0 {
		opts.PageSize = 1000
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 10 * time.Second
	}
	if opts.EventBuffer <= 0 {
		opts.EventBuffer = 256
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	g := &Gateway{
		cfg:     cfg,
		opts:    opts,
		logger:  opts.Logger,
		servers: make(map[string]*server),
		sessions: session.NewStore[*clientSession](session.Options{
			IdleTimeout:     cfg.Sessions.IdleTimeout.D(),
			MaxPerPrincipal: cfg.Sessions.MaxPerPrincipal,
		}),
		limits:      mcpwire.Limits{MaxDepth: cfg.HTTP.MaxJSONDepth},
		stop:        make(chan struct{}),
		quarantined: make(map[string]bool),
		catNames:    make(map[string]map[string]bool),
		policyOn:    policyOn,
		limiter:     lim,
		coalescer:   limit.NewCoalescer[sharedResult](),
	}
	// A gateway that fails to build releases what it had opened.
	defer func() {
		if err != nil {
			g.release()
		}
	}()
	if v := cfg.Limits.ValidateArguments; v == nil || *v {
		g.schemas = argcheck.NewCache(0, opts.Logger)
	}
	hp, err := newHostPolicy(cfg)
	if err != nil {
		return nil, err
	}
	g.hosts = hp
	// Load the listener's certificate now, so a bad one fails New (and
	// `mcpgate validate`) rather than Listen.
	if g.tls, err = g.tlsConfig(); err != nil {
		return nil, err
	}
	if cfg.Identity.Enabled() {
		g.signer, err = upstreamid.NewSigner(cfg.Identity.KeyFile(), opts.Logger)
		if err != nil {
			return nil, fmt.Errorf("identity: %w", err)
		}
	}
	if g.tracing, err = telemetry.NewTracing(context.Background(), cfg.Telemetry.Tracing, opts.Version); err != nil {
		return nil, fmt.Errorf("telemetry.tracing: %w", err)
	}
	g.traceAll = cfg.Telemetry.Tracing.Exporter != "" && cfg.Telemetry.Tracing.Exporter != telemetry.ExporterNone
	for name, sc := range cfg.Servers {
		hook, err := g.identityHook(name, sc)
		if err != nil {
			return nil, fmt.Errorf("server %s: %w", name, err)
		}
		d, err := newDialer(name, sc, opts.Logger, g.traceHook(hook))
		if err != nil {
			return nil, fmt.Errorf("server %s: %w", name, err)
		}
		srv := &server{name: name, cfg: sc, dialer: d}
		g.servers[name] = srv
		g.names = append(g.names, name)
		if w, ok := d.(interface{ OnHealthChange(func(bool)) }); ok {
			w.OnHealthChange(func(up bool) { g.serverHealthChanged(srv, up) })
		}
	}
	slices.Sort(g.names)
	g.metrics = telemetry.NewMetrics(opts.Version, g.names)
	for _, name := range g.names {
		g.metrics.SetUpstreamUp(name, g.servers[name].dialer.Health().Up)
	}
	if err := g.openStore(); err != nil {
		return nil, err
	}
	if f := cfg.Audit.File; f != nil && opts.CheckOnly {
		if _, err := os.Stat(filepath.Dir(f.Path)); err != nil {
			return nil, fmt.Errorf("audit.file.path: directory of %s: %w", f.Path, err)
		}
	}
	if cfg.Audit.Enabled() && !opts.CheckOnly {
		a, err := audit.New(cfg.Audit, audit.Options{Logger: opts.Logger, Metrics: g.metrics.AuditRecord})
		if err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		g.audit = a
		g.metrics.WatchAuditSinks(a.SinkHealth)
	}
	g.handler = observe(g.logger, g.metrics, http.HandlerFunc(g.route))
	g.wg.Add(1)
	go g.expireSessions()
	if g.store != nil {
		// Read the generation now, so an approval made while the gateway
		// starts is not missed.
		from, err := g.store.Generation(context.Background())
		if err != nil {
			g.logger.Warn("tool pin store unreadable", "error", err)
		}
		g.wg.Add(1)
		go g.watchPins(from)
		g.metrics.WatchQuarantined(g.quarantinedByServer)
	}
	return g, nil
}

// newDialer returns the dialer of one server; hook, when set, adds the
// caller's identity to each request to an HTTP server.
func newDialer(name string, sc *config.Server, logger *slog.Logger, hook func(context.Context, http.Header)) (upstream.Dialer, error) {
	if sc.IsStdio() {
		env := make([]string, 0, len(sc.Env))
		for k, v := range sc.Env {
			env = append(env, k+"="+v.Resolved())
		}
		return upstream.NewStdioDialer(upstream.StdioOptions{
			Name:             name,
			Command:          sc.Command,
			Env:              env,
			Dir:              sc.Dir,
			ResponseTimeout:  sc.ResponseTimeout.D(),
			MaxBackoff:       sc.RestartBackoffMax.D(),
			MaxResponseBytes: sc.MaxResponseBytes,
			Logger:           logger,
		}), nil
	}
	h := make(http.Header, len(sc.Headers))
	for k, v := range sc.Headers {
		h.Set(k, v.Resolved())
	}
	// A single url is a replica set of one: it gets the breaker too.
	return upstream.NewReplicaDialer(upstream.ReplicaOptions{
		HTTPOptions: upstream.HTTPOptions{
			Name:             name,
			URL:              sc.URL,
			Header:           h,
			ConnectTimeout:   sc.ConnectTimeout.D(),
			ResponseTimeout:  sc.ResponseTimeout.D(),
			MaxResponseBytes: sc.MaxResponseBytes,
			Logger:           logger,
			RequestHeader:    hook,
		},
		URLs:                sc.URLs,
		HealthCheckInterval: sc.HealthCheck.Interval.D(),
		BreakerFailures:     sc.Breaker.Failures,
		BreakerCooldown:     sc.Breaker.Cooldown.D(),
	}), nil
}

// Handler serves the data listener: the MCP endpoints, /healthz, /readyz,
// and the keys of upstream identity tokens at /.well-known/jwks.json.
func (g *Gateway) Handler() http.Handler { return g.handler }

func (g *Gateway) route(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case p == "/mcp":
		g.serveMCP(w, r, &endpoint{path: p})
	case strings.HasPrefix(p, "/servers/"):
		name, ok := strings.CutSuffix(strings.TrimPrefix(p, "/servers/"), "/mcp")
		srv := g.servers[name]
		if !ok || srv == nil {
			// DNS rebinding checks come first, whatever the path.
			if err := g.checkTransport(r); err != nil {
				recordFrom(r.Context()).setOutcome(err.Outcome, nil)
				err.render(w, nil)
				return
			}
			recordFrom(r.Context()).setOutcome(outcomeInvalid, nil)
			(&httpError{Status: http.StatusNotFound, Code: mcpwire.CodeInvalidRequest, Msg: "no such server; the endpoints are /mcp and /servers/<name>/mcp"}).render(w, nil)
			return
		}
		g.serveMCP(w, r, &endpoint{path: p, server: srv})
	case strings.HasPrefix(p, wellKnownPRM):
		g.serveResourceMetadata(w, r)
	case p == wellKnownJWKS:
		g.serveJWKS(w, r)
	case p == "/healthz":
		g.serveHealthz(w, r)
	case p == "/readyz":
		g.serveReadyz(w, r)
	default:
		http.NotFound(w, r)
	}
}

// endpoint is one MCP endpoint: the aggregate (server nil) or one server.
type endpoint struct {
	path   string
	server *server
}

func (e *endpoint) aggregate() bool { return e.server == nil }

// serverHealthChanged tells aggregate sessions that lack a recovered server
// to list again.
func (g *Gateway) serverHealthChanged(srv *server, up bool) {
	g.metrics.SetUpstreamUp(srv.name, up)
	if !up {
		g.logger.Warn("upstream down; its tools drop out of /mcp until it recovers", "server", srv.name, "error", srv.dialer.Health().LastError)
		return
	}
	g.logger.Info("upstream recovered", "server", srv.name)
	for _, s := range g.sessions.All() {
		if s.ep.aggregate() && !s.hasUpstream(srv.name) {
			s.catalogChanged()
		}
	}
}

func (g *Gateway) expireSessions() {
	defer g.wg.Done()
	every := min(g.cfg.Sessions.IdleTimeout.D()/4, time.Minute)
	t := time.NewTicker(max(every, time.Second))
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if n := g.sessions.Expire((*clientSession).busy); n > 0 {
				g.logger.Info("expired idle sessions", "count", n)
			}
		case <-g.stop:
			return
		}
	}
}

// Drain stops new sessions and ends every standalone stream, so that an
// http.Server's Shutdown only waits for requests in flight.
func (g *Gateway) Drain() {
	g.draining.Store(true)
	for _, s := range g.sessions.All() {
		s.endStreams()
	}
}

// Close ends every session (closing its upstream sessions) and releases
// the upstream pools. Call it after the HTTP server has shut down.
func (g *Gateway) Close() {
	g.draining.Store(true)
	select {
	case <-g.stop:
	default:
		close(g.stop)
	}
	g.wg.Wait()
	g.sessions.Close()
	g.closeDialers()
	g.closeStore()
	g.limiter.Close()
	if g.tracing != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := g.tracing.Shutdown(ctx); err != nil {
			g.logger.Warn("flushing traces", "error", err)
		}
		cancel()
	}
	if g.audit != nil {
		ctx, cancel := context.WithTimeout(context.Background(), auditTimeout)
		if err := g.audit.Close(ctx); err != nil {
			g.logger.Error("closing the audit trail", "error", err)
		}
		cancel()
	}
}

// release closes what New opened, for a gateway that failed to build.
func (g *Gateway) release() {
	g.closeDialers()
	g.closeStore()
	g.limiter.Close()
	if g.tracing != nil {
		g.tracing.Shutdown(context.Background())
	}
}

func (g *Gateway) closeStore() {
	if g.ownStore && g.store != nil {
		g.store.Close()
	}
}

// openStore opens the tool pin store, unless the caller gave one or no
// server pins its tools.
func (g *Gateway) openStore() error {
	if g.opts.Store != nil {
		g.store = g.opts.Store
		return nil
	}
	pinning := false
	for _, s := range g.servers {
		pinning = pinning || s.cfg.Pin != config.PinOff
	}
	if !pinning {
		return nil
	}
	if g.opts.CheckOnly {
		if p := g.cfg.Store.Path; p != ":memory:" {
			if _, err := os.Stat(filepath.Dir(p)); err != nil {
				return fmt.Errorf("store.path: directory of %s: %w", p, err)
			}
		}
		return nil
	}
	st, err := store.Open(context.Background(), g.cfg.Store.Path)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	g.store, g.ownStore = st, true
	return nil
}

// Gatherer returns the gateway's metrics, for the admin listener.
func (g *Gateway) Gatherer() prometheus.Gatherer { return g.metrics.Gatherer() }

func (g *Gateway) closeDialers() {
	for _, s := range g.servers {
		s.dialer.Close()
	}
}

// SessionCount returns the number of live client sessions.
func (g *Gateway) SessionCount() int { return g.sessions.Len() }

// hostPolicy validates Host and Origin against DNS rebinding.
type hostPolicy struct {
	anyHost bool
	hosts   map[string]bool
	origins map[string]bool
}

func newHostPolicy(cfg *config.Config) (hostPolicy, error) {
	hp := hostPolicy{hosts: map[string]bool{"localhost": true, "127.0.0.1": true, "::1": true}, origins: map[string]bool{}}
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return hp, fmt.Errorf("listen: %w", err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		// Bound to every interface: the Host check applies only when hosts are listed.
		hp.anyHost = len(cfg.HTTP.AllowedHosts) == 0
	} else {
		hp.hosts[strings.ToLower(host)] = true
	}
	for _, h := range cfg.HTTP.AllowedHosts {
		if hh, _, err := net.SplitHostPort(h); err == nil {
			h = hh
		}
		hp.hosts[strings.ToLower(strings.Trim(h, "[]"))] = true
	}
	for _, o := range cfg.HTTP.AllowedOrigins {
		hp.origins[strings.ToLower(o)] = true
	}
	return hp, nil
}

func (hp hostPolicy) hostAllowed(hostport string) bool {
	if hp.anyHost {
		return true
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	return hp.hosts[strings.ToLower(strings.Trim(host, "[]"))]
}

func (hp hostPolicy) originAllowed(origin string) bool {
	if origin == "" {
		return true
	}
	o := strings.ToLower(origin)
	if hp.origins[o] {
		return true
	}
	for _, scheme := range []string{"http://", "https://"} {
		if rest, ok := strings.CutPrefix(o, scheme); ok {
			host := rest
			if h, _, err := net.SplitHostPort(rest); err == nil {
				host = h
			}
			host = strings.Trim(host, "[]")
			return host == "localhost" || host == "127.0.0.1" || host == "::1"
		}
	}
	return false
}
