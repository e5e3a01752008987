package issuer

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/gatehouse-auth/gatehouse/module/internal/directory"
	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/policy"
)

// fixedDirectory serves one snapshot, whatever it holds: a directory (the
// store's) whose contents were not checked the way Static checks the
// configuration.
type fixedDirectory struct {
	snap *directory.Snapshot
	dom  *identity.Domain
}

func (d fixedDirectory) Snapshot(_ context.Context, name string) (*directory.Snapshot, error) {
	if name != d.snap.Settings.Name {
		return nil, directory.ErrNotFound
	}
	return d.snap, nil
}
func (d fixedDirectory) UserBySubject(_ context.Context, _, sub string) (*identity.User, error) {
	if u := d.dom.UserBySubject(sub); u != nil {
		return u, nil
	}
	return nil, directory.ErrNotFound
}
func (d fixedDirectory) UserByLogin(_ context.Context, _, login string) (*identity.User, error) {
	if u := d.dom.UserByLogin(login); u != nil {
		return u, nil
	}
	return nil, directory.ErrNotFound
}
func (d fixedDirectory) UserByExternal(context.Context, string, string, string) (*identity.User, error) {
	return nil, directory.ErrNotFound
}
func (d fixedDirectory) Domains(context.Context) ([]string, error) {
	return []string{d.snap.Settings.Name}, nil
}

func TestNew_RejectsUnsafeConfigurationWithTheFix(t *testing.T) {
	f := newFixture(t)
	dir := func(mutate func(*identity.DomainSettings), policies *policy.Set) directory.Directory {
		s := f.domain.DomainSettings
		if mutate != nil {
			mutate(&s)
		}
		return fixedDirectory{snap: directory.NewSnapshot(1, s, f.domain.Clients, policies), dom: f.domain}
	}
	base := func() Config {
		return Config{Directory: dir(nil, fixturePolicies), Store: f.st, Keys: f.keys}
	}
	cases := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"code lifetime above 60s", func(c *Config) { c.CodeLifetime = 2 * time.Minute }, "at most 60s"},
		{"tiny session", func(c *Config) {
			c.Directory = dir(func(s *identity.DomainSettings) { s.SessionLifetime = time.Second }, fixturePolicies)
		}, "at least 1m"},
		{"no store", func(c *Config) { c.Store = nil }, "no store"},
		{"no keys", func(c *Config) { c.Keys = nil }, "no signing keys"},
		{"no directory", func(c *Config) { c.Directory = nil }, "no directory"},
		{"a domain the directory does not know", func(c *Config) { c.Domain = "other" }, `domain "other": directory: not found`},
		{"http on a non-loopback host", func(c *Config) {
			c.Directory = dir(func(s *identity.DomainSettings) { s.Issuer = "http://auth.example.com" }, fixturePolicies)
		}, "uses http on a non-loopback host; use https"},
		{"invalid domain", func(c *Config) {
			c.Directory = dir(func(s *identity.DomainSettings) { s.Issuer = "https://a.example/" }, fixturePolicies)
		}, "trailing slash"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := base()
			c.mutate(&cfg)
			_, err := New(t.Context(), cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
	if _, err := New(t.Context(), base()); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	// What New reads is bounded by the caller's context: one that has
	// ended fails New instead of waiting on the store.
	ended, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := New(ended, base()); !errors.Is(err, context.Canceled) {
		t.Fatalf("New with an ended context: %v, want context.Canceled", err)
	}
}

// TestNew_AClientWithUndefinedPoliciesIsDeniedNotFatal: the configuration
// refuses a client that names an undefined policy; a directory that did
// not check (the store's, whose policy may have been deleted since) must
// not keep the issuer from starting — the client's sign-ins are denied
// instead (an undefined policy never holds), and the issuer says so.
func TestNew_AClientWithUndefinedPoliciesIsDeniedNotFatal(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	f := newFixture(t, withConfig(func(c *Config, d *identity.Domain) {
		if err := d.Compile(); err != nil {
			t.Fatal(err)
		}
		c.Directory = fixedDirectory{snap: directory.NewSnapshot(1, d.DomainSettings, d.Clients, nil), dom: d}
		c.Logger = zap.New(core)
	}), withRealPolicies())
	if logs.FilterField(zap.String("client_id", "guarded")).Len() != 1 {
		t.Fatal("the client naming an undefined policy was not reported")
	}
	loc := f.signIn(f.browser(), authParams("guarded", spaRedirect), "alice", alicePassword)
	if loc.Query().Get("error") != "access_denied" || loc.Query().Get("code") != "" {
		t.Fatalf("a sign-in to the client: %s", loc)
	}
}

func TestNew_PendingRequestsSurviveReload(t *testing.T) {
	f := newFixture(t)
	again, err := New(t.Context(), Config{Directory: f.directory(), Store: f.st, Keys: f.keys, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := f.iss.sealer.sealTx(testTx("r", f.clock.Now().Add(time.Minute)), f.clock.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := again.sealer.openTx(sealed); err != nil || p.ClientID != "spa" {
		t.Fatalf("a reloaded issuer cannot open a login in progress: %v", err)
	}
}
