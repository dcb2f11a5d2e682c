package gateway

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/identity"
	"github.com/mcpgate/mcpgate/internal/mcpwire"
	"github.com/mcpgate/mcpgate/internal/upstreamid"
)

// wellKnownJWKS is where the keys that sign upstream identity tokens are
// published.
const wellKnownJWKS = "/.well-known/jwks.json"

// maxClientName bounds the self-declared client name passed upstream.
const maxClientName = 128

// callIdentity is who an upstream request is made for. The gateway puts it
// in the context of every upstream call; an HTTP server's RequestHeader
// hook turns it into a token or identity headers.
type callIdentity struct {
	principal identity.Principal
	client    string // clientInfo.name from the client's initialize
	session   string
	tool      string // on tools/call
}

type callIdentityKey struct{}

// upstreamContext returns ctx carrying the session's identity and, on
// tools/call, the tool.
func (s *clientSession) upstreamContext(ctx context.Context, tool string) context.Context {
	return context.WithValue(ctx, callIdentityKey{}, callIdentity{principal: s.principal, client: s.client, session: s.id, tool: tool})
}

// callTool is the tool an upstream call asserts: the server's own tool
// name on tools/call, nothing otherwise.
func callTool(t *target) string {
	if t.method == "tools/call" {
		return t.tool
	}
	return ""
}

// clientName and clientVersion return what the client declared in its
// initialize params, cut to maxClientName bytes.
func clientName(initParams []byte) string    { return clientInfo(initParams, "name") }
func clientVersion(initParams []byte) string { return clientInfo(initParams, "version") }

func clientInfo(initParams []byte, key string) string {
	v, _ := mcpwire.StringValue(field(field(initParams, "clientInfo"), key))
	if len(v) > maxClientName {
		v = strings.ToValidUTF8(v[:maxClientName], "")
	}
	return v
}

// valuesOf is a context that is cancelled like its embedded Context but
// holds only the values of another: an upstream session outlives the
// request that dialed it and must not keep that request's values.
type valuesOf struct {
	context.Context
	values context.Context
}

func (c valuesOf) Value(key any) any { return c.values.Value(key) }

// identityHook returns the RequestHeader hook of an HTTP server that
// asserts the caller's identity, or nil for one that does not. The
// client's own credentials never reach an upstream: the gateway builds
// every upstream request itself, from configured headers and this hook.
func (g *Gateway) identityHook(name string, sc *config.Server) (func(context.Context, http.Header), error) {
	id := sc.Identity
	if id == nil || sc.IsStdio() || (id.JWT == nil && !id.Headers) {
		return nil, nil
	}
	if id.JWT != nil && g.signer == nil {
		return nil, fmt.Errorf("identity.jwt needs identity.signing_key")
	}
	var base upstreamid.Claims
	if id.JWT != nil {
		base = upstreamid.Claims{Issuer: g.cfg.IdentityIssuer(), Audience: sc.IdentityAudience(), TTL: id.JWT.TTL.D()}
	}
	signer, headers, logger := g.signer, id.Headers, g.logger
	return func(ctx context.Context, h http.Header) {
		ci, ok := ctx.Value(callIdentityKey{}).(callIdentity)
		if !ok {
			return // not made for a caller
		}
		if id.JWT != nil {
			c := base
			c.Subject, c.Tenant, c.Groups = ci.principal.Subject, ci.principal.Tenant, ci.principal.Groups
			c.Client, c.Session, c.Tool = ci.client, ci.session, ci.tool
			tok, _, err := signer.Mint(c)
			if err != nil {
				// The request goes without; the upstream refuses it.
				logger.Error("minting upstream identity token failed", "server", name, "session_id", ci.session, "error", err)
			} else {
				h.Set("Authorization", "Bearer "+tok)
			}
		}
		if headers {
			for k, v := range upstreamid.Headers(ci.principal, ci.client, ci.session, ci.tool) {
				h[k] = v
			}
		}
	}, nil
}

// serveJWKS publishes the public keys that sign upstream identity tokens;
// 404 when no signing key is configured.
func (g *Gateway) serveJWKS(w http.ResponseWriter, r *http.Request) {
	if g.signer == nil {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	// Short: a verifier meeting an unknown kid should find it soon.
	w.Header().Set("Cache-Control", "max-age=60")
	w.Write(g.signer.JWKS())
}

// traceHook adds the trace context of an upstream request's span after
// the identity hook, so a client's traceparent never stands in for the
// gateway's.
func (g *Gateway) traceHook(identity func(context.Context, http.Header)) func(context.Context, http.Header) {
	return func(ctx context.Context, h http.Header) {
		if identity != nil {
			identity(ctx, h)
		}
		g.tracing.Inject(ctx, h)
	}
}
