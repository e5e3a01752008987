package issuer

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
)

func TestNew_RejectsUnsafeConfigurationWithTheFix(t *testing.T) {
	f := newFixture(t)
	base := func() Config {
		return Config{Domain: f.domain, Store: f.st, Keys: f.keys, Policies: f.policy}
	}
	cases := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"policies without a checker", func(c *Config) { c.Policies = nil }, "no policy checker"},
		{"code lifetime above 60s", func(c *Config) { c.CodeLifetime = 2 * time.Minute }, "at most 60s"},
		{"tiny session", func(c *Config) { c.SessionLifetime = time.Second }, "at least 1m"},
		{"no store", func(c *Config) { c.Store = nil }, "no store"},
		{"no keys", func(c *Config) { c.Keys = nil }, "no signing keys"},
		{"http on a non-loopback host", func(c *Config) {
			c.Domain = &identity.Domain{Issuer: "http://auth.example.com"}
		}, "uses http on a non-loopback host; use https"},
		{"invalid domain", func(c *Config) {
			c.Domain = &identity.Domain{Issuer: "https://a.example/", Clients: nil}
		}, "trailing slash"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := base()
			c.mutate(&cfg)
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
	if _, err := New(base()); err != nil {
		t.Fatalf("valid config: %v", err)
	}
}

func TestNew_PendingRequestsSurviveReload(t *testing.T) {
	f := newFixture(t)
	again, err := New(Config{Domain: f.domain, Store: f.st, Keys: f.keys, Policies: f.policy, Now: f.clock.Now})
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
