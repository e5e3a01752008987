package mgmtapi

import (
	"context"
	"testing"
	"time"
)

func TestAPIKeysRights(t *testing.T) {
	f := newFixture(t)
	f.createDomain("acme")
	f.createDomain("other")

	// A global key makes a domain key (default expiry: 180 days).
	var k APIKey
	f.do(req{method: "POST", path: "/v1/apikey", body: map[string]any{"name": "acme-ci", "domain": "acme"}}).must(t, 201).json(t, &k)
	if k.Key == "" || k.Domain == nil || *k.Domain != "acme" || k.ReadOnly || k.CreatedBy != f.keyRec.ID || !k.ExpiresAt.Equal(f.now.Add(DefaultKeyLifetime)) || k.Status != "active" {
		t.Fatalf("created %+v", k)
	}
	domainKey, domainKeyID := k.Key, k.ID
	if id, _ := ParseKeyID(domainKey); id != k.ID {
		t.Fatal("the key does not embed its ID")
	}
	rec, _ := f.st.APIKey(context.Background(), k.ID)
	if rec.Hash != HashKey(domainKey) {
		t.Fatal("the stored hash is not the key's")
	}

	// The domain key reaches its domain only.
	f.do(req{method: "GET", path: "/v1/domain/acme", key: domainKey}).must(t, 200)
	f.do(req{method: "GET", path: "/v1/domain/other", key: domainKey}).problem(t, 403, TypeForbidden)
	f.do(req{method: "POST", path: "/v1/domain/other/user", key: domainKey, body: map[string]any{"preferredUsername": "x", "name": "X"}}).problem(t, 403, TypeForbidden)
	f.do(req{method: "POST", path: "/v1/domain", key: domainKey, body: map[string]any{"name": "new", "issuer": "https://n.example.com"}}).problem(t, 403, TypeForbidden)
	f.do(req{method: "DELETE", path: "/v1/domain/acme", key: domainKey}).problem(t, 403, TypeForbidden)
	var l List[Domain]
	f.do(req{method: "GET", path: "/v1/domain", key: domainKey}).must(t, 200).json(t, &l)
	if len(l.Items) != 1 || l.Items[0].Name != "acme" {
		t.Fatalf("a domain key lists %+v", l.Items)
	}
	// It makes keys for its domain, never global ones or others'.
	f.do(req{method: "POST", path: "/v1/apikey", key: domainKey, body: map[string]any{"domain": "other"}}).problem(t, 403, TypeForbidden)
	f.do(req{method: "POST", path: "/v1/apikey", key: domainKey, body: map[string]any{"domain": nil}}).must(t, 201).json(t, &k)
	if k.Domain == nil || *k.Domain != "acme" {
		t.Fatalf("a domain key made %+v", k)
	}
	// Not outliving itself.
	f.do(req{method: "POST", path: "/v1/apikey", key: domainKey, body: map[string]any{"expiresAt": f.now.Add(DefaultKeyLifetime + time.Hour).Format(time.RFC3339)}}).problem(t, 403, TypeForbidden)

	// A read-only key reads and nothing else.
	f.do(req{method: "POST", path: "/v1/apikey", body: map[string]any{"readOnly": true}}).must(t, 201).json(t, &k)
	ro := k.Key
	f.do(req{method: "GET", path: "/v1/domain/other", key: ro}).must(t, 200)
	v := f.directoryVersion()
	f.do(req{method: "POST", path: "/v1/domain/other/user", key: ro, body: map[string]any{"preferredUsername": "x", "name": "X"}}).problem(t, 403, TypeForbidden)
	f.do(req{method: "POST", path: "/v1/apikey", key: ro, body: map[string]any{"readOnly": true}}).problem(t, 403, TypeForbidden)
	f.do(req{method: "DELETE", path: "/v1/apikey/" + k.ID, key: ro}).problem(t, 403, TypeForbidden)
	if f.directoryVersion() != v {
		t.Fatal("a read-only key wrote")
	}

	// Listing: a global key sees all, a domain key its domain's.
	var keys List[APIKey]
	f.get("/v1/apikey").must(t, 200).json(t, &keys)
	if len(keys.Items) != 4 {
		t.Fatalf("%d keys", len(keys.Items))
	}
	for _, k := range keys.Items {
		if k.Key != "" {
			t.Fatal("a listing shows a key")
		}
	}
	f.do(req{method: "GET", path: "/v1/apikey", key: domainKey}).must(t, 200).json(t, &keys)
	if len(keys.Items) != 2 {
		t.Fatalf("a domain key lists %d keys", len(keys.Items))
	}

	// Revoking: then the key is refused.
	f.do(req{method: "DELETE", path: "/v1/apikey/" + f.keyRec.ID, key: domainKey}).problem(t, 403, TypeForbidden)
	f.do(req{method: "DELETE", path: "/v1/apikey/" + domainKeyID}).must(t, 200).json(t, &k)
	if k.Status != "revoked" || k.RevokedAt == nil {
		t.Fatalf("revoked %+v", k)
	}
	f.do(req{method: "GET", path: "/v1/domain/acme", key: domainKey}).problem(t, 401, TypeKeyRevoked)
	f.do(req{method: "DELETE", path: "/v1/apikey/nope"}).problem(t, 404, TypeNotFound)

	// Bad bodies.
	f.do(req{method: "POST", path: "/v1/apikey", body: map[string]any{"domain": "nope"}}).problem(t, 400, TypeInvalidField)
	f.do(req{method: "POST", path: "/v1/apikey", body: map[string]any{"domain": ""}}).problem(t, 400, TypeInvalidField)
	f.do(req{method: "POST", path: "/v1/apikey", body: map[string]any{"expiresAt": "tomorrow"}}).problem(t, 400, TypeInvalidField)
	f.do(req{method: "POST", path: "/v1/apikey", body: map[string]any{"expiresAt": f.now.Add(-time.Hour).Format(time.RFC3339)}}).problem(t, 400, TypeInvalidField)
	f.do(req{method: "POST", path: "/v1/apikey", body: map[string]any{"scope": "all"}}).problem(t, 400, TypeInvalidBody)

	// Deleting a domain revokes its keys.
	f.do(req{method: "POST", path: "/v1/apikey", body: map[string]any{"domain": "other"}}).must(t, 201).json(t, &k)
	f.do(req{method: "DELETE", path: "/v1/domain/other"}).must(t, 202)
	f.do(req{method: "GET", path: "/v1/apikey", key: k.Key}).problem(t, 401, TypeKeyRevoked)
}
