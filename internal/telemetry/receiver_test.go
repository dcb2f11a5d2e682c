package telemetry_test

import (
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// receiver is an in-process OTLP collector: it keeps every span exported to
// it, with the resource attributes and the request headers they came with.
type receiver struct {
	mu       sync.Mutex // guards the fields below
	spans    []*tracepb.Span
	resource map[string]any
	headers  map[string][]string // lower-case names
}

func (r *receiver) add(req *coltracepb.ExportTraceServiceRequest, headers map[string][]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.headers = map[string][]string{}
	for k, v := range headers {
		r.headers[strings.ToLower(k)] = v
	}
	for _, rs := range req.GetResourceSpans() {
		r.resource = attrMap(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			r.spans = append(r.spans, ss.GetSpans()...)
		}
	}
}

// exported returns the spans received so far, by name.
func (r *receiver) exported() map[string]*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]*tracepb.Span{}
	for _, s := range r.spans {
		out[s.GetName()] = s
	}
	return out
}

func (r *receiver) header(name string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v := r.headers[strings.ToLower(name)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// newHTTPReceiver serves OTLP/HTTP (protobuf) on 127.0.0.1 and returns its
// base URL.
func newHTTPReceiver(t *testing.T) (*receiver, string) {
	t.Helper()
	rec := &receiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "not an OTLP/HTTP protobuf trace export", http.StatusBadRequest)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rec.add(&req, r.Header)
		resp, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(resp)
	}))
	t.Cleanup(srv.Close)
	return rec, srv.URL
}

type grpcTraceService struct {
	coltracepb.UnimplementedTraceServiceServer
	rec *receiver
}

func (g *grpcTraceService) Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	g.rec.add(req, md)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// newGRPCReceiver serves the OTLP collector's TraceService over plaintext
// gRPC on 127.0.0.1 and returns its host:port.
func newGRPCReceiver(t *testing.T) (*receiver, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := &receiver{}
	s := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(s, &grpcTraceService{rec: rec})
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	return rec, lis.Addr().String()
}

func attrMap(kvs []*commonpb.KeyValue) map[string]any {
	m := map[string]any{}
	for _, kv := range kvs {
		switch v := kv.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.GetKey()] = v.StringValue
		case *commonpb.AnyValue_IntValue:
			m[kv.GetKey()] = v.IntValue
		case *commonpb.AnyValue_BoolValue:
			m[kv.GetKey()] = v.BoolValue
		case *commonpb.AnyValue_DoubleValue:
			m[kv.GetKey()] = v.DoubleValue
		}
	}
	return m
}

func hexID(b []byte) string { return hex.EncodeToString(b) }
