// Package load is the benchmark's MCP load generator: legacy sessionful
// Streamable HTTP sessions spoken over raw HTTP with precomputed request
// bodies, so that the client costs as little CPU as possible while it shares
// the machine with the processes it measures.
package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// ProtocolVersion is the legacy protocol version the sessions negotiate.
const ProtocolVersion = "2025-11-25"

// Error kinds counted by Result.Errors.
const (
	ErrKindTransport = "transport" // connection failed or broke
	ErrKindStatus    = "http"      // a non-2xx status
	ErrKindRPC       = "rpc"       // a JSON-RPC error response
	ErrKindTool      = "tool"      // a result with isError true
	ErrKindMalformed = "malformed" // a 2xx without a result
	ErrKindLost      = "lost"      // 404: the session is gone
)

// CallError is a failed call, by kind.
type CallError struct {
	Kind   string
	Status int
	Err    error
}

func (e *CallError) Error() string {
	switch {
	case e.Err != nil:
		return e.Kind + ": " + e.Err.Error()
	case e.Status != 0:
		return e.Kind + ": HTTP " + strconv.Itoa(e.Status)
	}
	return e.Kind
}

func (e *CallError) Unwrap() error { return e.Err }

// Client holds the HTTP connection pool shared by a run's sessions.
type Client struct {
	url string
	hc  *http.Client
	// Header is sent on every request besides the transport's own, for
	// credentials. Set it before Open.
	Header http.Header
}

// NewClient returns a client for the MCP endpoint url with a keep-alive
// pool of at least conns connections.
func NewClient(url string, conns int) *Client {
	return &Client{url: url, hc: &http.Client{
		Timeout: 2 * time.Minute,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        max(conns, 64) * 2,
			MaxIdleConnsPerHost: max(conns, 64) * 2,
			IdleConnTimeout:     5 * time.Minute,
			DisableCompression:  true,
		},
	}}
}

// CloseIdle closes the pool's idle connections.
func (c *Client) CloseIdle() { c.hc.CloseIdleConnections() }

// Session is one MCP session. It is not safe for concurrent use.
type Session struct {
	c       *Client
	ID      string
	Version string
	hdr     http.Header
	nextID  int64
	req     []byte       // request body, rebuilt per call
	resp    bytes.Buffer // response body, reused
}

var initializeBody = []byte(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"` + ProtocolVersion +
	`","capabilities":{},"clientInfo":{"name":"mcpgate-bench-loadgen","version":"1"}}}`)

// Open initializes a session and sends notifications/initialized.
func (c *Client) Open(ctx context.Context) (*Session, error) {
	s := &Session{c: c, nextID: 1, hdr: http.Header{
		"Content-Type": {"application/json"},
		"Accept":       {"application/json, text/event-stream"},
	}}
	for k, v := range c.Header {
		s.hdr[k] = v
	}
	status, hdr, err := s.post(ctx, initializeBody)
	if err != nil {
		return nil, fmt.Errorf("initialize: %w", err)
	}
	if err := s.check(status); err != nil {
		return nil, fmt.Errorf("initialize: %w", err)
	}
	s.ID = hdr.Get("Mcp-Session-Id")
	if s.ID == "" {
		return nil, errors.New("initialize: no Mcp-Session-Id in the answer")
	}
	s.Version = stringAfter(s.resp.Bytes(), `"protocolVersion":"`)
	if s.Version == "" {
		s.Version = ProtocolVersion
	}
	s.hdr.Set("Mcp-Session-Id", s.ID)
	s.hdr.Set("Mcp-Protocol-Version", s.Version)
	status, _, err = s.post(ctx, []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`))
	if err != nil {
		return nil, fmt.Errorf("notifications/initialized: %w", err)
	}
	if status != http.StatusAccepted && status != http.StatusOK {
		return nil, fmt.Errorf("notifications/initialized: HTTP %d", status)
	}
	return s, nil
}

// Request is a JSON-RPC request body split around its id, so that a call
// costs one append.
type Request struct {
	prefix, suffix []byte
}

// NewRequest returns a request for method with raw JSON params.
func NewRequest(method string, params string) Request {
	return Request{
		prefix: []byte(`{"jsonrpc":"2.0","id":`),
		suffix: []byte(`,"method":"` + method + `","params":` + params + `}`),
	}
}

// ToolCall returns a tools/call request of tool with a text argument of
// textBytes bytes.
func ToolCall(tool string, textBytes int) Request {
	text := bytes.Repeat([]byte("x"), max(textBytes, 0))
	return NewRequest("tools/call", `{"name":"`+tool+`","arguments":{"text":"`+string(text)+`"}}`)
}

// Do sends r and reads the whole answer, SSE or JSON. The answer stays in
// Body until the next call.
func (s *Session) Do(ctx context.Context, r Request) error {
	s.req = append(s.req[:0], r.prefix...)
	s.req = strconv.AppendInt(s.req, s.nextID, 10)
	s.req = append(s.req, r.suffix...)
	s.nextID++
	status, _, err := s.post(ctx, s.req)
	if err != nil {
		return err
	}
	return s.check(status)
}

// Body is the last answer's body.
func (s *Session) Body() []byte { return s.resp.Bytes() }

// check classifies the answer in s.resp.
func (s *Session) check(status int) error {
	b := s.resp.Bytes()
	switch {
	case status == http.StatusNotFound:
		return &CallError{Kind: ErrKindLost, Status: status}
	case status < 200 || status > 299:
		return &CallError{Kind: ErrKindStatus, Status: status}
	case bytes.Contains(b, []byte(`"error":{`)):
		return &CallError{Kind: ErrKindRPC}
	case !bytes.Contains(b, []byte(`"result":`)):
		return &CallError{Kind: ErrKindMalformed}
	case bytes.Contains(b, []byte(`"isError":true`)):
		return &CallError{Kind: ErrKindTool}
	}
	return nil
}

func (s *Session) post(ctx context.Context, body []byte) (int, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.c.url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header = s.hdr
	resp, err := s.c.hc.Do(req)
	if err != nil {
		return 0, nil, &CallError{Kind: ErrKindTransport, Err: err}
	}
	s.resp.Reset()
	_, err = s.resp.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, nil, &CallError{Kind: ErrKindTransport, Err: err}
	}
	return resp.StatusCode, resp.Header, nil
}

// Stream sends r and reads the answer without keeping it: it returns the
// number of body bytes, the time to the first byte and the total time.
func (s *Session) Stream(ctx context.Context, r Request) (n int64, first, total time.Duration, err error) {
	s.req = append(s.req[:0], r.prefix...)
	s.req = strconv.AppendInt(s.req, s.nextID, 10)
	s.req = append(s.req, r.suffix...)
	s.nextID++
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.c.url, bytes.NewReader(s.req))
	if err != nil {
		return 0, 0, 0, err
	}
	req.Header = s.hdr
	resp, err := s.c.hc.Do(req)
	if err != nil {
		return 0, 0, 0, &CallError{Kind: ErrKindTransport, Err: err}
	}
	defer resp.Body.Close()
	buf := make([]byte, 32<<10)
	var head []byte
	for {
		k, rerr := resp.Body.Read(buf)
		if k > 0 && n == 0 {
			first = time.Since(start)
		}
		if len(head) < 1024 {
			head = append(head, buf[:min(k, 1024-len(head))]...)
		}
		n += int64(k)
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return n, first, time.Since(start), &CallError{Kind: ErrKindTransport, Err: rerr}
		}
	}
	total = time.Since(start)
	s.resp.Reset()
	s.resp.Write(head)
	return n, first, total, s.check(resp.StatusCode)
}

// Close ends the session with DELETE.
func (s *Session) Close(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, s.c.url, nil)
	if err != nil {
		return err
	}
	req.Header = s.hdr
	resp, err := s.c.hc.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return nil
}

// stringAfter returns the JSON string value that follows marker in b.
func stringAfter(b []byte, marker string) string {
	i := bytes.Index(b, []byte(marker))
	if i < 0 {
		return ""
	}
	rest := b[i+len(marker):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}
