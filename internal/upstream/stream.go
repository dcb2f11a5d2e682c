package upstream

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// jsonStream is a call answered with a single JSON body.
type jsonStream struct {
	id []byte
	m  *mcpwire.Message
}

func (s *jsonStream) ID() []byte      { return s.id }
func (s *jsonStream) Streaming() bool { return false }
func (s *jsonStream) Close()          {}
func (s *jsonStream) Next() (*mcpwire.Message, error) {
	if s.m == nil {
		return nil, io.EOF
	}
	m := s.m
	s.m = nil
	return m, nil
}

// sseStream is a call answered with an event stream. If the stream breaks
// before the response, it resumes once per break with Last-Event-ID.
type sseStream struct {
	c       *httpConn
	ctx     context.Context
	id      []byte
	body    io.ReadCloser
	r       *sseReader
	done    bool
	resumes int
	pooled  *bufio.Reader // from callReaders, returned when the stream ends
	pc      *pendingCall  // cancels the request if ctx ends first
}

func (s *sseStream) ID() []byte      { return s.id }
func (s *sseStream) Streaming() bool { return true }

// Close abandons the stream. The request is not cancelled, unless ctx
// ended first.
func (s *sseStream) Close() {
	s.endWatch()
	s.closeBody()
}

func (s *sseStream) closeBody() {
	if s.body != nil {
		s.body.Close()
		s.body = nil
	}
	s.release()
}

// finish reads what follows the response (at least the chunked body's
// terminator) so that the connection goes back to the pool instead of
// being reset, then closes. An upstream that keeps the stream open gets
// 100ms.
func (s *sseStream) finish() {
	body := s.body
	s.body = nil
	if body != nil {
		t := time.AfterFunc(100*time.Millisecond, func() { body.Close() })
		io.Copy(io.Discard, io.LimitReader(body, 64<<10))
		t.Stop()
		body.Close()
	}
	s.release()
}

// endWatch ends the cancellation watch unless ctx ended, in which case
// the cancellation is under way.
func (s *sseStream) endWatch() {
	if s.pc != nil && s.ctx.Err() == nil {
		s.pc.done()
		s.pc = nil
	}
}

func (s *sseStream) release() {
	if s.pooled != nil {
		s.pooled.Reset(nil)
		callReaders.Put(s.pooled)
		s.pooled = nil
	}
}

func (s *sseStream) Next() (*mcpwire.Message, error) {
	if s.done {
		return nil, io.EOF
	}
	for {
		if s.body == nil {
			return nil, fmt.Errorf("%w: stream closed", ErrUnavailable)
		}
		ev, err := s.r.Next()
		if err != nil {
			if s.ctx.Err() != nil {
				s.Close()
				return nil, s.ctx.Err()
			}
			if errors.Is(err, errEventTooLarge) {
				// The request may still be running upstream (the large
				// event need not be its response): stop it.
				if s.pc != nil {
					s.pc.cancel(reasonTooLarge)
					s.pc = nil
				}
				s.Close()
				return nil, tooLarge(s.r.max)
			}
			if rerr := s.resume(); rerr != nil {
				if s.ctx.Err() != nil {
					s.Close()
					return nil, s.ctx.Err()
				}
				return nil, fmt.Errorf("%w: stream ended before the response", ErrUnavailable)
			}
			continue
		}
		m, err := decodeUpstream(ev.Data)
		if err != nil {
			s.Close()
			return nil, err
		}
		if (m.Kind == mcpwire.KindResponse || m.Kind == mcpwire.KindError) && bytes.Equal(m.ID, s.id) {
			s.done = true
			if s.pc != nil {
				s.pc.done()
				s.pc = nil
			}
			s.finish()
		}
		return m, nil
	}
}

// resume reopens a broken stream with GET and Last-Event-ID, as the
// transport allows when the server gave event IDs.
func (s *sseStream) resume() error {
	lastID, retry := s.r.lastID, s.r.retry
	s.closeBody()
	if lastID == "" || s.resumes >= 5 {
		return errors.New("not resumable")
	}
	s.resumes++
	if retry <= 0 {
		retry = 100 * time.Millisecond
	}
	select {
	case <-time.After(min(retry, 5*time.Second)):
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
	req, err := s.c.newRequest(s.ctx, http.MethodGet, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Last-Event-ID", lastID)
	resp, err := s.c.do(req, false)
	if err != nil {
		return err
	}
	s.body = resp.Body
	s.r = newSSEReader(resp.Body, s.r.max)
	s.r.lastID = lastID
	return nil
}
