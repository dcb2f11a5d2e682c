package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"

	"github.com/mcpgate/mcpgate/internal/catalog"
	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// listKinds describes the merged lists: the result member holding the items
// and whether item names are namespaced.
var listKinds = map[string]struct {
	member     string
	namespaced bool
	has        func(capabilities) bool
}{
	"tools/list":               {"tools", true, func(c capabilities) bool { return c.tools }},
	"prompts/list":             {"prompts", true, func(c capabilities) bool { return c.prompts }},
	"resources/list":           {"resources", false, func(c capabilities) bool { return c.resources }},
	"resources/templates/list": {"resourceTemplates", false, func(c capabilities) bool { return c.resources }},
}

// catalogState is an aggregate session's merged catalog. Lists are cached
// until an upstream reports a change or comes or goes; gen names the
// catalog generation that cursors refer to.
type catalogState struct {
	gen       uint64
	lists     map[string][][]byte
	resources map[string]string // resource URI → server
	templates []ownedTemplate
}

type ownedTemplate struct {
	server string
	tmpl   *catalog.Template
}

func (c *catalogState) invalidate() {
	c.gen++
	c.lists = nil
	c.resources = nil
	c.templates = nil
}

// routeAggregate resolves a request on the aggregate endpoint.
func (s *clientSession) routeAggregate(ctx context.Context, msg *mcpwire.Message) (*target, *httpError) {
	switch msg.Method {
	case "tools/list", "prompts/list", "resources/list", "resources/templates/list":
		return &target{local: s.serveList}, nil
	case "logging/setLevel":
		return &target{local: s.serveSetLevel}, nil
	case "tools/call", "prompts/get":
		what := "tool"
		if msg.Method == "prompts/get" {
			what = "prompt"
		}
		name, _ := mcpwire.StringValue(field(msg.Params, "name"))
		srv, own, ok := s.splitName(name)
		if !ok {
			return nil, &httpError{Code: mcpwire.CodeInvalidParams, Msg: fmt.Sprintf("unknown %s %q; list %ss to see the available names", what, truncate(name, 128), what), Outcome: outcomeInvalid}
		}
		params := mcpwire.ReplaceParamsField(msg.Params, "name", quote(own))
		return &target{server: srv, method: msg.Method, params: params, tool: own}, nil
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		uri, _ := mcpwire.StringValue(field(msg.Params, "uri"))
		srv := s.resourceOwner(ctx, uri)
		if srv == nil {
			return nil, &httpError{Code: mcpwire.CodeResourceNotFound, Msg: "resource not found", Outcome: outcomeInvalid}
		}
		return &target{server: srv, method: msg.Method, params: msg.Params}, nil
	case "completion/complete":
		return s.routeCompletion(ctx, msg)
	default:
		return nil, &httpError{Code: mcpwire.CodeMethodNotFound, Msg: "method " + truncate(msg.Method, 64) + " is not available on the aggregate endpoint; use /servers/<name>/mcp", Outcome: outcomeInvalid}
	}
}

func (s *clientSession) splitName(name string) (*server, string, bool) {
	srvName, own, ok := catalog.Split(name)
	if !ok {
		return nil, "", false
	}
	srv, ok := s.g.servers[srvName]
	return srv, own, ok
}

func (s *clientSession) routeCompletion(ctx context.Context, msg *mcpwire.Message) (*target, *httpError) {
	ref := field(msg.Params, "ref")
	typ, _ := mcpwire.StringValue(field(ref, "type"))
	switch typ {
	case "ref/prompt":
		name, _ := mcpwire.StringValue(field(ref, "name"))
		srv, own, ok := s.splitName(name)
		if !ok {
			return nil, &httpError{Code: mcpwire.CodeInvalidParams, Msg: "unknown prompt in completion ref", Outcome: outcomeInvalid}
		}
		ref = mcpwire.ReplaceParamsField(ref, "name", quote(own))
		return &target{server: srv, method: msg.Method, params: mcpwire.ReplaceParamsField(msg.Params, "ref", ref), tool: own}, nil
	case "ref/resource":
		uri, _ := mcpwire.StringValue(field(ref, "uri"))
		if srv := s.resourceOwner(ctx, uri); srv != nil {
			return &target{server: srv, method: msg.Method, params: msg.Params}, nil
		}
		return nil, &httpError{Code: mcpwire.CodeResourceNotFound, Msg: "resource not found", Outcome: outcomeInvalid}
	}
	return nil, &httpError{Code: mcpwire.CodeInvalidParams, Msg: "completion ref.type must be ref/prompt or ref/resource", Outcome: outcomeInvalid}
}

// resourceOwner finds the server of a resource URI: from the listed
// resources, then the listed templates; the lists are fetched if needed.
func (s *clientSession) resourceOwner(ctx context.Context, uri string) *server {
	if uri == "" {
		return nil
	}
	for attempt := 0; attempt < 2; attempt++ {
		s.mu.Lock()
		indexed := s.cat.resources != nil
		name, ok := s.cat.resources[uri]
		if !ok {
			for _, t := range s.cat.templates {
				if t.tmpl.Match(uri) {
					name, ok = t.server, true
					break
				}
			}
		}
		s.mu.Unlock()
		if ok {
			return s.g.servers[name]
		}
		if indexed && attempt > 0 {
			break
		}
		s.mergedList(ctx, "resources/list")
		s.mergedList(ctx, "resources/templates/list")
	}
	// One server with resources can only be that one.
	var only *server
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, up := range s.ups {
		if up.caps.resources {
			if only != nil {
				return nil
			}
			only = up.srv
		}
	}
	return only
}

// serveList answers a list request from the merged catalog, a page at a time.
func (s *clientSession) serveList(w http.ResponseWriter, r *http.Request, msg *mcpwire.Message) {
	rec := recordFrom(r.Context())
	kind := listKinds[msg.Method]
	items, gen := s.mergedList(r.Context(), msg.Method)
	offset := 0
	if c, ok := mcpwire.StringValue(field(msg.Params, "cursor")); ok {
		var err error
		if offset, err = catalog.DecodeCursor(c, gen); err != nil {
			e := &httpError{Code: mcpwire.CodeInvalidParams, Msg: "invalid or expired cursor; list again without a cursor", Outcome: outcomeInvalid}
			rec.setOutcome(e.Outcome, err)
			e.render(w, msg.ID)
			return
		}
	}
	lo, hi, next := catalog.Page(len(items), offset, s.g.opts.PageSize)
	var b bytes.Buffer
	b.WriteString(`{"`)
	b.WriteString(kind.member)
	b.WriteString(`":[`)
	for i, it := range items[lo:hi] {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(it)
	}
	b.WriteByte(']')
	if next >= 0 {
		b.WriteString(`,"nextCursor":`)
		b.Write(quote(catalog.EncodeCursor(gen, next)))
	}
	b.WriteByte('}')
	writeResult(w, msg.ID, b.Bytes())
}

// mergedList returns the session's merged list for method, fetching every
// upstream's full list (all pages) when the cache is stale. Servers that
// fail are left out with a warning.
func (s *clientSession) mergedList(ctx context.Context, method string) ([][]byte, uint64) {
	s.connectMissing(ctx)
	s.mu.Lock()
	if items, ok := s.cat.lists[method]; ok {
		gen := s.cat.gen
		s.mu.Unlock()
		return items, gen
	}
	gen := s.cat.gen
	kind := listKinds[method]
	var ups []*upstreamSession
	for _, name := range s.g.names {
		if up, ok := s.ups[name]; ok && kind.has(up.caps) {
			ups = append(ups, up)
		}
	}
	s.mu.Unlock()

	perServer := make([][][]byte, len(ups))
	indexes := make([]*toolIndex, len(ups))
	errs := make([]error, len(ups))
	var wg sync.WaitGroup
	for i, up := range ups {
		wg.Go(func() {
			if method == "tools/list" {
				// The listing also rebuilds the server's tool index.
				up.tools.mu.Lock()
				toolsGen := up.tools.gen
				up.tools.mu.Unlock()
				perServer[i], errs[i] = s.fetchAll(ctx, up, method, kind.member)
				if errs[i] == nil {
					indexes[i] = s.indexTools(ctx, up, perServer[i], toolsGen)
				}
				return
			}
			perServer[i], errs[i] = s.fetchAll(ctx, up, method, kind.member)
		})
	}
	wg.Wait()
	filter := s.g.filtersLists()

	var items [][]byte
	resources := map[string]string{}
	var templates []ownedTemplate
	seenTemplates := map[string]bool{}
	complete := true
	for i, up := range ups {
		if errs[i] != nil {
			complete = false
			s.g.logger.Warn("listing failed; server left out of the catalog", "server", up.srv.name, "method", method, "session_id", s.id, "error", errs[i])
			continue
		}
		for _, it := range perServer[i] {
			if filter && !s.visible(ctx, up.srv, method, it, indexes[i]) {
				continue
			}
			switch {
			case kind.namespaced:
				name, _ := mcpwire.StringValue(field(it, "name"))
				q, ok := catalog.Qualify(up.srv.name, name)
				if !ok {
					s.g.logger.Warn("name does not fit the aggregate namespace; left out", "server", up.srv.name, "name", truncate(name, 128))
					continue
				}
				it = mcpwire.ReplaceParamsField(it, "name", quote(q))
			case method == "resources/list":
				uri, _ := mcpwire.StringValue(field(it, "uri"))
				if _, dup := resources[uri]; dup {
					continue
				}
				resources[uri] = up.srv.name
			case method == "resources/templates/list":
				ut, _ := mcpwire.StringValue(field(it, "uriTemplate"))
				if seenTemplates[ut] {
					continue
				}
				seenTemplates[ut] = true
				if t, err := catalog.CompileTemplate(ut); err == nil {
					templates = append(templates, ownedTemplate{server: up.srv.name, tmpl: t})
				}
			}
			items = append(items, it)
		}
	}
	if items == nil {
		items = [][]byte{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cat.gen != gen || !complete {
		return items, s.cat.gen // changed meanwhile or partial: answer, don't cache
	}
	if s.cat.lists == nil {
		s.cat.lists = map[string][][]byte{}
	}
	s.cat.lists[method] = items
	switch method {
	case "resources/list":
		s.cat.resources = resources
	case "resources/templates/list":
		s.cat.templates = templates
	}
	return items, gen
}

// connectMissing retries servers this session has no upstream session
// with, unless they are backing off after a failure.
func (s *clientSession) connectMissing(ctx context.Context) {
	s.mu.Lock()
	var missing []*server
	for _, name := range s.g.names {
		if _, ok := s.ups[name]; !ok {
			missing = append(missing, s.g.servers[name])
		}
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, srv := range missing {
		wg.Go(func() { s.upstream(ctx, srv) })
	}
	wg.Wait()
}

// maxListPages bounds how many pages the gateway follows per upstream list.
const maxListPages = 100

// fetchAll collects every page of one upstream's list.
func (s *clientSession) fetchAll(ctx context.Context, up *upstreamSession, method, member string) ([][]byte, error) {
	var all [][]byte
	var cursor []byte
	for page := 0; page < maxListPages; page++ {
		params := []byte(`{}`)
		if cursor != nil {
			params = []byte(`{"cursor":` + string(cursor) + `}`)
		}
		res, err := s.roundTrip(ctx, up, method, params)
		if err != nil {
			return nil, err
		}
		var page struct {
			Items      []json.RawMessage
			NextCursor json.RawMessage `json:"nextCursor"`
		}
		raw := field(res, member)
		if err := json.Unmarshal(raw, &page.Items); err != nil && raw != nil {
			return nil, fmt.Errorf("%s result: %w", method, err)
		}
		for _, it := range page.Items {
			all = append(all, it)
		}
		cursor = field(res, "nextCursor")
		if c, ok := mcpwire.StringValue(cursor); !ok || c == "" {
			return all, nil
		}
	}
	return all, fmt.Errorf("%s: more than %d pages", method, maxListPages)
}

// roundTrip makes a gateway-originated call and returns its result. What
// the upstream sends before the response goes to the client's GET stream.
func (s *clientSession) roundTrip(ctx context.Context, up *upstreamSession, method string, params []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(s.upstreamContext(ctx, ""), up.srv.cfg.ResponseTimeout.D())
	defer cancel()
	st, err := up.conn.Call(ctx, up.conn.NewID(), method, params)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	for {
		m, err := st.Next()
		if err != nil {
			return nil, err
		}
		if isFinal(m, st) {
			if m.Kind == mcpwire.KindError {
				return nil, fmt.Errorf("%s: upstream error code %d", method, m.ErrorCode)
			}
			return m.Result, nil
		}
		if data := s.toClient(up, m, nil); data != nil {
			s.standalone.append(data)
		}
	}
}

// serveSetLevel sets the log level on every upstream that logs.
func (s *clientSession) serveSetLevel(w http.ResponseWriter, r *http.Request, msg *mcpwire.Message) {
	s.mu.Lock()
	s.logLevel = msg.Params
	var ups []*upstreamSession
	for _, up := range s.ups {
		if up.caps.logging {
			ups = append(ups, up)
		}
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []string
	for _, up := range ups {
		wg.Go(func() {
			if _, err := s.roundTrip(r.Context(), up, msg.Method, msg.Params); err != nil {
				mu.Lock()
				failed = append(failed, up.srv.name)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(failed) > 0 {
		slices.Sort(failed)
		s.g.logger.Warn("logging/setLevel failed on some servers", "servers", failed, "session_id", s.id)
	}
	writeEmptyResult(w, r, msg)
}

// truncate shortens s for use in a message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
