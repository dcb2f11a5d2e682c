package identity

import (
	"context"
	"testing"
)

func TestKeyDistinguishesPrincipals(t *testing.T) {
	a := Principal{Method: "jwt", Subject: "alice"}
	b := Principal{Method: "jwt", Subject: "alice", Tenant: "t2"}
	c := Principal{Method: "api_key", Subject: "alice"}
	if a.Key() == b.Key() || a.Key() == c.Key() || b.Key() == c.Key() {
		t.Fatalf("keys collide: %q %q %q", a.Key(), b.Key(), c.Key())
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
