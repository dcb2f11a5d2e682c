// Package demo owns the built-in MCP server that `mcpgate demo` puts behind
// the gateway: a notebook with a read-only tool, a write tool, a resource,
// a resource template and a prompt, so every path can be tried in a minute.
package demo

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Notebook is the demo server's state: named notes in memory.
type Notebook struct {
	mu    sync.Mutex // guards notes
	notes map[string]string
}

// NewServer returns the demo MCP server.
func NewServer(version string) *mcp.Server {
	nb := &Notebook{notes: map[string]string{"welcome": "This note came through mcpgate."}}
	s := mcp.NewServer(&mcp.Implementation{Name: "mcpgate-demo", Title: "mcpgate demo notebook", Version: version},
		&mcp.ServerOptions{Instructions: "A notebook: read notes with read_note, save them with save_note."})
	yes := true
	mcp.AddTool(s, &mcp.Tool{
		Name:        "read_note",
		Description: "Read a note by name. Returns the note's text.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: new(bool)},
	}, nb.read)
	mcp.AddTool(s, &mcp.Tool{
		Name:        "save_note",
		Description: "Save a note under a name, replacing any note of that name.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: &yes, IdempotentHint: true, OpenWorldHint: new(bool)},
	}, nb.save)
	s.AddResource(&mcp.Resource{URI: "demo://notes", Name: "notes", Title: "Index of notes", MIMEType: "text/plain"}, nb.index)
	s.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: "demo://notes/{name}", Name: "note", Title: "One note", MIMEType: "text/plain"}, nb.readResource)
	s.AddPrompt(&mcp.Prompt{
		Name:        "summarize_note",
		Description: "Ask the model to summarize one note.",
		Arguments:   []*mcp.PromptArgument{{Name: "name", Description: "the note's name", Required: true}},
	}, nb.prompt)
	return s
}

type readArgs struct {
	Name string `json:"name" jsonschema:"the note's name"`
}

type saveArgs struct {
	Name string `json:"name" jsonschema:"the note's name"`
	Text string `json:"text" jsonschema:"the note's text"`
}

func (nb *Notebook) get(name string) (string, bool) {
	nb.mu.Lock()
	defer nb.mu.Unlock()
	t, ok := nb.notes[name]
	return t, ok
}

func (nb *Notebook) read(_ context.Context, _ *mcp.CallToolRequest, in readArgs) (*mcp.CallToolResult, any, error) {
	t, ok := nb.get(in.Name)
	if !ok {
		return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf("no note named %q", in.Name)}}}, nil, nil
	}
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: t}}}, nil, nil
}

func (nb *Notebook) save(_ context.Context, _ *mcp.CallToolRequest, in saveArgs) (*mcp.CallToolResult, any, error) {
	if in.Name == "" {
		return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "name must not be empty"}}}, nil, nil
	}
	nb.mu.Lock()
	nb.notes[in.Name] = in.Text
	nb.mu.Unlock()
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "saved " + in.Name}}}, nil, nil
}

func (nb *Notebook) index(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	nb.mu.Lock()
	names := make([]string, 0, len(nb.notes))
	for n := range nb.notes {
		names = append(names, n)
	}
	nb.mu.Unlock()
	slices.Sort(names)
	return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, MIMEType: "text/plain", Text: strings.Join(names, "\n")}}}, nil
}

func (nb *Notebook) readResource(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	name := strings.TrimPrefix(req.Params.URI, "demo://notes/")
	t, ok := nb.get(name)
	if !ok {
		return nil, mcp.ResourceNotFoundError(req.Params.URI)
	}
	return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, MIMEType: "text/plain", Text: t}}}, nil
}

func (nb *Notebook) prompt(_ context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
	name := req.Params.Arguments["name"]
	t, ok := nb.get(name)
	if !ok {
		return nil, fmt.Errorf("no note named %q", name)
	}
	return &mcp.GetPromptResult{
		Description: "Summarize note " + name,
		Messages:    []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: "Summarize this note in one sentence:\n\n" + t}}},
	}, nil
}

// Serve runs the demo server over sessionful Streamable HTTP on ln until ctx
// ends. ln should be a loopback listener.
func Serve(ctx context.Context, ln net.Listener, version string) error {
	s := NewServer(version)
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	srv := &http.Server{Handler: h}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		return err
	}
	return nil
}
