package mgmtapi

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// TestEndSubject: the sweep the API runs when a user is disabled or
// deleted, shared with Caddy's admin endpoint: every SSO session of the
// subject deleted, every family it holds revoked through the Revoker (until
// the family's end, at least an access token's lifetime), nothing of
// another subject touched; a Revoker that fails stops it with the count of
// what was ended.
func TestEndSubject(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, s := range []struct{ id, sub string }{{"s1", "alice"}, {"s2", "alice"}, {"s3", "bob"}} {
		if err := f.st.CreateSession(ctx, store.Session{ID: s.id, Domain: "acme", Subject: s.sub, CreatedAt: f.now, ExpiresAt: f.now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []struct{ id, fam, sub string }{{"rt1", "fam-a1", "alice"}, {"rt2", "fam-a2", "alice"}, {"rt3", "fam-b", "bob"}} {
		if err := f.st.CreateRefreshToken(ctx, store.RefreshToken{ID: r.id, FamilyID: r.fam, Domain: "acme", ClientID: "web", Subject: r.sub, CreatedAt: f.now, ExpiresAt: f.now.Add(30 * 24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	type revocation struct {
		domain, id string
		until      time.Time
	}
	var got []revocation
	rv := RevokerFunc(func(_ context.Context, domain, id string, until time.Time) error {
		got = append(got, revocation{domain, id, until})
		return nil
	})
	e, err := EndSubject(ctx, f.st, rv, f.now, "acme", "alice")
	if err != nil || e != (Ended{Families: 2, Sessions: 2}) {
		t.Fatalf("EndSubject = %+v, %v; want 2 families and 2 sessions", e, err)
	}
	ids := []string{got[0].id, got[1].id}
	slices.Sort(ids)
	if len(got) != 2 || !slices.Equal(ids, []string{"fam-a1", "fam-a2"}) || got[0].domain != "acme" || !got[0].until.Equal(f.now.Add(30*24*time.Hour)) {
		t.Fatalf("revoked %+v", got)
	}
	if _, err := f.st.Session(ctx, "s1", f.now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("alice's session survived: %v", err)
	}
	if _, err := f.st.Session(ctx, "s3", f.now); err != nil {
		t.Fatalf("bob's session was ended: %v", err)
	}

	boom := errors.New("store down")
	e, err = EndSubject(ctx, f.st, RevokerFunc(func(context.Context, string, string, time.Time) error { return boom }), f.now, "acme", "bob")
	if !errors.Is(err, boom) || e != (Ended{Sessions: 1}) {
		t.Fatalf("with a failing revoker: %+v, %v", e, err)
	}
}
