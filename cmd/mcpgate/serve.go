package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/gateway"
	"github.com/mcpgate/mcpgate/internal/telemetry"
)

func serveCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("serve", "mcpgate serve --config FILE [--insecure-no-auth]",
		"Run the gateway. It serves /mcp (every server, names prefixed <server>__) and\n/servers/<name>/mcp (one server, names untouched) on the data listener, and\n/healthz, /readyz, /metrics and /debug/pprof on the admin listener. SIGINT or SIGTERM\nstops it gracefully.", stderr)
	var path string
	var insecure bool
	fs.StringVar(&path, "config", "", "config file (YAML)")
	fs.StringVar(&path, "c", "", "shorthand for --config")
	fs.BoolVar(&insecure, "insecure-no-auth", false, "allow a non-loopback listen address without authentication (never in production)")
	if code, done := parse(fs, args); done {
		return code
	}
	if path == "" {
		fmt.Fprintln(stderr, "mcpgate serve: --config FILE is required (try \"mcpgate demo\" for a quick start)")
		return 2
	}
	cfg, err := loadConfig(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	logger := newLogger(cfg, stderr)
	if err := checkExposure(cfg, insecure, logger); err != nil {
		fmt.Fprintln(stderr, "mcpgate serve:", err)
		return 1
	}
	return serve(cfg, logger, stdout, nil)
}

// checkExposure refuses to serve a non-loopback data listener without
// authentication, or a non-loopback admin listener at all (it has no
// credential of its own yet), unless the operator insisted; then it warns.
func checkExposure(cfg *config.Config, insecure bool, logger *slog.Logger) error {
	if !gateway.IsLoopback(cfg.Listen) && !cfg.Auth.Enabled() {
		if !insecure {
			return fmt.Errorf("refusing to serve listen %s without authentication; configure auth, bind a loopback address, or pass --insecure-no-auth to accept the risk", cfg.Listen)
		}
		logger.Warn("serving without authentication on a non-loopback address (--insecure-no-auth)", "address", cfg.Listen, "listener", "listen")
	}
	if cfg.Admin.Listen != "" && !gateway.IsLoopback(cfg.Admin.Listen) {
		if !insecure {
			return fmt.Errorf("refusing to serve admin.listen %s on a non-loopback address: the admin listener has no authentication yet; bind it to loopback, or pass --insecure-no-auth to accept the risk", cfg.Admin.Listen)
		}
		logger.Warn("serving the admin listener without authentication on a non-loopback address (--insecure-no-auth)", "address", cfg.Admin.Listen, "listener", "admin.listen")
	}
	return nil
}

// serve runs the gateway until SIGINT or SIGTERM. ready, if set, is called
// once the listeners are open.
func serve(cfg *config.Config, logger *slog.Logger, stdout io.Writer, ready func(gateway.Listeners)) int {
	g, err := gateway.New(cfg, gateway.Options{Logger: logger, Version: buildVersion()})
	if err != nil {
		logger.Error("cannot start", "error", err)
		return 1
	}
	ls, err := g.Listen()
	if err != nil {
		g.Close()
		logger.Error("cannot start", "error", err)
		return 1
	}
	attrs := []any{"listen", ls.Data.Addr().String(), "servers", len(cfg.Servers), "version", buildVersion()}
	if ls.Admin != nil {
		attrs = append(attrs, "admin", ls.Admin.Addr().String())
	}
	logger.Info("mcpgate started", attrs...)
	if ready != nil {
		ready(ls)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := g.Serve(ctx, ls); err != nil {
		logger.Error("serve failed", "error", err)
		return 1
	}
	logger.Info("mcpgate stopped")
	return 0
}

// newLogger returns the structured logger the config asks for.
func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "text" {
		return slog.New(telemetry.LogHandler(slog.NewTextHandler(w, opts)))
	}
	return slog.New(telemetry.LogHandler(slog.NewJSONHandler(w, opts)))
}
