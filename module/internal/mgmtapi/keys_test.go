package mgmtapi

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

func TestKeyFormat(t *testing.T) {
	now := time.Now()
	key, rec, err := NewKey(KeySpec{Name: "ci"}, now)
	if err != nil {
		t.Fatal(err)
	}
	// A fixed, recognisable prefix that secret scanners do not take for
	// GitHub's (gh*), an ID, and 256 bits of secret.
	if !regexp.MustCompile(`^gatehouse_[a-z2-7]{16}_[a-z2-7]{52}$`).MatchString(key) || strings.HasPrefix(key, "gh") {
		t.Fatalf("key %q has not the documented form", key)
	}
	id, ok := ParseKeyID(key)
	if !ok || id != rec.ID || !ValidKeyID(id) {
		t.Fatalf("ParseKeyID(%q) = %q, %v; record ID %q", key, id, ok, rec.ID)
	}
	// Only the hash is kept, and it is not the key.
	if rec.Hash != HashKey(key) || strings.Contains(rec.Hash, key[len(KeyPrefix)+17:]) || !strings.HasPrefix(rec.Hash, "sha256:") {
		t.Fatalf("record hash %q", rec.Hash)
	}
	other, _, _ := NewKey(KeySpec{}, now)
	if other == key {
		t.Fatal("two keys are equal")
	}
	for _, bad := range []string{"", key + "a", key[:len(key)-1], strings.ToUpper(key), "gatehouse_" + strings.Repeat("a", 16) + "-" + strings.Repeat("a", 52), "xatehouse" + key[9:], strings.Replace(key, "_", "", 1)} {
		if _, ok := ParseKeyID(bad); ok {
			t.Errorf("ParseKeyID(%q) accepted it", bad)
		}
	}
	if _, _, err := NewKey(KeySpec{ExpiresAt: now.Add(-time.Second)}, now); err == nil {
		t.Error("a key that has expired when it is made was made")
	}
	if _, _, err := NewKey(KeySpec{Name: "a\nb"}, now); err == nil {
		t.Error("a name with a newline was accepted")
	}
}

// countingCredentials counts the key lookups a check makes.
type countingCredentials struct {
	store.Credentials
	lookups int
}

func (c *countingCredentials) APIKey(ctx context.Context, id string) (store.APIKey, error) {
	c.lookups++
	return c.Credentials.APIKey(ctx, id)
}

// TestCheckKeyCostsTheSameForEveryKey: a wrong, unknown or malformed key
// is looked up and compared like a right one (one lookup each), so that
// the time a refusal takes does not tell which key IDs exist.
func TestCheckKeyCostsTheSameForEveryKey(t *testing.T) {
	f := newFixture(t)
	cc := &countingCredentials{Credentials: f.st}
	wrongSecret := f.key[:len(f.key)-1] + "a"
	if wrongSecret == f.key {
		wrongSecret = f.key[:len(f.key)-1] + "b"
	}
	unknown, _, _ := NewKey(KeySpec{}, f.now)
	cases := []struct {
		name, key string
		want      keyStatus
	}{
		{"right", f.key, keyValid},
		{"wrong secret", wrongSecret, keyUnknown},
		{"unknown id", unknown, keyUnknown},
		{"malformed", "hunter2", keyUnknown},
		{"the hash itself", f.keyRec.Hash, keyUnknown},
	}
	for _, c := range cases {
		before := cc.lookups
		_, status, err := checkKey(context.Background(), cc, c.key, f.now)
		if err != nil || status != c.want {
			t.Errorf("%s: status %v, err %v; want %v", c.name, status, err, c.want)
		}
		if cc.lookups-before != 1 {
			t.Errorf("%s: %d lookups, want 1", c.name, cc.lookups-before)
		}
	}
}

func TestAuthentication(t *testing.T) {
	f := newFixture(t)
	expiredKey, _ := f.newKey(KeySpec{ExpiresAt: f.now.Add(time.Hour)})
	revokedKey, revokedRec := f.newKey(KeySpec{})
	if _, err := f.st.RevokeAPIKey(context.Background(), revokedRec.ID, f.now); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(2 * time.Hour)

	// No key: 401 with a challenge.
	r := f.do(req{method: "GET", path: "/v1/domain", key: "-"})
	r.problem(t, 401, TypeUnauthorized)
	if r.header.Get("WWW-Authenticate") != wwwAuthenticate {
		t.Fatalf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
	}
	// A wrong key.
	r = f.do(req{method: "GET", path: "/v1/domain", key: f.key[:len(f.key)-2] + "zz"})
	if p := r.problem(t, 401, TypeUnauthorized); !strings.Contains(p.Detail, "not valid") || !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("wrong key: %+v %q", p, r.header.Get("WWW-Authenticate"))
	}
	f.do(req{method: "GET", path: "/v1/domain", key: "nonsense"}).problem(t, 401, TypeUnauthorized)
	f.do(req{method: "GET", path: "/v1/domain", key: expiredKey}).problem(t, 401, TypeKeyExpired)
	f.do(req{method: "GET", path: "/v1/domain", key: revokedKey}).problem(t, 401, TypeKeyRevoked)

	// The right key, in either header; its use is recorded.
	f.get("/v1/domain").must(t, 200)
	hr := req{method: "GET", path: "/v1/domain", key: "-", header: map[string]string{"Authorization": "Bearer " + f.key}}
	f.do(hr).must(t, 200)
	rec, err := f.st.APIKey(context.Background(), f.keyRec.ID)
	if err != nil || !rec.LastUsedAt.Equal(f.now) {
		t.Fatalf("last use %v (err %v), want %v", rec.LastUsedAt, err, f.now)
	}
	// The OpenAPI document needs no key.
	f.do(req{method: "GET", path: "/v1/openapi.json", key: "-"}).must(t, 200)

	// Every refusal is audited with the key's ID, never the key.
	denied := f.audit.FilterField(zapString("outcome", "denied")).All()
	if len(denied) < 5 {
		t.Fatalf("%d denials audited, want 5", len(denied))
	}
	for _, e := range f.audit.All() {
		for _, fld := range e.Context {
			if strings.Contains(fld.String, KeyPrefix) {
				t.Fatalf("the audit log holds a key: %v", e.Context)
			}
		}
	}
}

func TestUnknownPathAndMethod(t *testing.T) {
	f := newFixture(t)
	f.get("/v1/nothing").problem(t, 404, TypeNotFound)
	r := f.do(req{method: "PUT", path: "/v1/domain"})
	r.problem(t, 405, TypeMethodNotAllowed)
	if r.header.Get("Allow") != "GET, POST" {
		t.Fatalf("Allow %q", r.header.Get("Allow"))
	}
	// Without a key, an unknown path is 401 like any other.
	f.do(req{method: "GET", path: "/v1/nothing", key: "-"}).problem(t, 401, TypeUnauthorized)
	if !f.api.Owns(httptestRequest("/v1/domain")) || f.api.Owns(httptestRequest("/v10")) || f.api.Owns(httptestRequest("/")) {
		t.Fatal("Owns")
	}
}

func httptestRequest(path string) *http.Request {
	r, _ := http.NewRequest("GET", "http://x"+path, nil)
	return r
}
