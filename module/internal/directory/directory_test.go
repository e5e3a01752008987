package directory

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/policy"
)

var ctx = context.Background()

func mustPolicies(t testing.TB, src string) *policy.Set {
	t.Helper()
	ps, err := policy.Parse("p.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	s, err := policy.Compile(ps)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func pwHash(t testing.TB, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func client(id string, redirect string, origins ...string) *identity.Client {
	return &identity.Client{ID: id, Type: identity.Public, GrantTypes: []string{identity.GrantAuthorizationCode},
		RedirectURIs: []string{redirect}, AllowLocalLogin: true, AllowedOrigins: origins, Scopes: []string{"openid", id + ":read"}}
}

func mustStatic(t testing.TB, ds ...StaticDomain) *Static {
	t.Helper()
	s, err := NewStatic(ds...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func settings(name, iss string) identity.DomainSettings {
	return identity.DomainSettings{Name: name, Issuer: iss}
}

func TestStatic_ServesTheConfiguration(t *testing.T) {
	h := pwHash(t, "pw")
	set := mustPolicies(t, "policy:\n  - id: staff\n    all:\n      - rule: {claim: dept}\n")
	web := client("web", "https://web.example/cb", "https://web.example/")
	web.Policies = []string{"staff"}
	s := mustStatic(t, StaticDomain{Domain: &identity.Domain{
		DomainSettings: settings("acme", "https://auth.example.com"),
		Users: []*identity.User{
			{Subject: "u1", PreferredUsername: "Alice", Email: "alice@example.com", Active: true, PasswordHash: h,
				Identities: []identity.ExternalIdentity{{Provider: "github", Subject: "123"}}},
			{Subject: "u2", PreferredUsername: "bob", Active: true},
		},
		Clients: []*identity.Client{web, client("api", "https://api.example/cb")},
	}, Policies: set}, StaticDomain{Domain: &identity.Domain{DomainSettings: settings("", "https://other.example.com")}})

	snap, err := s.Snapshot(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if snap.Settings.Issuer != "https://auth.example.com" || snap.Policies != set || snap.DummyHash != h {
		t.Fatalf("snapshot %+v", snap)
	}
	if snap.Client("web") != web || snap.Client("nope") != nil {
		t.Fatal("Client")
	}
	if ids := []string{snap.Clients()[0].ID, snap.Clients()[1].ID}; ids[0] != "api" || ids[1] != "web" {
		t.Fatalf("Clients not sorted by id: %v", ids)
	}
	if !snap.Origins["https://web.example"] || len(snap.Origins) != 1 {
		t.Fatalf("Origins %v", snap.Origins)
	}
	if got := strings.Join(snap.Scopes, " "); got != "openid profile email offline_access web:read api:read" {
		t.Fatalf("Scopes %s", got)
	}
	if !snap.ConfigManaged(KindClient, "web") || !snap.ConfigManaged(KindPolicy, "staff") || !snap.ConfigManaged(KindDomain, "") {
		t.Fatal("a static object is not config-managed")
	}
	if again, _ := s.Snapshot(ctx, "acme"); again != snap {
		t.Fatal("a static snapshot changed")
	}

	for name, find := range map[string]func() (*identity.User, error){
		"by subject":           func() (*identity.User, error) { return s.UserBySubject(ctx, "acme", "u1") },
		"by username any case": func() (*identity.User, error) { return s.UserByLogin(ctx, "acme", "ALICE") },
		"by e-mail":            func() (*identity.User, error) { return s.UserByLogin(ctx, "acme", "Alice@Example.com") },
		"by external account":  func() (*identity.User, error) { return s.UserByExternal(ctx, "acme", "github", "123") },
	} {
		if u, err := find(); err != nil || u.Subject != "u1" {
			t.Errorf("%s: %v, %v", name, u, err)
		}
	}
	for name, find := range map[string]func() (*identity.User, error){
		"unknown subject":  func() (*identity.User, error) { return s.UserBySubject(ctx, "acme", "u9") },
		"unknown login":    func() (*identity.User, error) { return s.UserByLogin(ctx, "acme", "mallory") },
		"other provider":   func() (*identity.User, error) { return s.UserByExternal(ctx, "acme", "google", "123") },
		"user of a domain": func() (*identity.User, error) { return s.UserBySubject(ctx, "", "u1") },
		"unknown domain":   func() (*identity.User, error) { return s.UserBySubject(ctx, "nope", "u1") },
	} {
		if u, err := find(); !errors.Is(err, ErrNotFound) || u != nil {
			t.Errorf("%s: %v, %v; want ErrNotFound", name, u, err)
		}
	}
	if _, err := s.Snapshot(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown domain: %v", err)
	}
	if names, _ := s.Domains(ctx); strings.Join(names, ",") != ",acme" {
		t.Fatalf("Domains %q", names)
	}
}

func TestStatic_RefusesWhatIsNotSound(t *testing.T) {
	guarded := client("web", "https://web.example/cb")
	guarded.Policies = []string{"staff"}
	for name, tc := range map[string]struct {
		ds   []StaticDomain
		want string
	}{
		"a client naming an undefined policy": {[]StaticDomain{{Domain: &identity.Domain{DomainSettings: settings("", "https://a.example"), Clients: []*identity.Client{guarded}}}}, `client "web": unknown policy "staff"`},
		"a domain twice":                      {[]StaticDomain{{Domain: &identity.Domain{DomainSettings: settings("d", "https://a.example")}}, {Domain: &identity.Domain{DomainSettings: settings("d", "https://b.example")}}}, "defined twice"},
		"an invalid domain":                   {[]StaticDomain{{Domain: &identity.Domain{DomainSettings: settings("d", "https://a.example/")}}}, "trailing slash"},
		"an external identity twice": {[]StaticDomain{{Domain: &identity.Domain{DomainSettings: settings("d", "https://a.example"), Users: []*identity.User{
			{Subject: "1", Identities: []identity.ExternalIdentity{{Provider: "github", Subject: "7"}}},
			{Subject: "2", Identities: []identity.ExternalIdentity{{Provider: "github", Subject: "7"}}},
		}}}}, "same github identity"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewStatic(tc.ds...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// layeredFixture: the configuration and a second directory standing for
// the store, with objects of the same ids in both.
func layeredFixture(t *testing.T) (config, stored *Static, l *Layered) {
	cfgWeb := client("web", "https://config.example/cb", "https://config.example")
	config = mustStatic(t, StaticDomain{Domain: &identity.Domain{
		DomainSettings: settings("acme", "https://auth.example.com"),
		Users: []*identity.User{
			{Subject: "c-alice", PreferredUsername: "alice", Email: "alice@example.com", Active: true},
		},
		Clients: []*identity.Client{cfgWeb},
	}, Policies: mustPolicies(t, "policy:\n  - id: staff\n    all:\n      - rule: {claim: dept, in: [research]}\n")})
	stored = mustStatic(t,
		StaticDomain{Domain: &identity.Domain{
			DomainSettings: settings("acme", "https://stored.example.com"),
			Users: []*identity.User{
				{Subject: "s-alice", PreferredUsername: "alice", Active: true},
				{Subject: "s-carol", PreferredUsername: "carol", Email: "carol@example.com", Active: true,
					Identities: []identity.ExternalIdentity{{Provider: "github", Subject: "42"}}},
			},
			Clients: []*identity.Client{client("web", "https://stored.example/cb"), client("mobile", "https://mobile.example/cb", "https://mobile.example")},
		}, Policies: mustPolicies(t, "policy:\n  - id: staff\n    all:\n      - rule: {claim: dept, in: [sales]}\n  - id: contractors\n    all:\n      - rule: {claim: contractor}\n")},
		StaticDomain{Domain: &identity.Domain{DomainSettings: settings("beta", "https://beta.example.com")}},
	)
	return config, stored, NewLayered(config, stored)
}

func TestLayered_ConfigWinsPerIDAndIsReadOnly(t *testing.T) {
	config, _, l := layeredFixture(t)
	snap, err := l.Snapshot(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	cs, _ := config.Snapshot(ctx, "acme")
	if snap.Client("web") != cs.Client("web") || !snap.Client("web").HasRedirectURI("https://config.example/cb") {
		t.Fatal("the stored client won over the configured one of the same id")
	}
	if snap.Client("mobile") == nil {
		t.Fatal("a stored client is missing")
	}
	if snap.Settings.Issuer != "https://auth.example.com" {
		t.Fatalf("settings from the store: %s", snap.Settings.Issuer)
	}
	research, sales := map[string]any{"dept": "research"}, map[string]any{"dept": "sales"}
	if !snap.Policies.Evaluate(research, []string{"staff"}).Allow || snap.Policies.Evaluate(sales, []string{"staff"}).Allow {
		t.Fatal("the stored policy won over the configured one of the same id")
	}
	if !snap.Policies.Has("contractors") {
		t.Fatal("a stored policy is missing")
	}
	if !snap.Origins["https://config.example"] || !snap.Origins["https://mobile.example"] || len(snap.Origins) != 2 {
		t.Fatalf("origins of the merged clients: %v", snap.Origins)
	}
	for _, c := range []struct {
		kind Kind
		id   string
		want bool
	}{{KindClient, "web", true}, {KindClient, "mobile", false}, {KindPolicy, "staff", true}, {KindPolicy, "contractors", false}, {KindDomain, "", true}} {
		if got := snap.ConfigManaged(c.kind, c.id); got != c.want {
			t.Errorf("snapshot: %s %q config-managed = %v, want %v", c.kind, c.id, got, c.want)
		}
		if got, err := l.ConfigManaged(ctx, c.kind, "acme", c.id); err != nil || (c.kind != KindDomain && got != c.want) {
			t.Errorf("ConfigManaged(%s, %q) = %v, %v; want %v", c.kind, c.id, got, err, c.want)
		}
	}
	for _, c := range []struct {
		kind   Kind
		domain string
		id     string
		want   bool
	}{{KindDomain, "", "acme", true}, {KindDomain, "", "beta", false}, {KindUser, "acme", "c-alice", true}, {KindUser, "acme", "s-carol", false}, {KindClient, "beta", "web", false}} {
		if got, err := l.ConfigManaged(ctx, c.kind, c.domain, c.id); err != nil || got != c.want {
			t.Errorf("ConfigManaged(%s, %q, %q) = %v, %v; want %v", c.kind, c.domain, c.id, got, err, c.want)
		}
	}
	// Built once per pair of snapshots, not per call.
	if again, _ := l.Snapshot(ctx, "acme"); again != snap {
		t.Fatal("the merged snapshot was rebuilt without a change")
	}
}

func TestLayered_DomainsAreTheUnion(t *testing.T) {
	_, _, l := layeredFixture(t)
	names, err := l.Domains(ctx)
	if err != nil || strings.Join(names, ",") != "acme,beta" {
		t.Fatalf("Domains %v, %v", names, err)
	}
	beta, err := l.Snapshot(ctx, "beta")
	if err != nil || beta.Settings.Issuer != "https://beta.example.com" {
		t.Fatalf("a stored-only domain: %v, %v", beta, err)
	}
	if beta.ConfigManaged(KindDomain, "") {
		t.Fatal("a stored-only domain is config-managed")
	}
	if _, err := l.Snapshot(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an unknown domain: %v", err)
	}
}

func TestLayered_UsersConfigFirst(t *testing.T) {
	_, _, l := layeredFixture(t)
	if u, err := l.UserByLogin(ctx, "acme", "ALICE"); err != nil || u.Subject != "c-alice" {
		t.Fatalf("the login both define: %v, %v; want the configured user", u, err)
	}
	if u, err := l.UserBySubject(ctx, "acme", "s-carol"); err != nil || u.Subject != "s-carol" {
		t.Fatalf("a stored user: %v, %v", u, err)
	}
	if u, err := l.UserByLogin(ctx, "acme", "carol@example.com"); err != nil || u.Subject != "s-carol" {
		t.Fatalf("a stored user by e-mail: %v, %v", u, err)
	}
	if u, err := l.UserByExternal(ctx, "acme", "github", "42"); err != nil || u.Subject != "s-carol" {
		t.Fatalf("a stored user by external account: %v, %v", u, err)
	}
	if _, err := l.UserBySubject(ctx, "acme", "nobody"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
}

// failing is a directory whose store is down.
type failing struct{}

var errDown = errors.New("connection refused")

func (failing) Snapshot(context.Context, string) (*Snapshot, error) {
	return nil, errors.Join(ErrUnavailable, errDown)
}
func (failing) UserBySubject(context.Context, string, string) (*identity.User, error) {
	return nil, errors.Join(ErrUnavailable, errDown)
}
func (failing) UserByLogin(context.Context, string, string) (*identity.User, error) {
	return nil, errors.Join(ErrUnavailable, errDown)
}
func (failing) UserByExternal(context.Context, string, string, string) (*identity.User, error) {
	return nil, errors.Join(ErrUnavailable, errDown)
}
func (failing) Domains(context.Context) ([]string, error) {
	return nil, errors.Join(ErrUnavailable, errDown)
}

// TestLayered_StoreDownServesTheConfigurationAndSaysSoForUsers: with the
// store unreachable, a configured domain still serves its configured
// clients; a user the configuration does not know is "unavailable", never
// "unknown".
func TestLayered_StoreDownServesTheConfigurationAndSaysSoForUsers(t *testing.T) {
	config, _, _ := layeredFixture(t)
	l := NewLayered(config, failing{})
	snap, err := l.Snapshot(ctx, "acme")
	if err != nil || snap.Client("web") == nil || snap.Client("mobile") != nil {
		t.Fatalf("configured domain with the store down: %v, %v", snap, err)
	}
	if _, err := l.Snapshot(ctx, "beta"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("a domain only the store knows: %v, want ErrUnavailable", err)
	}
	if u, err := l.UserBySubject(ctx, "acme", "c-alice"); err != nil || u == nil {
		t.Fatalf("a configured user: %v", err)
	}
	if _, err := l.UserBySubject(ctx, "acme", "s-carol"); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNotFound) {
		t.Fatalf("a stored user with the store down: %v, want ErrUnavailable", err)
	}
}

// swapping serves whichever directory it holds now: a store whose
// contents changed.
type swapping struct{ cur atomic.Pointer[Static] }

func (s *swapping) Snapshot(ctx context.Context, d string) (*Snapshot, error) {
	return s.cur.Load().Snapshot(ctx, d)
}
func (s *swapping) UserBySubject(ctx context.Context, d, sub string) (*identity.User, error) {
	return s.cur.Load().UserBySubject(ctx, d, sub)
}
func (s *swapping) UserByLogin(ctx context.Context, d, l string) (*identity.User, error) {
	return s.cur.Load().UserByLogin(ctx, d, l)
}
func (s *swapping) UserByExternal(ctx context.Context, d, p, x string) (*identity.User, error) {
	return s.cur.Load().UserByExternal(ctx, d, p, x)
}
func (s *swapping) Domains(ctx context.Context) ([]string, error) { return s.cur.Load().Domains(ctx) }

func TestLayered_RebuildsWhenTheStoredSnapshotChanges(t *testing.T) {
	config, stored, _ := layeredFixture(t)
	sw := &swapping{}
	sw.cur.Store(stored)
	l := NewLayered(config, sw)
	before, _ := l.Snapshot(ctx, "acme")
	sw.cur.Store(mustStatic(t, StaticDomain{Domain: &identity.Domain{DomainSettings: settings("acme", "https://stored.example.com"),
		Clients: []*identity.Client{client("tablet", "https://tablet.example/cb")}}}))
	after, _ := l.Snapshot(ctx, "acme")
	if after == before || after.Version == before.Version {
		t.Fatal("the merged snapshot did not follow the store")
	}
	if after.Client("tablet") == nil || after.Client("mobile") != nil || after.Client("web") == nil {
		t.Fatalf("merged clients after the change: %v", after.Clients())
	}
}
