// Package catalog owns how many servers' tools, prompts and resources become
// one catalog: namespaced names, merged lists with opaque cursors, and the
// routing of names and resource URIs back to their server.
package catalog

import (
	"strings"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// Separator joins a server name and a tool or prompt name on the aggregated
// endpoint. Server names cannot contain it, so the split is unambiguous.
const Separator = "__"

// Qualify returns the aggregated name of a server's tool or prompt, and
// whether it is a valid tool name (^[A-Za-z0-9._-]{1,128}$).
func Qualify(server, name string) (string, bool) {
	q := server + Separator + name
	return q, mcpwire.ValidToolName(q)
}

// Split returns the server and the server's own name for an aggregated name.
func Split(qualified string) (server, name string, ok bool) {
	server, name, ok = strings.Cut(qualified, Separator)
	if !ok || server == "" || name == "" {
		return "", "", false
	}
	return server, name, true
}
