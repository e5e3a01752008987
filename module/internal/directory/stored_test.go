package directory

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/pgtest"
	"github.com/gatehouse-auth/gatehouse/module/internal/claims"
	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/module/internal/store"
	"github.com/gatehouse-auth/gatehouse/module/internal/store/postgres"
	"github.com/gatehouse-auth/gatehouse/module/internal/store/sqlite"
)

// backends opens each store backend that can run here: SQLite always,
// PostgreSQL when GATEHOUSE_TEST_POSTGRES_DSN names a database the tests
// may create schemas in (skipped, saying so, otherwise; failed in CI).
func backends(t *testing.T, fn func(t *testing.T, open func() store.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "gatehouse.db")
		fn(t, func() store.Store {
			st, err := sqlite.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		})
	})
	t.Run("postgres", func(t *testing.T) {
		dsn, _ := pgtest.Schema(t, "gatehouse_dir_")
		fn(t, func() store.Store {
			st, err := postgres.Open(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		})
	})
}

// rows writes directory rows the way a management API would.
type rows struct {
	t  *testing.T
	st store.Store
}

func (r rows) domain(name, issuer string, s identity.DomainSettings) {
	r.t.Helper()
	raw, err := EncodeDomainSettings(s)
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.st.PutDomain(ctx, store.Domain{Name: name, Issuer: issuer, Settings: raw}, store.AnyVersion); err != nil {
		r.t.Fatal(err)
	}
}

func (r rows) client(domain string, c *identity.Client) {
	r.t.Helper()
	raw, err := EncodeClient(c)
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.st.PutClient(ctx, store.Client{Domain: domain, ID: c.ID, Data: raw, SecretHash: c.SecretHash}, store.AnyVersion); err != nil {
		r.t.Fatal(err)
	}
}

func (r rows) policy(domain, id, src string) {
	r.t.Helper()
	if _, err := r.st.PutPolicy(ctx, store.Policy{Domain: domain, ID: id, Source: json.RawMessage(src)}, store.AnyVersion); err != nil {
		r.t.Fatal(err)
	}
}

func (r rows) user(domain string, u *identity.User) {
	r.t.Helper()
	raw, err := EncodeUserClaims(u.Claims)
	if err != nil {
		r.t.Fatal(err)
	}
	su := store.User{Domain: domain, Subject: u.Subject, PreferredUsername: u.PreferredUsername, Name: u.Name,
		GivenName: u.GivenName, FamilyName: u.FamilyName, Email: u.Email, EmailVerified: u.EmailVerified,
		Active: u.Active, PasswordHash: u.PasswordHash, Claims: raw}
	for _, x := range u.Identities {
		su.Identities = append(su.Identities, store.ExternalIdentity{Provider: x.Provider, Subject: x.Subject})
	}
	if _, err := r.st.PutUser(ctx, su, store.AnyVersion); err != nil {
		r.t.Fatal(err)
	}
}

func confidential(id string) *identity.Client {
	c := client(id, "https://"+id+".example/cb", "https://"+id+".example")
	c.Type, c.SecretHash, c.RequirePKCE = identity.Confidential, identity.HashSecret(id+"-secret-0123456789"), true
	c.GrantTypes = []string{identity.GrantAuthorizationCode, identity.GrantRefreshToken}
	c.AccessTokenLifetime = 10 * time.Minute
	c.Policies = []string{"staff"}
	return c
}

func TestStored_ServesTheStoreAndFollowsItsVersion(t *testing.T) {
	backends(t, func(t *testing.T, open func() store.Store) {
		st := open()
		r := rows{t, st}
		var reported []error
		var mu sync.Mutex
		d := NewStored(st, func(err error) { mu.Lock(); reported = append(reported, err); mu.Unlock() })
		if _, err := d.Snapshot(ctx, "acme"); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("before the first Refresh: %v, want ErrUnavailable", err)
		}
		if err := d.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if names, err := d.Domains(ctx); err != nil || len(names) != 0 {
			t.Fatalf("an empty store: %v %v", names, err)
		}

		cm, err := claims.Parse("map.yaml", []byte("mode: merge\ntransformations:\n  - source: dept\n    target: team\n"))
		if err != nil {
			t.Fatal(err)
		}
		r.domain("acme", "https://acme.example.com", identity.DomainSettings{SessionLifetime: 2 * time.Hour, SigningAlgorithm: "ES256", ClaimsMap: cm})
		web := confidential("web")
		r.client("acme", web)
		r.policy("acme", "staff", `{"id":"staff","all":[{"claim":"dept","in":["research"]}]}`)
		h := pwHash(t, "pw")
		r.user("acme", &identity.User{Subject: "u1", PreferredUsername: "Alice", Email: "alice@example.com", EmailVerified: true, Active: true, PasswordHash: h,
			Claims:     []identity.CustomClaim{{Name: "dept", Value: "research", In: identity.ClaimIdentity}, {Name: "roles", Value: []any{"admin"}, In: identity.ClaimAccess}},
			Identities: []identity.ExternalIdentity{{Provider: "github", Subject: "77"}}})

		// Users are read through at once; snapshots move on Refresh.
		if u, err := d.UserByLogin(ctx, "acme", "ALICE@example.com"); err != nil || u.Subject != "u1" || len(u.Claims) != 2 || u.Identities[0].Subject != "77" {
			t.Fatalf("a stored user: %+v %v", u, err)
		}
		if _, err := d.Snapshot(ctx, "acme"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a domain written after the last Refresh: %v", err)
		}
		if err := d.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		snap, err := d.Snapshot(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if snap.Settings.Issuer != "https://acme.example.com" || snap.Settings.SessionLifetime != 2*time.Hour || snap.Settings.SigningAlgorithm != "ES256" || snap.Settings.ClaimsMap == nil {
			t.Fatalf("settings %+v", snap.Settings)
		}
		got := snap.Client("web")
		if got == nil || !got.SecretMatches("web-secret-0123456789") || !got.HasRedirectURI("https://web.example/cb") || got.AccessLifetime() != 10*time.Minute || !got.RequirePKCE {
			t.Fatalf("stored client %+v", got)
		}
		if !snap.Origins["https://web.example"] || !snap.Policies.Evaluate(map[string]any{"dept": "research"}, []string{"staff"}).Allow {
			t.Fatal("derived origins or policies")
		}
		if snap.DummyHash != h || snap.ConfigManaged(KindClient, "web") {
			t.Fatal("a stored snapshot's dummy hash or config marker")
		}
		mapped, err := identity.MapClaims(snap.Settings.ClaimsMap, mustUser(t, d, "u1"))
		if err != nil || !hasClaim(mapped, "team", "research") {
			t.Fatalf("the stored claims map on a stored user: %v %v", mapped, err)
		}
		if u, err := d.UserByExternal(ctx, "acme", "github", "77"); err != nil || u.Subject != "u1" {
			t.Fatalf("by external account: %v %v", u, err)
		}
		if u, err := d.UserByLogin(ctx, "acme", "alice"); err != nil {
			t.Fatal(err)
		} else if ok, err := identity.VerifyPassword(u.PasswordHash, "pw"); !ok || err != nil {
			t.Fatalf("a stored user's password: %v %v", ok, err)
		}
		if _, err := d.UserBySubject(ctx, "acme", "nobody"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("an unknown user: %v", err)
		}

		// Nothing changed: the same snapshot, not rebuilt.
		if err := d.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if again, _ := d.Snapshot(ctx, "acme"); again != snap {
			t.Fatal("a Refresh without a change rebuilt the snapshot")
		}
		// Rows that cannot be served are left out and reported; the rest is
		// served.
		r.client("acme", &identity.Client{ID: "broken", Type: identity.Public, GrantTypes: []string{identity.GrantAuthorizationCode}})
		r.policy("acme", "bad", `{"id":"bad","all":[]}`)
		mobile := client("mobile", "https://mobile.example/cb")
		r.client("acme", mobile)
		if err := d.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		next, _ := d.Snapshot(ctx, "acme")
		if next == snap || next.Version <= snap.Version || next.Client("mobile") == nil || next.Client("web") == nil || next.Client("broken") != nil || next.Policies.Has("bad") || !next.Policies.Has("staff") {
			t.Fatalf("after the change: version %d→%d, clients %v", snap.Version, next.Version, next.Clients())
		}
		mu.Lock()
		n := len(reported)
		mu.Unlock()
		if n != 2 {
			t.Fatalf("reported %d unusable rows, want 2: %v", n, reported)
		}
		// A deleted domain is gone after the next Refresh.
		if err := st.DeleteDomain(ctx, "acme", store.AnyVersion); err != nil {
			t.Fatal(err)
		}
		if err := d.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Snapshot(ctx, "acme"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a deleted domain: %v", err)
		}
	})
}

// TestStored_AnotherInstancesWriteArrivesThroughWatch: two processes share
// the store; a write made through one reaches the other's snapshots by its
// watcher, without a Refresh in between.
func TestStored_AnotherInstancesWriteArrivesThroughWatch(t *testing.T) {
	backends(t, func(t *testing.T, open func() store.Store) {
		writer, reader := open(), open()
		r := rows{t, writer}
		r.domain("acme", "https://acme.example.com", identity.DomainSettings{})
		d := NewStored(reader, func(err error) { t.Errorf("watch: %v", err) })
		if err := d.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); d.Watch(wctx, 20*time.Millisecond) }()
		defer func() { cancel(); <-done }()
		r.client("acme", client("late", "https://late.example/cb"))
		deadline := time.Now().Add(5 * time.Second)
		for {
			if snap, err := d.Snapshot(ctx, "acme"); err == nil && snap.Client("late") != nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("the other instance's client did not arrive within 5s")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// TestStored_ChangedIsClosedWhenSnapshotsAreSwapped: Changed wakes a
// waiter when another instance's write arrives through the watcher, and
// not when a Refresh finds nothing new.
func TestStored_ChangedIsClosedWhenSnapshotsAreSwapped(t *testing.T) {
	backends(t, func(t *testing.T, open func() store.Store) {
		writer, reader := open(), open()
		r := rows{t, writer}
		d := NewStored(reader, func(err error) { t.Errorf("watch: %v", err) })
		first := d.Changed()
		if err := d.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		select {
		case <-first:
		default:
			t.Fatal("the first read did not close Changed")
		}
		quiet := d.Changed()
		if err := d.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		select {
		case <-quiet:
			t.Fatal("a Refresh without a change closed Changed")
		default:
		}
		wctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); d.Watch(wctx, 20*time.Millisecond) }()
		defer func() { cancel(); <-done }()
		r.domain("acme", "https://acme.example.com", identity.DomainSettings{})
		select {
		case <-quiet:
		case <-time.After(5 * time.Second):
			t.Fatal("a domain another instance wrote did not close Changed within 5s")
		}
		if names, err := d.Domains(ctx); err != nil || len(names) != 1 || names[0] != "acme" {
			t.Fatalf("after Changed: %v %v", names, err)
		}
	})
}

// TestLayered_ConfigOverTheStore: the configuration over a real store —
// the configured client wins over a stored one of the same id and is
// config-managed; a stored client is served beside it; a stored user the
// configuration does not know is found; when the store is closed, users
// the configuration does not know are unavailable, never unknown.
func TestLayered_ConfigOverTheStore(t *testing.T) {
	backends(t, func(t *testing.T, open func() store.Store) {
		st := open()
		r := rows{t, st}
		r.domain("acme", "https://stored.example.com", identity.DomainSettings{})
		r.client("acme", client("web", "https://stored.example/cb"))
		r.client("acme", client("mobile", "https://mobile.example/cb"))
		r.user("acme", &identity.User{Subject: "s-carol", PreferredUsername: "carol", Active: true})
		stored := NewStored(st, nil)
		if err := stored.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		config := mustStatic(t, StaticDomain{Domain: &identity.Domain{DomainSettings: settings("acme", "https://auth.example.com"),
			Users:   []*identity.User{{Subject: "c-alice", PreferredUsername: "alice", Active: true}},
			Clients: []*identity.Client{client("web", "https://config.example/cb")}}})
		l := NewLayered(config, stored)
		snap, err := l.Snapshot(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if !snap.Client("web").HasRedirectURI("https://config.example/cb") || snap.Client("mobile") == nil || snap.Settings.Issuer != "https://auth.example.com" {
			t.Fatalf("merged snapshot: %v %s", snap.Clients(), snap.Settings.Issuer)
		}
		if !snap.ConfigManaged(KindClient, "web") || snap.ConfigManaged(KindClient, "mobile") {
			t.Fatal("config marker")
		}
		if u, err := l.UserByLogin(ctx, "acme", "carol"); err != nil || u.Subject != "s-carol" {
			t.Fatalf("a stored user: %v %v", u, err)
		}
		st.Close()
		if _, err := l.UserBySubject(ctx, "acme", "s-carol"); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("a stored user with the store closed: %v, want ErrUnavailable", err)
		}
		if u, err := l.UserBySubject(ctx, "acme", "c-alice"); err != nil || u == nil {
			t.Fatalf("a configured user with the store closed: %v", err)
		}
		if again, err := l.Snapshot(ctx, "acme"); err != nil || again != snap {
			t.Fatal("the snapshot the store gave stays served while it is closed")
		}
	})
}

func mustUser(t *testing.T, d Directory, sub string) *identity.User {
	t.Helper()
	u, err := d.UserBySubject(ctx, "acme", sub)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func hasClaim(cs []identity.CustomClaim, name string, v any) bool {
	for _, c := range cs {
		if c.Name == name && c.Value == v {
			return true
		}
	}
	return false
}

// TestStored_RebuildDecodesOnlyChangedClients: a rebuild reuses the client
// decoded from a row that did not change (the same value), and decodes
// again a row whose data or secret changed; a client deleted and written
// again with other data is never served from what was decoded before. The
// domain's dummy password hash, once found, is kept (no user query per
// rebuild), even when its user goes.
func TestStored_RebuildDecodesOnlyChangedClients(t *testing.T) {
	h := pwHash(t, "pw")
	backends(t, func(t *testing.T, open func() store.Store) {
		st := open()
		r := rows{t, st}
		r.domain("acme", "https://auth.example.com/acme", identity.DomainSettings{})
		r.client("acme", confidential("web"))
		r.client("acme", confidential("app"))
		r.user("acme", &identity.User{Subject: "u1", PreferredUsername: "u1", Active: true, PasswordHash: h})
		d := NewStored(st, func(err error) { t.Error(err) })
		snapshot := func() *Snapshot {
			t.Helper()
			if err := d.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			s, err := d.Snapshot(ctx, "acme")
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		first := snapshot()

		// Another object changes: both clients are the values decoded before.
		r.policy("acme", "staff", `{"all":[{"claim":"groups","in":["staff"]}]}`)
		if err := st.DeleteUser(ctx, "acme", "u1", store.AnyVersion); err != nil {
			t.Fatal(err)
		}
		second := snapshot()
		if second == first || second.Client("web") != first.Client("web") || second.Client("app") != first.Client("app") {
			t.Fatal("a rebuild decoded unchanged clients again")
		}
		if first.DummyHash != h || second.DummyHash != h {
			t.Fatalf("dummy hash %q, then %q; want the domain's user's", first.DummyHash, second.DummyHash)
		}

		// web's data changes, app's secret: both are decoded again.
		web := confidential("web")
		web.AccessTokenLifetime = 20 * time.Minute
		r.client("acme", web)
		app := confidential("app")
		app.SecretHash = identity.HashSecret("rotated-secret-0123456789")
		r.client("acme", app)
		third := snapshot()
		if got := third.Client("web").AccessTokenLifetime; got != 20*time.Minute {
			t.Fatalf("web's changed lifetime: %s", got)
		}
		if got := third.Client("app").SecretHash; got != app.SecretHash {
			t.Fatalf("app's rotated secret: %s", got)
		}

		// Deleted, then written again with other data.
		if err := st.DeleteClient(ctx, "acme", "web", store.AnyVersion); err != nil {
			t.Fatal(err)
		}
		if snapshot().Client("web") != nil {
			t.Fatal("a deleted client is served")
		}
		web.AccessTokenLifetime = 30 * time.Minute
		r.client("acme", web)
		if got := snapshot().Client("web").AccessTokenLifetime; got != 30*time.Minute {
			t.Fatalf("web written again: %s", got)
		}
	})
}
