package module

import (
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/rp"
)

// TestSessionCheckRefusesAnotherAudience: the gate's cookie keys are bound
// to its audience, and the sealed session names the audience too; a
// session that opened but names another domain, issuer or client (a bug
// in the key binding, or a cookie sealed by a gate of another audience
// with the same keys) is still refused.
func TestSessionCheckRefusesAnotherAudience(t *testing.T) {
	now := time.Now()
	web := &gateWeb{audience: rp.Audience{Domain: "", Issuer: "https://auth.example.com", Client: "webapp"}}
	ok := rp.Session{ID: "s1", Subject: "alice", Audience: web.audience, SessionExpiry: now.Add(time.Hour)}
	if err := web.check(&ok, now); err != nil {
		t.Fatalf("a session of this gate's audience: %v", err)
	}
	for name, a := range map[string]rp.Audience{
		"another domain":           {Domain: "tenant2", Issuer: web.audience.Issuer, Client: "webapp"},
		"another issuer":           {Issuer: "https://t2.example.com", Client: "webapp"},
		"another client":           {Issuer: web.audience.Issuer, Client: "admin-console"},
		"no audience (old cookie)": {},
	} {
		s := ok
		s.Audience = a
		if err := web.check(&s, now); !errors.Is(err, errSessionOtherAudience) {
			t.Errorf("%s: %v, want errSessionOtherAudience", name, err)
		}
	}
}
