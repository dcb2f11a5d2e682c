package upstream

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// cancelSendTimeout bounds the delivery of one notifications/cancelled: it
// is sent after the call's own context ended, so it needs a deadline of its
// own.
const cancelSendTimeout = 5 * time.Second

// Reasons sent in notifications/cancelled.
const (
	reasonTimeout   = "timeout"
	reasonCancelled = "cancelled by the gateway"
	reasonTooLarge  = "response too large"
)

// cancels tells an upstream that the gateway gave up on a request, so that
// the upstream stops working on it: a call whose context ends before its
// response arrives gets one notifications/cancelled. A cancellation the
// gateway relays itself (a client's) counts, so none is sent twice.
type cancels struct {
	send func(ctx context.Context, msg []byte) error

	mu      sync.Mutex          // guards pending
	pending map[string]struct{} // in-flight request IDs not yet cancelled
}

func newCancels(send func(context.Context, []byte) error) *cancels {
	return &cancels{send: send, pending: make(map[string]struct{})}
}

// watch starts watching ctx for a request sent with id. The caller must end
// the watch with done or cancel.
func (cs *cancels) watch(ctx context.Context, id []byte) *pendingCall {
	cs.mu.Lock()
	cs.pending[string(id)] = struct{}{}
	cs.mu.Unlock()
	p := &pendingCall{cs: cs, ctx: ctx, id: id}
	p.stop = context.AfterFunc(ctx, func() {
		reason := reasonCancelled
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			reason = reasonTimeout
		}
		p.fire(reason)
	})
	return p
}

// take forgets id and reports whether a cancellation is still owed for it.
func (cs *cancels) take(id []byte) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	_, ok := cs.pending[string(id)]
	delete(cs.pending, string(id))
	return ok
}

// relayed notes a message the gateway sends on its own: when it is a
// notifications/cancelled, its request needs no other.
func (cs *cancels) relayed(msg []byte) {
	if !bytes.Contains(msg, []byte("notifications/cancelled")) {
		return
	}
	m, err := mcpwire.Decode(msg, messageLimits)
	if err != nil || m.Method != "notifications/cancelled" {
		return
	}
	if id, ok := mcpwire.ParamsField(m.Params, "requestId"); ok {
		cs.take(id)
	}
}

// pendingCall is one watched request.
type pendingCall struct {
	cs   *cancels
	ctx  context.Context
	id   []byte
	stop func() bool
}

// done ends the watch without a cancellation: the response arrived, or
// the call failed in a way that ended it upstream too.
func (p *pendingCall) done() {
	if p.stop() {
		p.cs.take(p.id)
	}
}

// cancel ends the watch by cancelling the request now, in the background.
func (p *pendingCall) cancel(reason string) {
	if p.stop() {
		go p.fire(reason)
	}
}

func (p *pendingCall) fire(reason string) {
	if !p.cs.take(p.id) {
		return
	}
	params := make([]byte, 0, 48+len(p.id)+len(reason))
	params = append(params, `{"requestId":`...)
	params = append(params, p.id...)
	params = append(params, `,"reason":"`...)
	params = append(params, reason...) // constants without characters to escape
	params = append(params, `"}`...)
	// The call's context ended; its values (the caller's identity) still
	// go with the notification.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(p.ctx), cancelSendTimeout)
	defer cancel()
	p.cs.send(ctx, mcpwire.NewNotification("notifications/cancelled", params))
}
