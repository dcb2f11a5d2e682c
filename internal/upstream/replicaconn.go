package upstream

import (
	"bytes"
	"context"
	"sync/atomic"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// replicaConn is a session pinned to one replica. Its calls pass the
// replica's breaker and count as outstanding until their stream ends.
type replicaConn struct {
	Conn
	r *replica
}

// Replica returns the replica's label (host:port).
func (c *replicaConn) Replica() string { return c.r.label }

// Call implements Conn; while the replica's breaker is open it fails fast
// with a *BreakerOpenError and sends nothing.
func (c *replicaConn) Call(ctx context.Context, id []byte, method string, params []byte) (Stream, error) {
	t, err := c.r.br.acquire(c.r.label)
	if err != nil {
		return nil, err
	}
	c.r.outstanding.Add(1)
	st, err := c.Conn.Call(ctx, id, method, params)
	if err != nil {
		c.r.outstanding.Add(-1)
		c.r.br.report(t, classify(err), err)
		return nil, err
	}
	return &replicaStream{Stream: st, r: c.r, t: t}, nil
}

// replicaStream reports the end of a call to its replica: the response is
// a success, a transport error a failure, an abandoned stream neither.
type replicaStream struct {
	Stream
	r     *replica
	t     ticket
	ended atomic.Bool
}

func (s *replicaStream) Next() (*mcpwire.Message, error) {
	m, err := s.Stream.Next()
	switch {
	case err != nil:
		s.end(classify(err), err)
	case (m.Kind == mcpwire.KindResponse || m.Kind == mcpwire.KindError) && bytes.Equal(m.ID, s.Stream.ID()):
		s.end(outcomeSuccess, nil)
	}
	return m, err
}

func (s *replicaStream) Close() {
	s.Stream.Close()
	s.end(outcomeNeutral, nil)
}

func (s *replicaStream) end(o outcome, err error) {
	if s.ended.CompareAndSwap(false, true) {
		s.r.outstanding.Add(-1)
		s.r.br.report(s.t, o, err)
	}
}
