package mgmtapi

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// APIKey is an API key as the API shows it; the key itself only once, in
// the answer that created it.
type APIKey struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Domain is the domain the key is bound to; null for a global key.
	Domain     *string    `json:"domain"`
	ReadOnly   bool       `json:"readOnly"`
	CreatedBy  string     `json:"createdBy"`
	CreatedAt  time.Time  `json:"createdAt"`
	ExpiresAt  *time.Time `json:"expiresAt"`
	LastUsedAt *time.Time `json:"lastUsedAt"`
	RevokedAt  *time.Time `json:"revokedAt"`
	// Status is "active", "expired" or "revoked".
	Status string `json:"status"`
	// Key is the key: shown once, when it is created.
	Key string `json:"key,omitempty"`
}

// keyCreate is the body of POST /v1/apikey.
type keyCreate struct {
	Name      string  `json:"name"`
	Domain    *string `json:"domain"`
	ReadOnly  bool    `json:"readOnly"`
	ExpiresAt *string `json:"expiresAt"`
}

// KeyOfRecord is how the API (and the command line) shows a key record.
func KeyOfRecord(k store.APIKey, now time.Time) APIKey {
	out := APIKey{ID: k.ID, Name: k.Name, ReadOnly: k.ReadOnly, CreatedBy: k.CreatedBy, CreatedAt: k.CreatedAt.UTC(),
		ExpiresAt: timePtr(k.ExpiresAt), LastUsedAt: timePtr(k.LastUsedAt), RevokedAt: timePtr(k.RevokedAt), Status: "active"}
	if k.Domain != "" {
		d := k.Domain
		out.Domain = &d
	}
	switch {
	case !k.RevokedAt.IsZero():
		out.Status = "revoked"
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		out.Status = "expired"
	}
	return out
}

func (c *call) listKeys() *Problem {
	var keys []store.APIKey
	var err error
	if c.global() {
		keys, err = c.a.st.APIKeys(c.ctx)
	} else {
		c.domain = c.key.Domain
		keys, err = c.a.st.DomainAPIKeys(c.ctx, c.key.Domain)
	}
	if err != nil {
		return unavailable(err)
	}
	now := c.a.now()
	out := make([]APIKey, 0, len(keys))
	for _, k := range keys {
		out = append(out, KeyOfRecord(k, now))
	}
	return c.writeJSON(http.StatusOK, List[APIKey]{Items: out})
}

// domainExists reports whether a domain of that API name is configured or
// stored.
func (c *call) domainExists(name string) (bool, *Problem) {
	if c.a.cfg.domain(name) != nil {
		return true, nil
	}
	_, err := c.a.st.Domain(c.ctx, name)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	}
	return false, unavailable(err)
}

func (c *call) createKey() *Problem {
	body, p := c.jsonBody(mediaJSON)
	if p != nil {
		return p
	}
	var in keyCreate
	if p := decodeJSON(body, &in); p != nil {
		return p
	}
	// A key never makes a key with more rights than its own: a domain key
	// only keys of its domain, a read-only key none, and none that outlives
	// it.
	domain := c.key.Domain
	if in.Domain != nil {
		domain = *in.Domain
		if domain == "" {
			return invalid(FieldError{"domain", "an empty domain; omit the field (or send null) for a global key"})
		}
	}
	c.domain = domain
	if p := c.mayWrite(domain); p != nil {
		return p
	}
	var errs []FieldError
	if err := CheckKeyName(in.Name); err != nil {
		errs = append(errs, FieldError{"name", err.Error()})
	}
	now := c.a.now()
	expires := now.Add(DefaultKeyLifetime)
	if in.ExpiresAt != nil {
		t, err := time.Parse(time.RFC3339, *in.ExpiresAt)
		switch {
		case err != nil:
			errs = append(errs, FieldError{"expiresAt", fmt.Sprintf("%q is not an RFC 3339 time such as 2030-01-31T12:00:00Z", *in.ExpiresAt)})
		case !t.After(now):
			errs = append(errs, FieldError{"expiresAt", "the time has passed; give a time in the future"})
		}
		expires = t
	}
	if domain != "" {
		ok, p := c.domainExists(domain)
		if p != nil {
			return p
		}
		if !ok {
			errs = append(errs, FieldError{"domain", fmt.Sprintf("domain %q does not exist", domain)})
		}
	}
	if len(errs) > 0 {
		return invalid(errs...)
	}
	if own := c.key.ExpiresAt; !own.IsZero() && expires.After(own) {
		if in.ExpiresAt != nil {
			return problem(TypeForbidden, fmt.Sprintf("API key %s expires at %s; it cannot make a key that outlives it", c.key.ID, own.UTC().Format(time.RFC3339)))
		}
		expires = own
	}
	key, rec, err := CreateKey(c.ctx, c.a.st, KeySpec{Name: in.Name, Domain: domain, ReadOnly: in.ReadOnly, ExpiresAt: expires, CreatedBy: c.key.ID}, now)
	if err != nil {
		return storeProblem(err, "API key", "id")
	}
	c.object = "apikey " + rec.ID
	out := KeyOfRecord(rec, now)
	out.Key = key
	c.w.Header().Set("Location", "/v1/apikey/"+rec.ID)
	return c.writeJSON(http.StatusCreated, out)
}

func (c *call) revokeKey() *Problem {
	id := c.r.PathValue("id")
	c.object = "apikey " + id
	notFound := problem(TypeNotFound, fmt.Sprintf("API key %q does not exist", id))
	if !ValidKeyID(id) {
		return notFound
	}
	k, err := c.a.st.APIKey(c.ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notFound
	case err != nil:
		return unavailable(err)
	}
	c.domain = k.Domain
	if p := c.mayWrite(k.Domain); p != nil {
		return p
	}
	k, err = c.a.st.RevokeAPIKey(c.ctx, id, c.a.now())
	if err != nil {
		return storeProblem(err, "API key", "id")
	}
	return c.writeJSON(http.StatusOK, KeyOfRecord(k, c.a.now()))
}
