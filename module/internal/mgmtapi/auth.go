package mgmtapi

import (
	"fmt"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// wwwAuthenticate is the challenge of a 401.
const wwwAuthenticate = `Bearer realm="gatehouse-api"`

// maxPresentedKey bounds what is read of a presented key: anything longer
// is no key, but it is still hashed whole (bounded by the header limit).
const maxPresentedKey = 4096

// authenticate finds the API key the request presents — the x-api-key
// header, else Authorization: Bearer — and checks it. Every presented
// key costs one lookup and one hash comparison, known or not.
func (a *API) authenticate(r *http.Request) (store.APIKey, *Problem) {
	presented := strings.TrimSpace(r.Header.Get("X-Api-Key"))
	if presented == "" {
		if scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
			presented = strings.TrimSpace(tok)
		}
	}
	if presented == "" {
		return store.APIKey{}, problem(TypeUnauthorized, "no API key: send it in the x-api-key header or as Authorization: Bearer <key>").
			with("WWW-Authenticate", wwwAuthenticate)
	}
	if len(presented) > maxPresentedKey {
		presented = presented[:maxPresentedKey]
	}
	now := a.now()
	rec, status, err := checkKey(r.Context(), a.st, presented, now)
	if err != nil {
		return store.APIKey{}, unavailable(err)
	}
	invalid := func(typ, detail string) *Problem {
		return problem(typ, detail).with("WWW-Authenticate", wwwAuthenticate+`, error="invalid_token"`)
	}
	switch status {
	case keyUnknown:
		return store.APIKey{}, invalid(TypeUnauthorized, "the API key is not valid")
	case keyRevoked:
		return rec, invalid(TypeKeyRevoked, fmt.Sprintf("API key %s was revoked at %s; ask for a new key", rec.ID, rec.RevokedAt.Format("2006-01-02T15:04:05Z07:00")))
	case keyExpired:
		return rec, invalid(TypeKeyExpired, fmt.Sprintf("API key %s expired at %s; ask for a new key", rec.ID, rec.ExpiresAt.Format("2006-01-02T15:04:05Z07:00")))
	}
	if rec.LastUsedAt.IsZero() || now.Sub(rec.LastUsedAt) >= store.APIKeyTouchInterval {
		if err := a.st.TouchAPIKey(r.Context(), rec.ID, now); err != nil {
			a.log.Warn("management API: recording a key's use", zap.String("key_id", rec.ID), zap.Error(err))
		}
	}
	return rec, nil
}

// Rights. A global key reaches every domain and may create domains; a
// domain key reaches its domain only. A read-only key may only read.

// global reports whether the call's key is global.
func (c *call) global() bool { return c.key.Domain == "" }

// mayRead checks that the key reaches the domain (an API name).
func (c *call) mayRead(domain string) *Problem {
	if c.key.Domain != "" && c.key.Domain != domain {
		return problem(TypeForbidden, fmt.Sprintf("API key %s is bound to domain %q and cannot reach domain %q", c.key.ID, c.key.Domain, domain))
	}
	return nil
}

// mayWrite checks that the key reaches the domain ("" for what no domain
// holds: creating a domain needs a global key) and may write.
func (c *call) mayWrite(domain string) *Problem {
	if domain == "" && !c.global() {
		return problem(TypeForbidden, fmt.Sprintf("API key %s is bound to domain %q; this needs a global key", c.key.ID, c.key.Domain))
	}
	if p := c.mayRead(domain); p != nil {
		return p
	}
	if c.key.ReadOnly {
		return problem(TypeForbidden, fmt.Sprintf("API key %s is read-only", c.key.ID))
	}
	return nil
}
