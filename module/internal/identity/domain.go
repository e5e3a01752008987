package identity

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Sign-in failures. Callers show users one message for all of them (so the
// page does not reveal which accounts exist) and write the precise one to the
// audit log.
var (
	ErrUnknownUser   = errors.New("no account with that username or e-mail")
	ErrWrongPassword = errors.New("wrong password")
	ErrNoPassword    = errors.New("account has no password")
	ErrInactive      = errors.New("account is disabled")
)

// ReservedClaims are claim names the issuer sets itself; custom claims may
// not use them.
var ReservedClaims = map[string]bool{
	"iss": true, "sub": true, "aud": true, "exp": true, "iat": true, "nbf": true, "jti": true,
	"auth_time": true, "nonce": true, "at_hash": true, "c_hash": true, "azp": true, "acr": true,
	"amr": true, "sid": true, "client_id": true, "scope": true, "cnf": true, "typ": true, "gty": true,
	"name": true, "given_name": true, "family_name": true, "preferred_username": true,
	"email": true, "email_verified": true,
}

// domainIndex holds the lookup maps Compile builds.
type domainIndex struct {
	bySubject  map[string]*User
	byUsername map[string]*User // lower-cased preferred username
	byEmail    map[string]*User // lower-cased e-mail
	byExternal map[ExternalIdentity]*User
	clients    map[string]*Client
	// dummyHash is a real user's hash, spent when the login names no
	// account, so that timing matches a real verification.
	dummyHash string
}

// Compile validates the domain and builds its lookup maps (user by subject,
// by preferred username and by e-mail — both case-insensitive — and client by
// id, and by external identity). Duplicates are rejected, and so is a
// claims map that cannot be applied to a user's claims or that produces a
// claim the issuer sets itself (CheckClaimsMap). It must be called before
// the lookups and after any change to Users or Clients; it is safe to call
// again.
func (d *Domain) Compile() error {
	var errs []error
	if err := ValidateIssuerURL(d.Issuer); err != nil {
		errs = append(errs, err)
	}
	idx := &domainIndex{
		bySubject:  make(map[string]*User, len(d.Users)),
		byUsername: make(map[string]*User, len(d.Users)),
		byEmail:    make(map[string]*User, len(d.Users)),
		byExternal: map[ExternalIdentity]*User{},
		clients:    make(map[string]*Client, len(d.Clients)),
	}
	for i, u := range d.Users {
		if u == nil || u.Subject == "" {
			errs = append(errs, fmt.Errorf("user #%d has no sub; give every user a unique, stable subject", i+1))
			continue
		}
		if _, dup := idx.bySubject[u.Subject]; dup {
			errs = append(errs, fmt.Errorf("user sub %q is used twice; subjects must be unique", u.Subject))
		}
		idx.bySubject[u.Subject] = u
		if u.PreferredUsername != "" {
			k := strings.ToLower(u.PreferredUsername)
			if o, dup := idx.byUsername[k]; dup {
				errs = append(errs, fmt.Errorf("users %q and %q have the same username %q (usernames are case-insensitive); rename one", o.Subject, u.Subject, u.PreferredUsername))
			}
			idx.byUsername[k] = u
		}
		if u.Email != "" {
			if !strings.Contains(u.Email, "@") {
				errs = append(errs, fmt.Errorf("%s: email %q is not an e-mail address", u.label(), u.Email))
			}
			k := strings.ToLower(u.Email)
			if o, dup := idx.byEmail[k]; dup {
				errs = append(errs, fmt.Errorf("users %q and %q have the same email %q (e-mail is case-insensitive); change one", o.Subject, u.Subject, u.Email))
			}
			idx.byEmail[k] = u
		}
		for _, x := range u.Identities {
			if x.Provider == "" || x.Subject == "" {
				errs = append(errs, fmt.Errorf("%s: an external identity needs a provider and a subject", u.label()))
				continue
			}
			if o, dup := idx.byExternal[x]; dup {
				errs = append(errs, fmt.Errorf("users %q and %q have the same %s identity %q; an external account belongs to one user", o.Subject, u.Subject, x.Provider, x.Subject))
			}
			idx.byExternal[x] = u
		}
		if u.PasswordHash != "" {
			if err := ValidatePasswordHash(u.PasswordHash); err != nil {
				errs = append(errs, fmt.Errorf("%s: password_hash: %w", u.label(), err))
			} else if idx.dummyHash == "" {
				idx.dummyHash = u.PasswordHash
			}
		}
		for _, c := range u.Claims {
			switch {
			case c.Name == "":
				errs = append(errs, fmt.Errorf("%s: a custom claim has no name", u.label()))
			case ReservedClaims[c.Name] && d.ClaimsMap == nil: // with a map, its results are checked
				errs = append(errs, fmt.Errorf("%s: custom claim %q is set by the issuer itself; pick another name", u.label(), c.Name))
			}
			if c.In != ClaimAccess && c.In != ClaimIdentity {
				errs = append(errs, fmt.Errorf("%s: custom claim %q must be marked %q or %q", u.label(), c.Name, ClaimAccess, ClaimIdentity))
			}
		}
	}
	if err := d.CheckClaimsMap(); err != nil {
		errs = append(errs, err)
	}
	// Usernames and e-mails share one login field: one user's username must
	// not be another user's e-mail.
	for k, u := range idx.byUsername {
		if o, ok := idx.byEmail[k]; ok && o != u {
			errs = append(errs, fmt.Errorf("username of %q equals the email of %q; the login field would be ambiguous, rename one", u.Subject, o.Subject))
		}
	}
	for i, c := range d.Clients {
		if c == nil {
			errs = append(errs, fmt.Errorf("client #%d is empty", i+1))
			continue
		}
		if err := c.Validate(); err != nil {
			errs = append(errs, err)
		}
		if _, dup := idx.clients[c.ID]; dup {
			errs = append(errs, fmt.Errorf("client_id %q is used twice; client ids must be unique", c.ID))
		}
		// A client_credentials token's sub is the client id: an upstream
		// that reads the subject could not tell this client from the user.
		if u, ok := idx.bySubject[c.ID]; ok {
			name := u.PreferredUsername
			if name == "" {
				name = u.Subject
			}
			errs = append(errs, fmt.Errorf("client_id %q is also the sub of user %q; a client's own tokens carry its id as sub, so upstreams could not tell the two apart: rename the client (or give the user another sub)", c.ID, name))
		}
		idx.clients[c.ID] = c
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	d.index = idx
	return nil
}

// label names the user in a configuration error: by username (what the
// configuration names it by), or by sub when it has none.
func (u *User) label() string {
	if u.PreferredUsername != "" {
		return fmt.Sprintf("user %q", u.PreferredUsername)
	}
	return fmt.Sprintf("user with sub %q", u.Subject)
}

// Validate checks the domain without keeping the lookup maps of a failed
// compilation; it is Compile under the name callers expect.
func (d *Domain) Validate() error { return d.Compile() }

func (d *Domain) idx() *domainIndex {
	if d.index == nil {
		return &domainIndex{}
	}
	return d.index
}

// Compiled reports whether Compile succeeded.
func (d *Domain) Compiled() bool { return d.index != nil }

// UserBySubject returns the user with that sub, or nil.
func (d *Domain) UserBySubject(sub string) *User { return d.idx().bySubject[sub] }

// UserByUsername returns the user with that preferred username
// (case-insensitive), or nil.
func (d *Domain) UserByUsername(name string) *User {
	return d.idx().byUsername[strings.ToLower(name)]
}

// UserByEmail returns the user with that e-mail (case-insensitive), or nil.
func (d *Domain) UserByEmail(email string) *User {
	return d.idx().byEmail[strings.ToLower(email)]
}

// UserByLogin resolves what a user typed into the login field: a username or
// an e-mail address.
func (d *Domain) UserByLogin(login string) *User {
	if u := d.UserByUsername(login); u != nil {
		return u
	}
	return d.UserByEmail(login)
}

// UserByExternal returns the user linked to that account at an external
// provider, or nil.
func (d *Domain) UserByExternal(provider, subject string) *User {
	return d.idx().byExternal[ExternalIdentity{Provider: provider, Subject: subject}]
}

// Client returns the client with that id, or nil.
func (d *Domain) Client(id string) *Client { return d.idx().clients[id] }

// DummyHash is a password hash of one of the domain's users ("" when none
// has a password), spent by CheckPassword when a login names no account.
func (d *Domain) DummyHash() string { return d.idx().dummyHash }

// CheckPassword signs a user in with a login (username or e-mail) and a
// password. It always spends one password-hash verification, whether or not
// the account exists, so timing does not reveal accounts. On failure the user
// is returned when known (for the audit log) with one of ErrUnknownUser,
// ErrNoPassword, ErrWrongPassword or ErrInactive.
func (d *Domain) CheckPassword(login, password string) (*User, error) {
	u := d.UserByLogin(login)
	if u == nil {
		SpendDummyHash(d.idx().dummyHash, password)
		return nil, ErrUnknownUser
	}
	if u.PasswordHash == "" {
		SpendDummyHash(d.idx().dummyHash, password)
		return u, ErrNoPassword
	}
	ok, err := VerifyPassword(u.PasswordHash, password)
	if err != nil {
		return u, fmt.Errorf("password hash of %q: %w", u.Subject, err)
	}
	if !ok {
		return u, ErrWrongPassword
	}
	if !u.Active {
		return u, ErrInactive
	}
	return u, nil
}

// ValidateIssuerURL checks an issuer URL: absolute https (or http on a
// loopback host), no query, no fragment, no trailing slash.
func ValidateIssuerURL(raw string) error {
	if raw == "" {
		return errors.New("no issuer URL; set issuer to e.g. https://auth.example.com")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("issuer %q is not a URL: %v", raw, err)
	}
	if u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("issuer %q must be an absolute https URL such as https://auth.example.com", raw)
	}
	if u.Scheme == "http" && !IsLoopbackHost(u.Hostname()) {
		return fmt.Errorf("issuer %q uses http on a non-loopback host; use https", raw)
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.ContainsAny(raw, "?#") {
		return fmt.Errorf("issuer %q must not have a query or fragment; remove them", raw)
	}
	if u.User != nil {
		return fmt.Errorf("issuer %q must not contain user info", raw)
	}
	if strings.HasSuffix(raw, "/") {
		return fmt.Errorf("issuer %q ends with '/'; remove the trailing slash (the issuer must match tokens exactly)", raw)
	}
	return nil
}
