package gateway

import (
	"context"
	"time"

	"github.com/mcpgate/mcpgate/internal/policy"
)

// policyAuthorizer is the Authorize stage over a compiled policy.
type policyAuthorizer struct{ p *policy.Policy }

var _ Authorizer = policyAuthorizer{}

func (a policyAuthorizer) input(c *Call) *policy.Input {
	return &policy.Input{
		Principal:     c.Principal,
		ClientName:    c.ClientName,
		ClientVersion: c.ClientVersion,
		Server:        c.Server,
		Tool: policy.Tool{
			Name:        c.Tool,
			ReadOnly:    c.ReadOnly,
			Destructive: c.Destructive,
			Idempotent:  c.Idempotent,
			OpenWorld:   c.OpenWorld,
		},
		URI:     c.URI,
		Method:  c.Method,
		Session: c.SessionID,
		Args:    c.Args,
		Time:    time.Now(),
	}
}

func (a policyAuthorizer) Authorize(_ context.Context, c *Call) Decision {
	d := a.p.Decide(a.input(c))
	return Decision{Allow: d.Allow, Rule: d.Rule, Reason: d.Reason, DryRun: d.DryRun, Err: d.Err}
}

func (a policyAuthorizer) Visible(_ context.Context, c *Call) bool { return a.p.Visible(a.input(c)) }
