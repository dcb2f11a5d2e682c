package main

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/demo"
	"github.com/mcpgate/mcpgate/internal/gateway"
)

func demoCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", "mcpgate demo [--listen ADDR] [--admin ADDR]",
		"Run the gateway on its embedded defaults in front of a built-in demo MCP server\n(a notebook: a read-only tool, a write tool, a resource, a resource template and\na prompt), and print how to connect a client. Everything binds to loopback.", stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "data listener address")
	adminAddr := fs.String("admin", "127.0.0.1:9090", "admin listener address")
	if code, done := parse(fs, args); done {
		return code
	}
	for _, a := range []string{*listen, *adminAddr} {
		if !gateway.IsLoopback(a) {
			fmt.Fprintf(stderr, "mcpgate demo: %s is not a loopback address; the demo runs without authentication and binds loopback only\n", a)
			return 2
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(stderr, "mcpgate demo:", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go demo.Serve(ctx, ln, buildVersion())

	yaml := fmt.Sprintf("listen: %q\nadmin: {listen: %q}\nlog: {format: text}\nstore: {path: \":memory:\"}\nservers:\n  demo:\n    url: http://%s/mcp\n", *listen, *adminAddr, ln.Addr())
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		fmt.Fprintln(stderr, "mcpgate demo:", err)
		return 1
	}
	logger := newLogger(cfg, stderr)
	return serve(cfg, logger, stdout, func(ls gateway.Listeners) {
		base := "http://" + ls.Data.Addr().String()
		fmt.Fprintf(stdout, `
mcpgate demo is running in front of a built-in notebook server.

  All servers (names prefixed demo__):  %[1]s/mcp
  One server (names untouched):         %[1]s/servers/demo/mcp
  Readiness:                            http://%[2]s/readyz

Connect an MCP client over Streamable HTTP to %[1]s/mcp, for example:
  npx @modelcontextprotocol/inspector        then choose "Streamable HTTP" and that URL
  claude mcp add --transport http mcpgate %[1]s/mcp

Then call demo__read_note with {"name": "welcome"}, or demo__save_note.
Ctrl-C stops the demo.

`, base, ls.Admin.Addr())
	})
}
