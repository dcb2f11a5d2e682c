package identity

import (
	"context"
	"testing"
)

func TestKeyDistinguishesPrincipals(t *testing.T) {
	a := Principal{Method: "jwt", Subject: "alice"}
	b := Principal{Method: "jwt", Subject: "alice", Tenant: "t2"}
	c := Principal{Method: "api_key", Subject: "alice"}
	d := Principal{Method: "jwt", Issuer: "https://other.example", Subject: "alice"}
	e := Principal{Method: "jwt", Tenant: "a|b", Subject: "c"}
	f := Principal{Method: "jwt", Tenant: "a", Subject: "b|c"}
	keys := map[string]bool{}
	for _, p := range []Principal{a, b, c, d, e, f} {
		if keys[p.Key()] {
			t.Fatalf("key %q collides", p.Key())
		}
		keys[p.Key()] = true
	}
	if Anonymous().Key() != Anonymous().Key() {
		t.Fatal("anonymous key not stable")
	}
}

func TestContextRoundTrip(t *testing.T) {
	if _, ok := FromContext(context.Background()); ok {
		t.Fatal("empty context has a principal")
	}
	p := Principal{Method: "jwt", Subject: "bob", Groups: []string{"eng"}}
	got, ok := FromContext(NewContext(context.Background(), p))
	if !ok || got.Subject != "bob" || got.Groups[0] != "eng" {
		t.Fatalf("got %+v, %v", got, ok)
	}
}
