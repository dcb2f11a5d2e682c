package gateway

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/mcpgate/mcpgate/internal/identity"
)

// wellKnownPRM is where RFC 9728 protected resource metadata lives.
const wellKnownPRM = "/.well-known/oauth-protected-resource"

// resourceFor returns the canonical URI of an endpoint as a protected
// resource (RFC 8707/9728): auth.resource names /mcp, and each server's
// endpoint sits beside it.
func (g *Gateway) resourceFor(ep *endpoint) string {
	r := g.cfg.Auth.Resource
	if ep == nil || ep.aggregate() {
		return r
	}
	return strings.TrimSuffix(strings.TrimSuffix(r, "/"), "/mcp") + "/servers/" + ep.server.name + "/mcp"
}

// metadataURL is the RFC 9728 metadata URL of a resource: the well-known
// path inserted between the host and the resource's path.
func metadataURL(resource string) string {
	u, err := url.Parse(resource)
	if err != nil {
		return ""
	}
	u.Path = wellKnownPRM + strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u.String()
}

// serveResourceMetadata answers GET /.well-known/oauth-protected-resource
// and its path-specific forms for each endpoint.
func (g *Gateway) serveResourceMetadata(w http.ResponseWriter, r *http.Request) {
	if !g.cfg.Auth.Enabled() {
		http.NotFound(w, r)
		return
	}
	rest := strings.TrimPrefix(r.URL.Path, wellKnownPRM)
	var ep *endpoint
	switch {
	case rest == "" || rest == "/" || strings.HasSuffix(rest, "/mcp") && !strings.Contains(rest, "/servers/"):
		ep = &endpoint{path: "/mcp"}
	case strings.HasSuffix(rest, "/mcp"):
		name := rest[strings.LastIndex(rest, "/servers/")+len("/servers/") : len(rest)-len("/mcp")]
		srv, ok := g.servers[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		ep = &endpoint{path: "/servers/" + name + "/mcp", server: srv}
	default:
		http.NotFound(w, r)
		return
	}
	md := struct {
		Resource               string   `json:"resource"`
		AuthorizationServers   []string `json:"authorization_servers,omitempty"`
		ScopesSupported        []string `json:"scopes_supported,omitempty"`
		BearerMethodsSupported []string `json:"bearer_methods_supported"`
		ResourceName           string   `json:"resource_name,omitempty"`
	}{
		Resource:               g.resourceFor(ep),
		AuthorizationServers:   g.cfg.Auth.AuthorizationServers,
		ScopesSupported:        g.cfg.Auth.ScopesSupported,
		BearerMethodsSupported: []string{"header"},
		ResourceName:           "mcpgate",
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "max-age=300")
	json.NewEncoder(w).Encode(md)
}

// challenge sets the WWW-Authenticate header of a 401 or 403 answer: where
// the resource metadata is, the scopes required, and the error if any.
func (g *Gateway) challenge(w http.ResponseWriter, ep *endpoint, errCode string) {
	var b strings.Builder
	b.WriteString(`Bearer resource_metadata="`)
	b.WriteString(metadataURL(g.resourceFor(ep)))
	b.WriteByte('"')
	if s := g.cfg.Auth.RequiredScopes; len(s) > 0 {
		b.WriteString(`, scope="`)
		b.WriteString(strings.Join(s, " "))
		b.WriteByte('"')
	}
	if errCode != "" {
		b.WriteString(`, error="`)
		b.WriteString(errCode)
		b.WriteByte('"')
	}
	w.Header().Set("WWW-Authenticate", b.String())
}

// missingScopes returns the required scopes the principal lacks.
func (g *Gateway) missingScopes(p identity.Principal) []string {
	var missing []string
	for _, want := range g.cfg.Auth.RequiredScopes {
		if !slices.Contains(p.Scopes, want) {
			missing = append(missing, want)
		}
	}
	return missing
}
