package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/gateway"
)

// End-to-end tests driving the gateway with the Go SDK client against real
// upstreams: the conformance everything-server processes and in-test Go SDK
// servers over httptest.

const (
	simpleText    = "This is a simple text response for testing."
	staticText    = "This is the content of the static text resource."
	simplePrompt  = "This is a simple prompt for testing."
	sampledText   = "sampled by the e2e client"
	elicitMessage = "Which username do you want?"
)

// clientProbe records what the gateway delivers to a Go SDK client's
// handlers, and answers sampling and elicitation requests.
type clientProbe struct {
	mu           sync.Mutex // guards the fields below
	progress     map[string][]float64
	logs         []string
	samplings    []string // prompts received
	elicitations []string // messages received

	toolsChanged chan struct{}
}

func newClientProbe() *clientProbe {
	return &clientProbe{progress: map[string][]float64{}, toolsChanged: make(chan struct{}, 64)}
}

func (p *clientProbe) client() *mcp.Client {
	return mcp.NewClient(&mcp.Implementation{Name: "mcpgate-e2e", Version: "1.0.0"}, &mcp.ClientOptions{
		CreateMessageHandler: func(_ context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			prompt := ""
			if len(req.Params.Messages) > 0 {
				if tc, ok := req.Params.Messages[0].Content.(*mcp.TextContent); ok {
					prompt = tc.Text
				}
			}
			p.mu.Lock()
			p.samplings = append(p.samplings, prompt)
			p.mu.Unlock()
			return &mcp.CreateMessageResult{Content: &mcp.TextContent{Text: sampledText}, Model: "e2e-model", Role: "assistant"}, nil
		},
		ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			p.mu.Lock()
			p.elicitations = append(p.elicitations, req.Params.Message)
			p.mu.Unlock()
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"username": "gopher"}}, nil
		},
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			p.mu.Lock()
			defer p.mu.Unlock()
			tok := fmt.Sprint(req.Params.ProgressToken)
			p.progress[tok] = append(p.progress[tok], req.Params.Progress)
		},
		LoggingMessageHandler: func(_ context.Context, req *mcp.LoggingMessageRequest) {
			p.mu.Lock()
			defer p.mu.Unlock()
			p.logs = append(p.logs, fmt.Sprint(req.Params.Data))
		},
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
			select {
			case p.toolsChanged <- struct{}{}:
			default:
			}
		},
	})
}

func (p *clientProbe) progressFor(token string) []float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.progress[token])
}

func (p *clientProbe) logMessages() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.logs)
}

func (p *clientProbe) samplingPrompts() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.samplings)
}

func (p *clientProbe) elicitationMessages() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.elicitations)
}

// drainToolsChanged forgets list_changed notifications received so far.
func (p *clientProbe) drainToolsChanged() {
	for {
		select {
		case <-p.toolsChanged:
		default:
			return
		}
	}
}

// wireLog records the client's POSTs: the JSON-RPC method, the HTTP status
// and, for a failed one, the body.
type wireLog struct {
	base http.RoundTripper

	mu    sync.Mutex // guards posts
	posts []wirePost
}

type wirePost struct {
	Method string
	Status int
	Body   []byte // only for non-2xx answers
}

func (l *wireLog) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodPost || req.Body == nil {
		return l.base.RoundTrip(req)
	}
	body, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	var env struct{ Method string }
	json.Unmarshal(body, &env)
	resp, err := l.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	p := wirePost{Method: env.Method, Status: resp.StatusCode}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		p.Body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(p.Body))
	}
	l.mu.Lock()
	l.posts = append(l.posts, p)
	l.mu.Unlock()
	return resp, nil
}

func (l *wireLog) all() []wirePost {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.posts)
}

// connectGo connects a Go SDK client to endpoint with the SDK's default
// session options (it tries server/discover at 2026-07-28 first).
func connectGo(t *testing.T, ctx context.Context, endpoint string, p *clientProbe) (*mcp.ClientSession, *wireLog) {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	wl := &wireLog{base: tr}
	cs, err := p.client().Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:   endpoint,
		HTTPClient: &http.Client{Transport: wl},
	}, nil)
	if err != nil {
		t.Fatalf("connecting to %s: %v", endpoint, err)
	}
	t.Cleanup(func() {
		cs.Close()
		tr.CloseIdleConnections()
	})
	return cs, wl
}

// checkDiscoverFallback asserts the 2026-07-28 probe path: the client sent
// server/discover first, the gateway refused it with HTTP 400 and -32022
// naming the legacy versions, and the client then initialized at 2025-11-25.
func checkDiscoverFallback(t *testing.T, cs *mcp.ClientSession, wl *wireLog) {
	t.Helper()
	posts := wl.all()
	if len(posts) < 2 {
		t.Fatalf("client POSTs = %+v, want server/discover then initialize", posts)
	}
	d := posts[0]
	if d.Method != "server/discover" || d.Status != http.StatusBadRequest {
		t.Errorf("first POST = %s → %d, want server/discover → 400", d.Method, d.Status)
	}
	var body struct {
		Error struct {
			Code int64
			Data struct{ Supported []string }
		}
	}
	if err := json.Unmarshal(d.Body, &body); err != nil {
		t.Errorf("discover answer is not JSON-RPC: %v: %s", err, d.Body)
	}
	if body.Error.Code != -32022 || !slices.Contains(body.Error.Data.Supported, "2025-11-25") {
		t.Errorf("discover answer = %s, want code -32022 with data.supported listing 2025-11-25", d.Body)
	}
	if posts[1].Method != "initialize" || posts[1].Status != http.StatusOK {
		t.Errorf("second POST = %s → %d, want initialize → 200", posts[1].Method, posts[1].Status)
	}
	if v := cs.InitializeResult().ProtocolVersion; v != "2025-11-25" {
		t.Errorf("negotiated protocol version %q, want 2025-11-25", v)
	}
}

// waitFor polls cond every interval until it holds or d passes.
func waitFor(d, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
}

func resultText(r *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range r.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

func callText(t *testing.T, ctx context.Context, cs *mcp.ClientSession, params *mcp.CallToolParams) string {
	t.Helper()
	res, err := cs.CallTool(ctx, params)
	if err != nil {
		t.Fatalf("tools/call %s: %v", params.Name, err)
	}
	if res.IsError {
		t.Fatalf("tools/call %s: isError: %s", params.Name, resultText(res))
	}
	return resultText(res)
}

func toolNames(t *testing.T, ctx context.Context, cs *mcp.ClientSession) []string {
	t.Helper()
	var names []string
	for tool, err := range cs.Tools(ctx, nil) {
		if err != nil {
			t.Fatalf("tools/list: %v", err)
		}
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	return names
}

func promptNames(t *testing.T, ctx context.Context, cs *mcp.ClientSession) []string {
	t.Helper()
	var names []string
	for p, err := range cs.Prompts(ctx, nil) {
		if err != nil {
			t.Fatalf("prompts/list: %v", err)
		}
		names = append(names, p.Name)
	}
	slices.Sort(names)
	return names
}

// accessRecord is one access log record of the gateway.
type accessRecord struct {
	Msg, Path, Method, Server, Tool, Outcome string
}

func accessLog(logs *syncBuffer) []accessRecord {
	var out []accessRecord
	for line := range strings.SplitSeq(logs.String(), "\n") {
		var r accessRecord
		if json.Unmarshal([]byte(line), &r) == nil && r.Msg == "request" {
			out = append(out, r)
		}
	}
	return out
}

// expectRouted waits for the access record of a request the gateway routed
// to server as the server's own name.
func expectRouted(t *testing.T, gw *testGateway, method, server, name string) {
	t.Helper()
	found := waitFor(5*time.Second, 10*time.Millisecond, func() bool {
		for _, r := range accessLog(gw.logs) {
			if r.Method == method && r.Server == server && r.Tool == name && r.Outcome == "ok" {
				return true
			}
		}
		return false
	})
	if !found {
		t.Errorf("no access record of %s routed to server %q as %q with outcome ok", method, server, name)
	}
}

// exerciseFeatures drives one session through everything a host uses:
// calls with progress, logging, sampling and elicitation, resources,
// templates, prompts and completion. prefix is what the endpoint puts in
// front of the everything-server's tool and prompt names.
func exerciseFeatures(t *testing.T, ctx context.Context, cs *mcp.ClientSession, p *clientProbe, prefix string) {
	t.Run("simple_text", func(t *testing.T) {
		if got := callText(t, ctx, cs, &mcp.CallToolParams{Name: prefix + "test_simple_text"}); got != simpleText {
			t.Errorf("%stest_simple_text = %q, want %q", prefix, got, simpleText)
		}
	})

	t.Run("progress", func(t *testing.T) {
		token := "progress-" + strings.TrimSuffix(prefix, "__")
		params := &mcp.CallToolParams{Name: prefix + "test_tool_with_progress"}
		params.SetProgressToken(token)
		if got := callText(t, ctx, cs, params); got != token {
			t.Errorf("the tool echoed progress token %q, want %q", got, token)
		}
		if !waitFor(5*time.Second, 10*time.Millisecond, func() bool { return len(p.progressFor(token)) >= 3 }) {
			t.Fatalf("progress notifications for %q: %v, want 3", token, p.progressFor(token))
		}
		if got, want := p.progressFor(token), []float64{0, 50, 100}; !slices.Equal(got, want) {
			t.Errorf("progress values %v, want %v", got, want)
		}
	})

	t.Run("logging", func(t *testing.T) {
		if err := cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: "info"}); err != nil {
			t.Fatalf("logging/setLevel: %v", err)
		}
		before := len(p.logMessages())
		callText(t, ctx, cs, &mcp.CallToolParams{Name: prefix + "test_tool_with_logging"})
		want := []string{"Tool execution started", "Tool processing data", "Tool execution completed"}
		if !waitFor(5*time.Second, 10*time.Millisecond, func() bool { return len(p.logMessages())-before >= 3 }) {
			t.Fatalf("log messages %q, want %q", p.logMessages()[before:], want)
		}
		if got := p.logMessages()[before:]; !slices.Equal(got, want) {
			t.Errorf("log messages %q, want %q", got, want)
		}
	})

	t.Run("sampling", func(t *testing.T) {
		before := len(p.samplingPrompts())
		got := callText(t, ctx, cs, &mcp.CallToolParams{Name: prefix + "test_sampling", Arguments: map[string]any{"prompt": "say hi"}})
		if want := "LLM response: " + sampledText; got != want {
			t.Errorf("test_sampling = %q, want %q", got, want)
		}
		if s := p.samplingPrompts()[before:]; !slices.Equal(s, []string{"say hi"}) {
			t.Errorf("sampling handler saw prompts %q, want exactly one, \"say hi\"", s)
		}
	})

	t.Run("elicitation", func(t *testing.T) {
		before := len(p.elicitationMessages())
		got := callText(t, ctx, cs, &mcp.CallToolParams{Name: prefix + "test_elicitation", Arguments: map[string]any{"message": elicitMessage}})
		if !strings.Contains(got, "action=accept") || !strings.Contains(got, "username:gopher") {
			t.Errorf("test_elicitation = %q, want the accepted username gopher", got)
		}
		if e := p.elicitationMessages()[before:]; !slices.Equal(e, []string{elicitMessage}) {
			t.Errorf("elicitation handler saw %q, want exactly one, %q", e, elicitMessage)
		}
	})

	t.Run("resources", func(t *testing.T) {
		seen := map[string]int{}
		for r, err := range cs.Resources(ctx, nil) {
			if err != nil {
				t.Fatalf("resources/list: %v", err)
			}
			seen[r.URI]++
		}
		for _, uri := range []string{"test://static-text", "test://static-binary", "test://watched-resource"} {
			if seen[uri] != 1 {
				t.Errorf("resources/list has %s %d times, want once (all: %v)", uri, seen[uri], seen)
			}
		}
		res, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "test://static-text"})
		if err != nil {
			t.Fatalf("resources/read test://static-text: %v", err)
		}
		if len(res.Contents) != 1 || res.Contents[0].Text != staticText {
			t.Errorf("test://static-text contents = %+v, want %q", res.Contents, staticText)
		}
	})

	t.Run("template", func(t *testing.T) {
		var templates []string
		for rt, err := range cs.ResourceTemplates(ctx, nil) {
			if err != nil {
				t.Fatalf("resources/templates/list: %v", err)
			}
			templates = append(templates, rt.URITemplate)
		}
		if !slices.Contains(templates, "test://template/{id}/data") {
			t.Errorf("resources/templates/list = %q, want test://template/{id}/data", templates)
		}
		res, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "test://template/42/data"})
		if err != nil {
			t.Fatalf("resources/read test://template/42/data: %v", err)
		}
		if len(res.Contents) != 1 || !strings.Contains(res.Contents[0].Text, "Data for ID: 42") {
			t.Errorf("test://template/42/data contents = %+v, want data for ID 42", res.Contents)
		}
	})

	t.Run("prompts", func(t *testing.T) {
		names := promptNames(t, ctx, cs)
		for _, want := range []string{prefix + "test_simple_prompt", prefix + "test_prompt_with_arguments"} {
			if !slices.Contains(names, want) {
				t.Errorf("prompts/list = %q, want %s", names, want)
			}
		}
		res, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: prefix + "test_simple_prompt"})
		if err != nil {
			t.Fatalf("prompts/get: %v", err)
		}
		if len(res.Messages) != 1 {
			t.Fatalf("prompt messages = %+v, want one", res.Messages)
		}
		if tc, ok := res.Messages[0].Content.(*mcp.TextContent); !ok || tc.Text != simplePrompt {
			t.Errorf("prompt message = %+v, want %q", res.Messages[0].Content, simplePrompt)
		}
		res, err = cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: prefix + "test_prompt_with_arguments", Arguments: map[string]string{"arg1": "one", "arg2": "two"}})
		if err != nil {
			t.Fatalf("prompts/get with arguments: %v", err)
		}
		if tc, ok := res.Messages[0].Content.(*mcp.TextContent); !ok || !strings.Contains(tc.Text, "arg1='one', arg2='two'") {
			t.Errorf("prompt with arguments = %+v", res.Messages[0].Content)
		}
	})

	t.Run("completion", func(t *testing.T) {
		if cs.InitializeResult().Capabilities.Completions == nil {
			t.Skip("the endpoint does not declare completions")
		}
		res, err := cs.Complete(ctx, &mcp.CompleteParams{
			Ref:      &mcp.CompleteReference{Type: "ref/prompt", Name: prefix + "test_prompt_with_arguments"},
			Argument: mcp.CompleteParamsArgument{Name: "arg1", Value: "o"},
		})
		if err != nil {
			t.Fatalf("completion/complete: %v", err)
		}
		if res.Completion.Values == nil || len(res.Completion.Values) != 0 {
			t.Errorf("completion values = %#v, want the server's empty list", res.Completion.Values)
		}
	})
}

// TestAggregateWithGoClient drives /mcp over two everything-servers with
// the Go SDK client: namespaced catalogs, routing of calls, resources,
// templates, prompts and completions, server→client requests and
// notifications relayed, and pagination of the merged lists.
func TestAggregateWithGoClient(t *testing.T) {
	one, two := startEverything(t), startEverything(t)
	cfg := fmt.Sprintf("listen: 127.0.0.1:0\nservers:\n  everything:\n    url: %s\n  second:\n    url: %s\n", one.URL, two.URL)
	gw := startGateway(t, cfg, gateway.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	p := newClientProbe()
	cs, wl := connectGo(t, ctx, gw.URL+"/mcp", p)
	t.Run("discover_fallback", func(t *testing.T) {
		checkDiscoverFallback(t, cs, wl)
		if name := cs.InitializeResult().ServerInfo.Name; name != "mcpgate" {
			t.Errorf("serverInfo.name = %q, want mcpgate", name)
		}
	})

	var tools []string
	t.Run("tools_namespaced", func(t *testing.T) {
		tools = toolNames(t, ctx, cs)
		for _, want := range []string{"everything__test_simple_text", "second__test_simple_text", "everything__test_sampling", "second__test_elicitation"} {
			if !slices.Contains(tools, want) {
				t.Errorf("tools/list lacks %s", want)
			}
		}
		for _, name := range tools {
			if !strings.HasPrefix(name, "everything__") && !strings.HasPrefix(name, "second__") {
				t.Errorf("tool %q is not namespaced", name)
			}
		}
		var perServer [2]int
		for _, name := range tools {
			if strings.HasPrefix(name, "everything__") {
				perServer[0]++
			} else {
				perServer[1]++
			}
		}
		if perServer[0] != perServer[1] || perServer[0] < 10 {
			t.Errorf("tools per server: everything %d, second %d; want the same catalog from both", perServer[0], perServer[1])
		}
	})

	t.Run("routing", func(t *testing.T) {
		for _, srv := range []string{"everything", "second"} {
			if got := callText(t, ctx, cs, &mcp.CallToolParams{Name: srv + "__test_simple_text"}); got != simpleText {
				t.Errorf("%s__test_simple_text = %q, want %q", srv, got, simpleText)
			}
			expectRouted(t, gw, "tools/call", srv, "test_simple_text")
		}
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_simple_text"})
		if werr := (*jsonrpc.Error)(nil); !errors.As(err, &werr) || werr.Code != -32602 {
			t.Errorf("un-prefixed tools/call: err %v, want invalid params (-32602)", err)
		}
	})

	exerciseFeatures(t, ctx, cs, p, "everything__")

	t.Run("routed_to_owner", func(t *testing.T) {
		expectRouted(t, gw, "resources/read", "everything", "")
		expectRouted(t, gw, "prompts/get", "everything", "test_prompt_with_arguments")
		expectRouted(t, gw, "completion/complete", "everything", "test_prompt_with_arguments")
		if got, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "second__test_simple_prompt"}); err != nil || len(got.Messages) != 1 {
			t.Fatalf("prompts/get second__test_simple_prompt: %v", err)
		}
		expectRouted(t, gw, "prompts/get", "second", "test_simple_prompt")
	})

	t.Run("pagination", func(t *testing.T) {
		paged := startGateway(t, cfg, gateway.Options{PageSize: 5})
		pcs, _ := connectGo(t, ctx, paged.URL+"/mcp", newClientProbe())
		first, err := pcs.ListTools(ctx, nil)
		if err != nil {
			t.Fatalf("tools/list: %v", err)
		}
		if len(first.Tools) != 5 || first.NextCursor == "" {
			t.Errorf("first page: %d tools, nextCursor %q; want 5 and a cursor", len(first.Tools), first.NextCursor)
		}
		if got := toolNames(t, ctx, pcs); !slices.Equal(got, tools) {
			t.Errorf("paged tools/list (%d) differs from the unpaged one (%d):\npaged   %q\nunpaged %q", len(got), len(tools), got, tools)
		}
		if got, want := promptNames(t, ctx, pcs), promptNames(t, ctx, cs); !slices.Equal(got, want) {
			t.Errorf("paged prompts/list = %q, unpaged %q", got, want)
		}
	})
}

// TestPassthroughWithGoClient drives /servers/everything/mcp with the Go
// SDK client: the server's own names and serverInfo, and every feature.
func TestPassthroughWithGoClient(t *testing.T) {
	up := startEverything(t)
	gw := startGateway(t, "listen: 127.0.0.1:0\nservers:\n  everything:\n    url: "+up.URL+"\n", gateway.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	p := newClientProbe()
	cs, wl := connectGo(t, ctx, gw.URL+"/servers/everything/mcp", p)
	t.Run("discover_fallback", func(t *testing.T) {
		checkDiscoverFallback(t, cs, wl)
		if name := cs.InitializeResult().ServerInfo.Name; name != "mcp-conformance-test-server" {
			t.Errorf("serverInfo.name = %q, want the upstream's mcp-conformance-test-server", name)
		}
	})
	t.Run("names_untouched", func(t *testing.T) {
		tools := toolNames(t, ctx, cs)
		for _, want := range []string{"test_simple_text", "test_tool_with_progress", "test_sampling", "test_elicitation"} {
			if !slices.Contains(tools, want) {
				t.Errorf("tools/list lacks %s", want)
			}
		}
		for _, name := range tools {
			if strings.Contains(name, "everything__") {
				t.Errorf("tool %q is namespaced on the passthrough endpoint", name)
			}
		}
	})
	exerciseFeatures(t, ctx, cs, p, "")
}

// TestUpstreamDownAtStart starts a session while one server is down: the
// session serves the live one, and when the down server comes up the client
// is told to list again and finds its tools.
func TestUpstreamDownAtStart(t *testing.T) {
	live := startEverything(t)
	lateAddr := freeAddr(t)
	cfg := fmt.Sprintf("listen: 127.0.0.1:0\nservers:\n  everything:\n    url: %s\n  late:\n    url: http://%s/mcp\n", live.URL, lateAddr)
	gw := startGateway(t, cfg, gateway.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	p := newClientProbe()
	cs, _ := connectGo(t, ctx, gw.URL+"/mcp", p)
	tools := toolNames(t, ctx, cs)
	if !slices.Contains(tools, "everything__test_simple_text") {
		t.Fatalf("tools/list = %q, want everything__test_simple_text", tools)
	}
	for _, name := range tools {
		if !strings.HasPrefix(name, "everything__") {
			t.Errorf("tool %q listed while only everything is up", name)
		}
	}

	// The client's log level holds for the whole session, servers that
	// join later included.
	if err := cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: "info"}); err != nil {
		t.Fatalf("logging/setLevel: %v", err)
	}

	p.drainToolsChanged()
	started := time.Now()
	startEverythingAt(t, lateAddr)
	deadline := time.After(15 * time.Second)
	notified := 0
	for {
		select {
		case <-p.toolsChanged:
			notified++
			tools = toolNames(t, ctx, cs)
			if slices.Contains(tools, "late__test_simple_text") {
				t.Logf("recovered server listed %v after it started (%d list_changed notifications)", time.Since(started).Round(time.Millisecond), notified)
				if got := callText(t, ctx, cs, &mcp.CallToolParams{Name: "late__test_simple_text"}); got != simpleText {
					t.Errorf("late__test_simple_text = %q", got)
				}
				t.Run("log_level_reaches_recovered_server", func(t *testing.T) {
					before := len(p.logMessages())
					callText(t, ctx, cs, &mcp.CallToolParams{Name: "late__test_tool_with_logging"})
					if !waitFor(3*time.Second, 10*time.Millisecond, func() bool { return len(p.logMessages())-before >= 3 }) {
						t.Errorf("late__test_tool_with_logging delivered log messages %q, want 3: the session's level (info, set before the server joined) was not applied to it", p.logMessages()[before:])
					}
				})
				return
			}
		case <-deadline:
			t.Fatalf("15s after the server came up: %d tools/list_changed notifications, and tools/list = %q (want late__ tools)", notified, toolNames(t, ctx, cs))
		}
	}
}

// startSDKServer serves a Go SDK server in the legacy sessionful era on a
// loopback httptest server; wrap, if set, sees every request first.
func startSDKServer(t *testing.T, register func(*mcp.Server), wrap func(http.Handler) http.Handler) *httptest.Server {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "e2e-upstream", Version: "1.0.0"}, nil)
	register(s)
	var h http.Handler = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// TestUpstreamKilledMidStream kills an upstream while a call to it is in
// flight: the client gets a JSON-RPC error promptly, the session keeps
// serving the other server, and the dead server's tools leave the catalog.
func TestUpstreamKilledMidStream(t *testing.T) {
	live := startEverything(t)
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	flaky := startSDKServer(t, func(s *mcp.Server) {
		mcp.AddTool(s, &mcp.Tool{Name: "block", Description: "reports progress, then blocks until released"}, func(ctx context.Context, req *mcp.CallToolRequest, _ any) (*mcp.CallToolResult, any, error) {
			// A progress notification first, so that the answer is an open
			// event stream when the server dies.
			req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: req.Params.GetProgressToken(), Progress: 1, Total: 2})
			started <- struct{}{}
			select {
			case <-ctx.Done():
			case <-release:
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "released"}}}, nil, nil
		})
	}, nil)
	t.Cleanup(func() { close(release) }) // runs before flaky.Close
	cfg := fmt.Sprintf("listen: 127.0.0.1:0\nservers:\n  everything:\n    url: %s\n  flaky:\n    url: %s\n", live.URL, flaky.URL)
	gw := startGateway(t, cfg, gateway.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	p := newClientProbe()
	cs, _ := connectGo(t, ctx, gw.URL+"/mcp", p)
	if tools := toolNames(t, ctx, cs); !slices.Contains(tools, "flaky__block") || !slices.Contains(tools, "everything__test_simple_text") {
		t.Fatalf("tools/list = %q, want flaky__block and everything__test_simple_text", tools)
	}

	type outcome struct {
		res *mcp.CallToolResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		params := &mcp.CallToolParams{Name: "flaky__block"}
		params.SetProgressToken("block-1")
		res, err := cs.CallTool(ctx, params)
		done <- outcome{res, err}
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream never received the call")
	}
	if !waitFor(5*time.Second, 10*time.Millisecond, func() bool { return len(p.progressFor("block-1")) == 1 }) {
		t.Fatal("the call's progress notification never reached the client: the stream is not live")
	}
	p.drainToolsChanged()

	// Kill the upstream: nothing listens any more and every connection
	// (the call's stream, the session's GET stream) breaks.
	killed := time.Now()
	flaky.Listener.Close()
	flaky.CloseClientConnections()

	select {
	case o := <-done:
		if o.err == nil {
			t.Fatalf("the call to the killed server succeeded: %+v", o.res)
		}
		var werr *jsonrpc.Error
		if !errors.As(o.err, &werr) {
			t.Fatalf("the call failed with %v, want a JSON-RPC error", o.err)
		}
		t.Logf("call failed %v after the kill: code %d, %q", time.Since(killed).Round(time.Millisecond), werr.Code, werr.Message)
		if !strings.Contains(werr.Message, "flaky") {
			t.Errorf("error message %q does not name the server", werr.Message)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the call to the killed server hung for 5s")
	}

	if got := callText(t, ctx, cs, &mcp.CallToolParams{Name: "everything__test_simple_text"}); got != simpleText {
		t.Errorf("everything__test_simple_text after the kill = %q", got)
	}

	var tools []string
	gone := waitFor(10*time.Second, 250*time.Millisecond, func() bool {
		tools = toolNames(t, ctx, cs)
		return !slices.ContainsFunc(tools, func(n string) bool { return strings.HasPrefix(n, "flaky__") })
	})
	if !gone {
		dead := slices.DeleteFunc(slices.Clone(tools), func(n string) bool { return !strings.HasPrefix(n, "flaky__") })
		t.Errorf("10s after the kill, tools/list still lists the dead server's tools %q", dead)
	}
	if !slices.Contains(tools, "everything__test_simple_text") {
		t.Errorf("tools/list after the kill = %q, want the live server's tools", tools)
	}

	// A host that caches its tool list learns of the change only through
	// notifications/tools/list_changed.
	select {
	case <-p.toolsChanged:
	case <-time.After(5 * time.Second):
		t.Errorf("no notifications/tools/list_changed reached the client after the server died")
	}
}

// shutdownUpstream is an in-test server with a slow tool that records the
// upstream sessions the gateway opens and the ones it DELETEs.
type shutdownUpstream struct {
	srv     *httptest.Server
	started chan struct{}

	mu      sync.Mutex // guards the fields below
	created map[string]bool
	deleted map[string]bool
}

func startShutdownUpstream(t *testing.T) *shutdownUpstream {
	u := &shutdownUpstream{started: make(chan struct{}, 16), created: map[string]bool{}, deleted: map[string]bool{}}
	u.srv = startSDKServer(t, func(s *mcp.Server) {
		mcp.AddTool(s, &mcp.Tool{Name: "nap", Description: "sleeps for a second"}, func(ctx context.Context, _ *mcp.CallToolRequest, _ any) (*mcp.CallToolResult, any, error) {
			u.started <- struct{}{}
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "napped"}}}, nil, nil
		})
	}, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodDelete {
				u.mu.Lock()
				u.deleted[r.Header.Get("Mcp-Session-Id")] = true
				u.mu.Unlock()
			}
			next.ServeHTTP(w, r)
			if id := w.Header().Get("Mcp-Session-Id"); id != "" && r.Method == http.MethodPost && r.Header.Get("Mcp-Session-Id") == "" {
				u.mu.Lock()
				u.created[id] = true
				u.mu.Unlock()
			}
		})
	})
	return u
}

// TestGracefulShutdown cancels Serve while three calls are in flight: they
// all complete, new sessions are refused, Serve returns within the grace
// period, and every upstream session is ended with DELETE.
func TestGracefulShutdown(t *testing.T) {
	up := startShutdownUpstream(t)
	cfg, err := config.Parse([]byte(fmt.Sprintf("listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\nshutdown_grace: 10s\nservers:\n  slow:\n    url: %s\n", up.srv.URL)))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.ResolveSecrets(); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	useTempStore(t, cfg)
	g, err := gateway.New(cfg, gateway.Options{Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs.String())
		}
	})
	ls, err := g.Listen()
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ls.Data.Addr().String()
	serveCtx, stop := context.WithCancel(context.Background())
	defer stop()
	served := make(chan error, 1)
	go func() { served <- g.Serve(serveCtx, ls) }()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	agg, _ := connectGo(t, ctx, base+"/mcp", newClientProbe())
	single, _ := connectGo(t, ctx, base+"/servers/slow/mcp", newClientProbe())
	connectGo(t, ctx, base+"/mcp", newClientProbe()) // idle, but holds an upstream session too

	type outcome struct {
		name string
		text string
		err  error
	}
	results := make(chan outcome, 3)
	call := func(cs *mcp.ClientSession, name string) {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name})
		o := outcome{name: name, err: err}
		if err == nil {
			o.text = resultText(res)
			if res.IsError {
				o.err = fmt.Errorf("isError: %s", o.text)
			}
		}
		results <- o
	}
	go call(agg, "slow__nap")
	go call(agg, "slow__nap")
	go call(single, "nap")
	for range 3 {
		select {
		case <-up.started:
		case <-time.After(10 * time.Second):
			t.Fatal("the three calls did not all reach the upstream")
		}
	}

	stopped := time.Now()
	stop()
	if !waitFor(5*time.Second, 10*time.Millisecond, func() bool { return g.Readiness().Draining }) {
		t.Fatal("the gateway did not start draining")
	}
	late := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 5 * time.Second}
	req, _ := http.NewRequest(http.MethodPost, base+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"late","version":"1"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if resp, err := late.Do(req); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("initialize during shutdown: HTTP %d %s, want 503 or connection refused", resp.StatusCode, body)
		}
	} else {
		t.Logf("initialize during shutdown: %v", err)
	}

	for range 3 {
		select {
		case o := <-results:
			if o.err != nil || o.text != "napped" {
				t.Errorf("%s during shutdown: %q, %v; want it to complete", o.name, o.text, o.err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("calls in flight did not complete during shutdown")
		}
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve returned %v, want nil", err)
		}
		t.Logf("Serve returned %v after ctx was cancelled", time.Since(stopped).Round(time.Millisecond))
		if d := time.Since(stopped); d > 10*time.Second {
			t.Errorf("Serve took %v, longer than the 10s grace period", d)
		}
	case <-time.After(12 * time.Second):
		t.Fatal("Serve did not return within the grace period")
	}

	up.mu.Lock()
	defer up.mu.Unlock()
	if len(up.created) != 3 {
		t.Errorf("upstream sessions created: %d, want 3 (two on /mcp, one on /servers/slow/mcp)", len(up.created))
	}
	for id := range up.created {
		if !up.deleted[id] {
			t.Errorf("upstream session %s was never DELETEd", id)
		}
	}
}
