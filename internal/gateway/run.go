package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/mcpgate/mcpgate/internal/admin"
)

// Listeners are the gateway's two sockets.
type Listeners struct {
	Data  net.Listener
	Admin net.Listener // may be nil: no admin listener
}

// Listen opens the data and admin listeners of cfg.
func (g *Gateway) Listen() (Listeners, error) {
	data, err := net.Listen("tcp", g.cfg.Listen)
	if err != nil {
		return Listeners{}, fmt.Errorf("listen %s: %w", g.cfg.Listen, err)
	}
	if g.tls != nil {
		data = tls.NewListener(data, g.tls)
	}
	var adm net.Listener
	if g.cfg.Admin.Listen != "" {
		if adm, err = net.Listen("tcp", g.cfg.Admin.Listen); err != nil {
			data.Close()
			return Listeners{}, fmt.Errorf("admin listen %s: %w", g.cfg.Admin.Listen, err)
		}
	}
	return Listeners{Data: data, Admin: adm}, nil
}

// tlsConfig returns the data listener's TLS configuration, or nil without
// tls. With mTLS authentication, client certificates are requested and
// verified against the configured CAs during the handshake.
func (g *Gateway) tlsConfig() (*tls.Config, error) {
	if g.cfg.TLS == nil {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(g.cfg.TLS.CertFile, g.cfg.TLS.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if a, ok := g.opts.Authenticator.(interface{ TLSConfig() *tls.Config }); ok {
		if ac := a.TLSConfig(); ac != nil {
			c = ac.Clone()
		}
	}
	c.Certificates = []tls.Certificate{cert}
	c.NextProtos = []string{"http/1.1"}
	return c, nil
}

// Serve serves on ls until ctx ends, then shuts down gracefully: new
// sessions are refused, standalone streams end, requests in flight get the
// configured grace period to finish, and every upstream session is closed.
func (g *Gateway) Serve(ctx context.Context, ls Listeners) error {
	data := &http.Server{Handler: g.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 2)
	go func() { errc <- data.Serve(ls.Data) }()
	var adm *http.Server
	if ls.Admin != nil {
		adm = &http.Server{Handler: admin.Handler(func() (bool, any) {
			rd := g.Readiness()
			return rd.Ready, rd
		}, admin.WithMetrics(g.Gatherer())), ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- adm.Serve(ls.Admin) }()
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	g.logger.Info("shutting down", "grace", g.cfg.ShutdownGrace.D().String())
	g.Drain()
	sctx, cancel := context.WithTimeout(context.Background(), g.cfg.ShutdownGrace.D())
	defer cancel()
	if err := data.Shutdown(sctx); err != nil {
		g.logger.Warn("requests still in flight at the end of the grace period were cut", "error", err)
		data.Close()
	}
	g.Close()
	if adm != nil {
		adm.Close()
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return nil
}
