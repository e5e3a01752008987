package mgmtapi

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

func TestUsersCRUD(t *testing.T) {
	f := newFixture(t)
	f.createDomain("acme")
	r := f.do(req{method: "POST", path: "/v1/domain/acme/user", body: map[string]any{
		"preferredUsername": "Bob", "name": "Bob Builder", "email": "bob@example.com",
		"claims": []map[string]any{{"name": "groups", "value": []string{"dev"}, "in": "access"}, {"name": "team", "value": "blue", "in": "identity"}},
	}})
	r.must(t, 201)
	var u User
	r.json(t, &u)
	if !regexp.MustCompile(`^[a-z2-7]{26}$`).MatchString(u.Sub) || !u.Active || u.HasPassword || u.Managed != "api" || len(u.Claims) != 2 {
		t.Fatalf("created %+v", u)
	}
	if r.header.Get("Location") != "/v1/domain/acme/user/"+u.Sub {
		t.Fatalf("Location %q", r.header.Get("Location"))
	}
	// The claims as the directory reads them.
	row, _ := f.st.User(context.Background(), "acme", u.Sub)
	if string(row.Claims) != `[{"name":"groups","value":["dev"],"in":"access"},{"name":"team","value":"blue","in":"identity"}]` {
		t.Fatalf("stored claims %s", row.Claims)
	}

	// PATCH: only what is given changes.
	etag := r.header.Get("ETag")
	r = f.do(req{method: "PATCH", path: "/v1/domain/acme/user/" + u.Sub, body: map[string]any{"givenName": "Bob", "emailVerified": true}, header: map[string]string{"If-Match": etag}})
	r.must(t, 200).json(t, &u)
	if u.GivenName != "Bob" || !u.EmailVerified || u.Name != "Bob Builder" || len(u.Claims) != 2 {
		t.Fatalf("patched %+v", u)
	}
	v := f.directoryVersion()
	f.do(req{method: "PATCH", path: "/v1/domain/acme/user/" + u.Sub, body: map[string]any{"name": "X"}, header: map[string]string{"If-Match": etag}}).problem(t, 412, TypeStaleETag)
	f.do(req{method: "PATCH", path: "/v1/domain/acme/user/" + u.Sub, body: `{"name": null}`, ctype: "application/json"}).problem(t, 400, TypeInvalidBody)
	f.do(req{method: "PATCH", path: "/v1/domain/acme/user/" + u.Sub, body: map[string]any{"name": ""}}).problem(t, 400, TypeInvalidField)
	f.do(req{method: "PATCH", path: "/v1/domain/acme/user/" + u.Sub, body: map[string]any{"email": "not an address"}}).problem(t, 400, TypeInvalidField)
	f.do(req{method: "PATCH", path: "/v1/domain/acme/user/" + u.Sub, body: map[string]any{"sub": "other"}}).problem(t, 400, TypeInvalidBody)
	if f.directoryVersion() != v {
		t.Fatal("a refused PATCH wrote")
	}
	// merge-patch+json is accepted too.
	f.do(req{method: "PATCH", path: "/v1/domain/acme/user/" + u.Sub, body: `{"familyName":"Builder"}`, ctype: "application/merge-patch+json"}).must(t, 200)

	// Password: set, hashed as caddy hash-password does.
	f.do(req{method: "PUT", path: "/v1/domain/acme/user/" + u.Sub + "/password", body: map[string]any{"password": "short"}}).problem(t, 400, TypeInvalidField)
	f.do(req{method: "PUT", path: "/v1/domain/acme/user/" + u.Sub + "/password", body: map[string]any{"password": "correct horse battery"}}).must(t, 200).json(t, &u)
	row, _ = f.st.User(context.Background(), "acme", u.Sub)
	if ok, _ := identity.VerifyPassword(row.PasswordHash, "correct horse battery"); !ok || !u.HasPassword {
		t.Fatalf("the password does not verify against %q", row.PasswordHash)
	}
	for _, e := range f.audit.All() {
		for _, fld := range e.Context {
			if strings.Contains(fld.String, "correct horse") {
				t.Fatal("the audit log holds the password")
			}
		}
	}

	// Conflicts: a username or e-mail another user has, either way round.
	f.do(req{method: "POST", path: "/v1/domain/acme/user", body: map[string]any{"preferredUsername": "bob", "name": "B"}}).problem(t, 409, TypeConflict)
	p := f.do(req{method: "POST", path: "/v1/domain/acme/user", body: map[string]any{"preferredUsername": "bob@example.com", "name": "B"}}).problem(t, 409, TypeConflict)
	if p.Errors[0].Field != "preferredUsername" {
		t.Fatalf("conflict %+v", p)
	}
	// Required fields.
	p = f.do(req{method: "POST", path: "/v1/domain/acme/user", body: map[string]any{"email": "x@example.com"}}).problem(t, 400, TypeInvalidField)
	if len(p.Errors) != 2 || p.Errors[0].Field != "preferredUsername" || p.Errors[1].Field != "name" {
		t.Fatalf("missing fields %+v", p.Errors)
	}
	p = f.do(req{method: "POST", path: "/v1/domain/acme/user", body: map[string]any{"preferredUsername": "c", "name": "C", "claims": []map[string]any{{"name": "sub", "value": "x", "in": "access"}, {"name": "a", "value": 1, "in": "everywhere"}}}}).problem(t, 400, TypeInvalidField)
	if len(p.Errors) != 2 || p.Errors[0].Field != "claims[0].name" || p.Errors[1].Field != "claims[1].in" {
		t.Fatalf("claims %+v", p.Errors)
	}

	// Delete: 200, and gone.
	var del Deleted
	f.do(req{method: "DELETE", path: "/v1/domain/acme/user/" + u.Sub}).must(t, 200).json(t, &del)
	if del.ID != u.Sub || !del.Deleted {
		t.Fatalf("deleted %+v", del)
	}
	f.get("/v1/domain/acme/user/"+u.Sub).problem(t, 404, TypeNotFound)
	f.do(req{method: "DELETE", path: "/v1/domain/acme/user/" + u.Sub}).problem(t, 404, TypeNotFound)
}

// TestUserDisabledOrDeletedLosesSessionsAndTokens: disabling or deleting a
// user deletes their SSO sessions and revokes every token family they
// hold, through the Revoker (which tells the gates).
func TestUserDisabledOrDeletedLosesSessionsAndTokens(t *testing.T) {
	f := newFixture(t)
	f.createDomain("acme")
	ctx := context.Background()
	for _, action := range []string{"disable", "delete"} {
		u := f.createUser("acme", map[string]any{"preferredUsername": "u-" + action, "name": "U"})
		fam := "fam-" + action
		if err := f.st.CreateSession(ctx, store.Session{ID: "sess-" + action, Domain: "acme", Subject: u.Sub, CreatedAt: f.now, ExpiresAt: f.now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if err := f.st.CreateRefreshToken(ctx, store.RefreshToken{ID: "rt-" + action, FamilyID: fam, Domain: "acme", ClientID: "web", Subject: u.Sub, CreatedAt: f.now, ExpiresAt: f.now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		var res response
		if action == "disable" {
			res = f.do(req{method: "PATCH", path: "/v1/domain/acme/user/" + u.Sub, body: map[string]any{"active": false}})
		} else {
			res = f.do(req{method: "DELETE", path: "/v1/domain/acme/user/" + u.Sub})
		}
		res.must(t, 200)
		if ok, _ := f.st.Revoked(ctx, fam); !ok {
			t.Errorf("%s: the family is not revoked", action)
		}
		if _, err := f.st.Session(ctx, "sess-"+action, f.now); err == nil {
			t.Errorf("%s: the session survived", action)
		}
		if !strings.Contains(strings.Join(f.revoked, ","), fam) {
			t.Errorf("%s: the Revoker was not told (%v)", action, f.revoked)
		}
	}
}

func TestUserListPagesAndSearch(t *testing.T) {
	f := newFixture(t, withConfig(testConfig()))
	for i := range 12 {
		f.createUser("corp", map[string]any{"preferredUsername": fmt.Sprintf("user%02d", i), "name": "U", "email": fmt.Sprintf("u%02d@corp.example.com", i)})
	}
	var l UserList
	f.get("/v1/domain/corp/user?limit=5").must(t, 200).json(t, &l)
	if l.Total != 13 || len(l.Items) != 5 || l.Items[0].PreferredUsername != "alice" || l.Items[0].Managed != "config" || l.Items[1].PreferredUsername != "user00" {
		t.Fatalf("first page %+v", l)
	}
	f.get("/v1/domain/corp/user?offset=10&limit=5").must(t, 200).json(t, &l)
	if len(l.Items) != 3 || l.Items[0].PreferredUsername != "user09" || l.Offset != 10 || l.Limit != 5 {
		t.Fatalf("last page %+v", l)
	}
	f.get("/v1/domain/corp/user?search=U0").must(t, 200).json(t, &l)
	if l.Total != 10 || len(l.Items) != 10 {
		t.Fatalf("search %+v", l)
	}
	f.get("/v1/domain/corp/user?search=ALICE@").must(t, 200).json(t, &l)
	if l.Total != 1 || l.Items[0].Sub != "u-alice" {
		t.Fatalf("search config %+v", l)
	}
	for _, q := range []string{"limit=101", "limit=0", "offset=-1", "limit=x", "search=" + strings.Repeat("x", 257), "sort=name"} {
		f.get("/v1/domain/corp/user?"+q).problem(t, 400, TypeInvalidField)
	}
	// The configured user: readable, never writable; its login is taken.
	var u User
	r := f.get("/v1/domain/corp/user/u-alice").must(t, 200)
	r.json(t, &u)
	if u.Managed != "config" || u.Claims[0].Name != "groups" || !strings.HasPrefix(r.header.Get("ETag"), `"c`) {
		t.Fatalf("config user %+v", u)
	}
	f.do(req{method: "PATCH", path: "/v1/domain/corp/user/u-alice", body: map[string]any{"name": "x"}}).problem(t, 403, TypeManagedByConfig)
	f.do(req{method: "DELETE", path: "/v1/domain/corp/user/u-alice"}).problem(t, 403, TypeManagedByConfig)
	f.do(req{method: "PUT", path: "/v1/domain/corp/user/u-alice/password", body: map[string]any{"password": "long enough"}}).problem(t, 403, TypeManagedByConfig)
	f.do(req{method: "POST", path: "/v1/domain/corp/user", body: map[string]any{"preferredUsername": "ALICE@example.com", "name": "A"}}).problem(t, 409, TypeConflict)
	// The unnamed configured domain holds only what the configuration
	// defines.
	f.do(req{method: "POST", path: "/v1/domain/default/user", body: map[string]any{"preferredUsername": "x", "name": "X"}}).problem(t, 403, TypeManagedByConfig)
}
