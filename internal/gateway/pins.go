package gateway

import (
	"context"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/store"
)

// pinPoll is how often the gateway looks for approvals made by another
// process (mcpgate ctl tools approve) in the store.
const pinPoll = time.Second

// pin fingerprints a listed tool and checks it against the store. A tool
// that cannot be checked is quarantined: a definition nobody approved must
// not reach a model because the store was unreadable.
func (g *Gateway) pin(ctx context.Context, srv *server, ti *toolInfo, raw []byte) {
	if g.store == nil || srv.cfg.Pin == config.PinOff {
		return
	}
	hash, canonical, err := store.Fingerprint(raw)
	if err != nil {
		g.logger.Warn("tool definition cannot be fingerprinted; quarantined", "server", srv.name, "tool", ti.name, "error", err)
		ti.quarantined = true
		return
	}
	ti.hash = hash
	res, err := g.store.Check(context.WithoutCancel(ctx), srv.name, ti.name, hash, canonical, srv.cfg.Pin)
	if err != nil {
		g.logger.Error("tool pin store failed; tool quarantined", "server", srv.name, "tool", ti.name, "error", err)
		ti.quarantined = true
		return
	}
	switch res.State {
	case store.Quarantined:
		ti.quarantined = true
		if g.quarantine(srv.name, ti.name, hash) {
			g.logger.Warn("tool definition changed since approval; quarantined until approved with: mcpgate ctl tools approve "+srv.name+"/"+ti.name,
				"server", srv.name, "tool", ti.name, "hash", hash, "diff", res.Diff)
			g.metrics.ToolPinChanged(srv.name, res.State.String())
		}
	case store.Accepted:
		g.logger.Warn("tool definition changed; accepted (pin: auto_accept)", "server", srv.name, "tool", ti.name, "hash", hash, "diff", res.Diff)
		g.metrics.ToolPinChanged(srv.name, res.State.String())
	case store.New:
		g.logger.Info("tool pinned on first sight", "server", srv.name, "tool", ti.name, "hash", hash)
		g.metrics.ToolPinChanged(srv.name, res.State.String())
	}
}

// quarantine remembers a quarantined definition and reports whether it is
// news, so that each change is logged and counted once per process rather
// than once per session.
func (g *Gateway) quarantine(server, tool, hash string) bool {
	key := server + "\x00" + tool + "\x00" + hash
	g.pinMu.Lock()
	defer g.pinMu.Unlock()
	if g.quarantined[key] {
		return false
	}
	if len(g.quarantined) > 10_000 {
		clear(g.quarantined)
	}
	g.quarantined[key] = true
	return true
}

// watchPins re-lists every session's tools after an approval, so an
// approved tool comes back without a restart.
func (g *Gateway) watchPins(from int64) {
	defer g.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-g.stop
		cancel()
	}()
	g.store.WatchFrom(ctx, from, pinPoll, func() {
		// The generation also moves when a tool is pinned on first sight;
		// only an approval of something quarantined here needs a re-list.
		g.pinMu.Lock()
		pending := len(g.quarantined) > 0
		clear(g.quarantined)
		g.pinMu.Unlock()
		if !pending {
			return
		}
		for _, s := range g.sessions.All() {
			s.toolsChanged()
		}
	}, func(err error) {
		g.logger.Warn("tool pin store unreadable", "error", err)
	})
}

// quarantinedByServer counts the tools waiting for approval in the store,
// for configured servers, at each metrics scrape. A server with none is
// reported as 0, so an alert sees the value fall when a tool is approved.
func (g *Gateway) quarantinedByServer() map[string]int {
	out := make(map[string]int, len(g.names))
	for _, name := range g.names {
		if g.servers[name].cfg.Pin != config.PinOff {
			out[name] = 0
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	pins, err := g.store.List(ctx)
	if err != nil {
		g.logger.Warn("tool pin store unreadable", "error", err)
		return out
	}
	for _, p := range pins {
		if _, ok := out[p.Server]; ok && p.PendingHash != "" {
			out[p.Server]++
		}
	}
	return out
}
