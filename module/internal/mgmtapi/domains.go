package mgmtapi

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/directory"
	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// Domain settings and their bounds.
const (
	defaultSigningAlgorithm = "RS256"
	defaultSessionLifetime  = 12 * time.Hour
	defaultKeyRotation      = 90 * 24 * time.Hour
	minSessionLifetime      = time.Minute
	maxSessionLifetime      = 365 * 24 * time.Hour
	minKeyRotation          = time.Minute
	maxKeyRotation          = 730 * 24 * time.Hour
)

var signingAlgorithms = []string{"RS256", "ES256", "EdDSA"}

// Domain is a domain as the API shows it.
type Domain struct {
	Name   string `json:"name"`
	Issuer string `json:"issuer"`
	// Managed is "config" for a domain the configuration defines
	// (read-only), "api" for one created through the API.
	Managed          string `json:"managed"`
	SigningAlgorithm string `json:"signingAlgorithm"`
	// SessionLifetime and KeyRotation are in seconds.
	SessionLifetime int64      `json:"sessionLifetime"`
	KeyRotation     int64      `json:"keyRotation"`
	CreatedAt       *time.Time `json:"createdAt,omitempty"`
	UpdatedAt       *time.Time `json:"updatedAt,omitempty"`
}

// domainCreate is the body of POST /v1/domain.
type domainCreate struct {
	Name             string `json:"name"`
	Issuer           string `json:"issuer"`
	SigningAlgorithm string `json:"signingAlgorithm"`
	SessionLifetime  *int64 `json:"sessionLifetime"`
	KeyRotation      *int64 `json:"keyRotation"`
}

// domainPatch is the body of PATCH /v1/domain/{domain}.
type domainPatch struct {
	Issuer           opt[string] `json:"issuer"`
	SigningAlgorithm opt[string] `json:"signingAlgorithm"`
	SessionLifetime  opt[int64]  `json:"sessionLifetime"`
	KeyRotation      opt[int64]  `json:"keyRotation"`
}

// storedSettings are a stored domain's settings, read with the directory's
// codec (the one format the store keeps them in); a row that does not
// decode (never written by this API) shows the defaults.
func storedSettings(d store.Domain) identity.DomainSettings {
	s, err := directory.DecodeDomainSettings(d.Name, d.Issuer, d.Settings)
	if err != nil {
		return identity.DomainSettings{Name: d.Name, Issuer: d.Issuer}
	}
	return s
}

func seconds(d, def time.Duration) int64 {
	if d == 0 {
		d = def
	}
	return int64(d / time.Second)
}

func orString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func domainOfRow(d store.Domain) Domain {
	s := storedSettings(d)
	return Domain{Name: d.Name, Issuer: d.Issuer, Managed: "api",
		SigningAlgorithm: orString(s.SigningAlgorithm, defaultSigningAlgorithm),
		SessionLifetime:  seconds(s.SessionLifetime, defaultSessionLifetime),
		KeyRotation:      seconds(s.KeyRotation, defaultKeyRotation),
		CreatedAt:        timePtr(d.CreatedAt), UpdatedAt: timePtr(d.UpdatedAt)}
}

func domainOfConfig(cd *configDomain) Domain {
	return Domain{Name: cd.apiName, Issuer: cd.Issuer, Managed: "config",
		SigningAlgorithm: orString(cd.SigningAlgorithm, defaultSigningAlgorithm),
		SessionLifetime:  seconds(cd.SessionLifetime, defaultSessionLifetime),
		KeyRotation:      seconds(cd.KeyRotation, defaultKeyRotation)}
}

// domainTarget is a domain a request names: configured, stored, or both
// (a configured domain with objects added through the API has a stored row
// under it).
type domainTarget struct {
	api    string        // its API name
	name   string        // its name in the store
	config *configDomain // when the configuration defines it
	row    store.Domain
	stored bool
}

// storeName is the name the store and the issuer know a domain by: the
// configuration's unnamed domain is "" there.
func (a *API) storeName(api string) string {
	if cd := a.cfg.domain(api); cd != nil {
		return cd.Name
	}
	return api
}

// domain finds the domain the path names and checks that the key reaches
// it (for a write: and may write).
func (c *call) target(write bool) (*domainTarget, *Problem) {
	name := c.r.PathValue("domain")
	c.domain = name
	check := c.mayRead
	if write {
		check = c.mayWrite
	}
	if p := check(name); p != nil {
		return nil, p
	}
	t := &domainTarget{api: name, name: c.a.storeName(name), config: c.a.cfg.domain(name)}
	if t.name == "" {
		return t, nil // the unnamed domain has no row
	}
	row, err := c.a.st.Domain(c.ctx, t.name)
	switch {
	case err == nil:
		t.row, t.stored = row, true
	case !errors.Is(err, store.ErrNotFound):
		return nil, unavailable(err)
	case t.config == nil:
		return nil, problem(TypeNotFound, fmt.Sprintf("domain %q does not exist", name))
	}
	return t, nil
}

// holdsStored checks that objects can be stored in the domain: the
// configuration's unnamed domain holds only what the configuration
// defines. A configured domain gets a stored row (its name and issuer) the
// first time an object is added to it, so the store's directory has a
// domain to put it in; the configuration still wins for the domain's
// settings.
func (c *call) holdsStored(t *domainTarget) *Problem {
	if t.name == "" {
		return problem(TypeManagedByConfig, "the configuration's unnamed domain holds only what the configuration defines; give the domain a name in the configuration (domain <name> { ... }) to add objects to it through the API")
	}
	if t.stored {
		return nil
	}
	row, err := c.a.st.PutDomain(c.ctx, store.Domain{Name: t.name, Issuer: t.config.Issuer}, store.Absent)
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return storeProblem(err, "domain", "name")
	}
	t.row, t.stored = row, err == nil
	return nil
}

func (c *call) listDomains() *Problem {
	rows, err := c.a.st.Domains(c.ctx)
	if err != nil {
		return unavailable(err)
	}
	var out []Domain
	for _, name := range c.a.cfg.Names() {
		out = append(out, domainOfConfig(c.a.cfg.domain(name)))
	}
	for _, r := range rows {
		if c.a.cfg.domain(r.Name) == nil && r.Name != DefaultDomain {
			out = append(out, domainOfRow(r))
		}
	}
	out = slices.DeleteFunc(out, func(d Domain) bool { return c.mayRead(d.Name) != nil })
	slices.SortFunc(out, func(a, b Domain) int { return strings.Compare(a.Name, b.Name) })
	if out == nil {
		out = []Domain{}
	}
	return c.writeJSON(http.StatusOK, List[Domain]{Items: out})
}

func (c *call) getDomain() *Problem {
	t, p := c.target(false)
	if p != nil {
		return p
	}
	if t.config != nil {
		c.setETag(t.config.etag)
		return c.writeJSON(http.StatusOK, domainOfConfig(t.config))
	}
	c.setETag(rowETag(t.row.Version, t.row.CreatedAt))
	return c.writeJSON(http.StatusOK, domainOfRow(t.row))
}

// checkSettings validates domain settings, adding to errs.
func checkSettings(errs []FieldError, alg *string, session, rotation *int64) []FieldError {
	if alg != nil && *alg != "" && !slices.Contains(signingAlgorithms, *alg) {
		errs = append(errs, FieldError{"signingAlgorithm", fmt.Sprintf("%q is not a signing algorithm; use %s", *alg, strings.Join(signingAlgorithms, ", "))})
	}
	checkRange := func(field string, v *int64, lo, hi time.Duration) {
		if v != nil && (*v < int64(lo/time.Second) || *v > int64(hi/time.Second)) {
			errs = append(errs, FieldError{field, fmt.Sprintf("%d is out of range; use %d to %d seconds", *v, int64(lo/time.Second), int64(hi/time.Second))})
		}
	}
	checkRange("sessionLifetime", session, minSessionLifetime, maxSessionLifetime)
	checkRange("keyRotation", rotation, minKeyRotation, maxKeyRotation)
	return errs
}

// checkIssuer validates an issuer URL and checks that no configured domain
// has it (the store checks stored ones).
func (c *call) checkIssuer(errs []FieldError, issuer, domain string) ([]FieldError, *Problem) {
	if err := identity.ValidateIssuerURL(issuer); err != nil {
		return append(errs, FieldError{"issuer", err.Error()}), nil
	}
	if other, ok := c.a.cfg.issuers[issuer]; ok && other != domain {
		return errs, conflict("issuer", fmt.Sprintf("issuer %q is taken by domain %q", issuer, other))
	}
	return errs, nil
}

// secondsOf is a duration given in seconds (nil: not given, 0).
func secondsOf(secs *int64) time.Duration {
	if secs == nil {
		return 0
	}
	return time.Duration(*secs) * time.Second
}

func (c *call) createDomain() *Problem {
	if p := c.mayWrite(""); p != nil {
		return p
	}
	body, p := c.jsonBody(mediaJSON)
	if p != nil {
		return p
	}
	var in domainCreate
	if p := decodeJSON(body, &in); p != nil {
		return p
	}
	c.domain = in.Name
	var errs []FieldError
	switch {
	case in.Name == DefaultDomain || c.a.cfg.domain(in.Name) != nil:
		return problem(TypeManagedByConfig, fmt.Sprintf("domain %q is defined by the configuration (or reserved for its unnamed domain)", in.Name))
	case !validDomainName(in.Name):
		errs = append(errs, FieldError{"name", fmt.Sprintf("%q is not a domain name; use lower-case letters, digits and inner hyphens, at most 63", in.Name)})
	}
	errs, p = c.checkIssuer(errs, in.Issuer, in.Name)
	if p != nil {
		return p
	}
	errs = checkSettings(errs, &in.SigningAlgorithm, in.SessionLifetime, in.KeyRotation)
	if len(errs) > 0 {
		return invalid(errs...)
	}
	raw, err := directory.EncodeDomainSettings(identity.DomainSettings{SigningAlgorithm: in.SigningAlgorithm,
		SessionLifetime: secondsOf(in.SessionLifetime), KeyRotation: secondsOf(in.KeyRotation)})
	if err != nil {
		return invalid(FieldError{"settings", err.Error()})
	}
	row, err := c.a.st.PutDomain(c.ctx, store.Domain{Name: in.Name, Issuer: in.Issuer, Settings: raw}, store.Absent)
	if err != nil {
		return storeProblem(err, "domain", "name")
	}
	c.a.changed()
	c.setETag(rowETag(row.Version, row.CreatedAt))
	c.w.Header().Set("Location", "/v1/domain/"+row.Name)
	return c.writeJSON(http.StatusCreated, domainOfRow(row))
}

func (c *call) patchDomain() *Problem {
	t, p := c.target(true)
	if p != nil {
		return p
	}
	if t.config != nil {
		return problem(TypeManagedByConfig, fmt.Sprintf("domain %q is defined by the configuration; change it there", t.api))
	}
	body, p := c.jsonBody(mediaJSON, mediaMergePatch)
	if p != nil {
		return p
	}
	var in domainPatch
	if p := decodeJSON(body, &in); p != nil {
		return p
	}
	var errs []FieldError
	if in.Issuer.set {
		if errs, p = c.checkIssuer(errs, in.Issuer.v, t.api); p != nil {
			return p
		}
	}
	var alg *string
	var session, rotation *int64
	if in.SigningAlgorithm.set {
		alg = &in.SigningAlgorithm.v
	}
	if in.SessionLifetime.set {
		session = &in.SessionLifetime.v
	}
	if in.KeyRotation.set {
		rotation = &in.KeyRotation.v
	}
	if errs = checkSettings(errs, alg, session, rotation); len(errs) > 0 {
		return invalid(errs...)
	}
	row := t.row
	if p := c.precondition(rowETag(row.Version, row.CreatedAt)); p != nil {
		return p
	}
	err := c.retry(func() error {
		if in.Issuer.set {
			row.Issuer = in.Issuer.v
		}
		s := storedSettings(row)
		if alg != nil {
			s.SigningAlgorithm = *alg
		}
		if session != nil {
			s.SessionLifetime = secondsOf(session)
		}
		if rotation != nil {
			s.KeyRotation = secondsOf(rotation)
		}
		raw, err := directory.EncodeDomainSettings(s)
		if err != nil {
			return err
		}
		row.Settings = raw
		out, err := c.a.st.PutDomain(c.ctx, row, row.Version)
		if errors.Is(err, store.ErrStale) {
			if fresh, rerr := c.a.st.Domain(c.ctx, row.Name); rerr == nil {
				row = fresh
			}
			return err
		}
		row = out
		return err
	})
	if err != nil {
		return storeProblem(err, "domain", "name")
	}
	c.a.changed()
	c.setETag(rowETag(row.Version, row.CreatedAt))
	return c.writeJSON(http.StatusOK, domainOfRow(row))
}

// Deleted is the answer of a delete: what was deleted and what of it was
// ended (token families revoked, SSO sessions deleted).
type Deleted struct {
	Kind            string `json:"kind"`
	ID              string `json:"id"`
	Deleted         bool   `json:"deleted"`
	RevokedFamilies int    `json:"revokedFamilies"`
	EndedSessions   int    `json:"endedSessions"`
}

func (c *call) deleteDomain() *Problem {
	if p := c.mayWrite(""); p != nil {
		return p
	}
	t, p := c.target(true)
	if p != nil {
		return p
	}
	if t.config != nil {
		return problem(TypeManagedByConfig, fmt.Sprintf("domain %q is defined by the configuration; remove it there", t.api))
	}
	if p := c.precondition(rowETag(t.row.Version, t.row.CreatedAt)); p != nil {
		return p
	}
	// Everything the domain's users and clients hold ends first, then the
	// rows go; a second sweep catches what was granted in between.
	var subjects, clients []string
	for offset := 0; ; offset += 100 {
		users, _, err := c.a.st.Users(c.ctx, t.name, "", offset, 100)
		if err != nil {
			return unavailable(err)
		}
		for _, u := range users {
			subjects = append(subjects, u.Subject)
		}
		if len(users) < 100 {
			break
		}
	}
	rows, err := c.a.st.Clients(c.ctx, t.name)
	if err != nil {
		return unavailable(err)
	}
	for _, r := range rows {
		clients = append(clients, r.ID)
	}
	var ended ended
	if p := c.endAll(t.name, subjects, clients, &ended); p != nil {
		return p
	}
	if err := c.a.st.DeleteDomain(c.ctx, t.name, c.expected(t.row.Version)); err != nil {
		return storeProblem(err, "domain", "name")
	}
	c.a.changed()
	if p := c.endAll(t.name, subjects, clients, &ended); p != nil {
		return p
	}
	c.detail = ended.fields()
	return c.writeJSON(http.StatusAccepted, Deleted{Kind: "domain", ID: t.api, Deleted: true, RevokedFamilies: ended.families, EndedSessions: ended.sessions})
}
