package mgmtapi

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse-auth/gatehouse/module/internal/directory"
	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// Users.
const (
	maxTextLen       = 256 // a username, name or given/family name
	maxEmailLen      = 254
	maxClaims        = 64
	maxClaimNameLen  = 128
	maxSearchLen     = 256
	defaultPageLimit = 50
	maxPageLimit     = 100
	maxSubLen        = 255
)

// Claim is a user's custom claim and the token it lands in.
type Claim struct {
	Name  string `json:"name"`
	Value any    `json:"value"`
	// In is "access" (the access token: roles, permissions) or "identity"
	// (the ID token and userinfo).
	In string `json:"in"`
}

// ExternalIdentity is a user's account at a federated provider.
type ExternalIdentity struct {
	Provider string `json:"provider"`
	Subject  string `json:"subject"`
}

// User is a user as the API shows it.
type User struct {
	Sub               string             `json:"sub"`
	PreferredUsername string             `json:"preferredUsername"`
	Name              string             `json:"name"`
	GivenName         string             `json:"givenName"`
	FamilyName        string             `json:"familyName"`
	Email             string             `json:"email"`
	EmailVerified     bool               `json:"emailVerified"`
	Active            bool               `json:"active"`
	HasPassword       bool               `json:"hasPassword"`
	Claims            []Claim            `json:"claims"`
	Identities        []ExternalIdentity `json:"identities"`
	Managed           string             `json:"managed"`
	CreatedAt         *time.Time         `json:"createdAt,omitempty"`
	UpdatedAt         *time.Time         `json:"updatedAt,omitempty"`
}

// UserItem is a user in a listing.
type UserItem struct {
	Sub               string `json:"sub"`
	Active            bool   `json:"active"`
	PreferredUsername string `json:"preferredUsername"`
	Email             string `json:"email"`
	Managed           string `json:"managed"`
}

// UserList is a page of users: the configuration's users first, then the
// stored ones, each by username.
type UserList struct {
	Items  []UserItem `json:"items"`
	Offset int        `json:"offset"`
	Limit  int        `json:"limit"`
	// Total is how many users match the search.
	Total int `json:"total"`
}

// userCreate is the body of POST .../user.
type userCreate struct {
	PreferredUsername string  `json:"preferredUsername"`
	Name              string  `json:"name"`
	GivenName         string  `json:"givenName"`
	FamilyName        string  `json:"familyName"`
	Email             string  `json:"email"`
	EmailVerified     bool    `json:"emailVerified"`
	Active            *bool   `json:"active"`
	Claims            []Claim `json:"claims"`
}

// userPatch is the body of PATCH .../user/{sub}.
type userPatch struct {
	PreferredUsername opt[string]  `json:"preferredUsername"`
	Name              opt[string]  `json:"name"`
	GivenName         opt[string]  `json:"givenName"`
	FamilyName        opt[string]  `json:"familyName"`
	Email             opt[string]  `json:"email"`
	EmailVerified     opt[bool]    `json:"emailVerified"`
	Active            opt[bool]    `json:"active"`
	Claims            opt[[]Claim] `json:"claims"`
}

// passwordBody is the body of PUT .../user/{sub}/password.
type passwordBody struct {
	Password string `json:"password"`
}

func userOfRow(u store.User) User {
	out := User{Sub: u.Subject, PreferredUsername: u.PreferredUsername, Name: u.Name, GivenName: u.GivenName,
		FamilyName: u.FamilyName, Email: u.Email, EmailVerified: u.EmailVerified, Active: u.Active,
		HasPassword: u.PasswordHash != "", Identities: []ExternalIdentity{}, Managed: "api",
		CreatedAt: timePtr(u.CreatedAt), UpdatedAt: timePtr(u.UpdatedAt)}
	// The directory's codec: the one format the store keeps claims in. A
	// row that does not decode (never written by this API) shows none.
	cs, _ := directory.DecodeUserClaims(u.Claims)
	out.Claims = claimsOf(cs)
	for _, x := range u.Identities {
		out.Identities = append(out.Identities, ExternalIdentity{Provider: x.Provider, Subject: x.Subject})
	}
	return out
}

func userOfConfig(u *identity.User) User {
	out := User{Sub: u.Subject, PreferredUsername: u.PreferredUsername, Name: u.Name, GivenName: u.GivenName,
		FamilyName: u.FamilyName, Email: u.Email, EmailVerified: u.EmailVerified, Active: u.Active,
		HasPassword: u.PasswordHash != "", Claims: claimsOf(u.Claims), Identities: []ExternalIdentity{}, Managed: "config"}
	return out
}

// claimsOf is custom claims as the API shows them (never null).
func claimsOf(cs []identity.CustomClaim) []Claim {
	out := make([]Claim, 0, len(cs))
	for _, c := range cs {
		out = append(out, Claim{Name: c.Name, Value: c.Value, In: c.In})
	}
	return out
}

// checkText validates a text field: at most maxTextLen bytes of UTF-8
// without control characters (and, when required, not empty).
func checkText(errs []FieldError, field, v string, required bool) []FieldError {
	switch {
	case v == "" && required:
		return append(errs, FieldError{field, "required; give a non-empty text"})
	case len(v) > maxTextLen:
		return append(errs, FieldError{field, fmt.Sprintf("longer than %d bytes", maxTextLen)})
	case !utf8.ValidString(v) || strings.IndexFunc(v, unicode.IsControl) >= 0:
		return append(errs, FieldError{field, "contains control characters or invalid UTF-8"})
	case strings.TrimSpace(v) != v:
		return append(errs, FieldError{field, "starts or ends with white space; remove it"})
	}
	return errs
}

// checkEmail validates an e-mail address: a bare addr-spec of at most
// maxEmailLen bytes ("" is no address).
func checkEmail(errs []FieldError, v string) []FieldError {
	if v == "" {
		return errs
	}
	a, err := mail.ParseAddress(v)
	if err != nil || a.Address != v || a.Name != "" || len(v) > maxEmailLen || !strings.Contains(v, "@") {
		return append(errs, FieldError{"email", fmt.Sprintf("%q is not an e-mail address such as alice@example.com", v)})
	}
	return errs
}

// checkClaims validates custom claims and renders them as the store keeps
// them (nil when none).
func checkClaims(errs []FieldError, cs []Claim) ([]FieldError, json.RawMessage) {
	if len(cs) > maxClaims {
		return append(errs, FieldError{"claims", fmt.Sprintf("%d claims; at most %d", len(cs), maxClaims)}), nil
	}
	seen := map[string]bool{}
	for i, c := range cs {
		f := fmt.Sprintf("claims[%d]", i)
		switch {
		case c.Name == "" || len(c.Name) > maxClaimNameLen || !utf8.ValidString(c.Name) || strings.IndexFunc(c.Name, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
			errs = append(errs, FieldError{f + ".name", fmt.Sprintf("a claim name is 1 to %d bytes without spaces or control characters", maxClaimNameLen)})
		case identity.ReservedClaims[c.Name]:
			errs = append(errs, FieldError{f + ".name", fmt.Sprintf("%q is set by the issuer itself; pick another name", c.Name)})
		case seen[c.Name]:
			errs = append(errs, FieldError{f + ".name", fmt.Sprintf("%q is given twice", c.Name)})
		}
		seen[c.Name] = true
		if c.In != identity.ClaimAccess && c.In != identity.ClaimIdentity {
			errs = append(errs, FieldError{f + ".in", fmt.Sprintf("%q is not a token; use %q (the access token) or %q (the ID token and userinfo)", c.In, identity.ClaimAccess, identity.ClaimIdentity)})
		}
		if c.Value == nil {
			errs = append(errs, FieldError{f + ".value", "a claim needs a value (a string, number, boolean, array or object)"})
		}
	}
	out := make([]identity.CustomClaim, len(cs))
	for i, c := range cs {
		out[i] = identity.CustomClaim{Name: c.Name, Value: c.Value, In: c.In}
	}
	raw, err := directory.EncodeUserClaims(out)
	if err != nil {
		return append(errs, FieldError{"claims", err.Error()}), nil
	}
	return errs, raw
}

// checkUser validates a user about to be stored.
func checkUser(u *store.User, claims []Claim) []FieldError {
	var errs []FieldError
	errs = checkText(errs, "preferredUsername", u.PreferredUsername, true)
	errs = checkText(errs, "name", u.Name, true)
	errs = checkText(errs, "givenName", u.GivenName, false)
	errs = checkText(errs, "familyName", u.FamilyName, false)
	errs = checkEmail(errs, u.Email)
	if u.Email == "" && u.EmailVerified {
		errs = append(errs, FieldError{"emailVerified", "a user without an e-mail address cannot have it verified"})
	}
	errs, u.Claims = checkClaims(errs, claims)
	return errs
}

// loginConflict reports a username or e-mail of u that a configured user
// of the domain has (the configuration's users are looked up first at
// sign-in, so the stored one could never sign in with it).
func loginConflict(cd *configDomain, u *store.User) *Problem {
	if cd == nil {
		return nil
	}
	for _, l := range []struct{ field, v string }{{"preferredUsername", u.PreferredUsername}, {"email", u.Email}} {
		if l.v == "" {
			continue
		}
		if o := cd.logins[store.LoginKey(l.v)]; o != nil && o.Subject != u.Subject {
			return conflict(l.field, fmt.Sprintf("%s %q is taken by a user the configuration defines", l.field, l.v))
		}
	}
	return nil
}

// newSubject makes a user's subject: 128 random bits in lower-case base32,
// safe in URLs and in any case-folding system.
func newSubject() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return keyEncoding.EncodeToString(b), nil
}

func (c *call) listUsers() *Problem {
	t, p := c.target(false)
	if p != nil {
		return p
	}
	q := c.r.URL.Query()
	var errs []FieldError
	for k := range q {
		if k != "search" && k != "offset" && k != "limit" {
			errs = append(errs, FieldError{k, "unknown query parameter; use search, offset and limit"})
		}
	}
	search := q.Get("search")
	if utf8.RuneCountInString(search) > maxSearchLen || !utf8.ValidString(search) {
		errs = append(errs, FieldError{"search", fmt.Sprintf("at most %d characters of UTF-8", maxSearchLen)})
	}
	offset, limit := 0, defaultPageLimit
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			errs = append(errs, FieldError{"offset", fmt.Sprintf("%q is not a number from 0", v)})
		}
		offset = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageLimit {
			errs = append(errs, FieldError{"limit", fmt.Sprintf("%q is not a number from 1 to %d", v, maxPageLimit)})
		}
		limit = n
	}
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b FieldError) int { return strings.Compare(a.Field, b.Field) })
		return invalid(errs...)
	}
	// The configuration's users first.
	var cfgUsers []*identity.User
	if t.config != nil {
		key := store.LoginKey(search)
		for _, u := range t.config.Users {
			if key == "" || strings.Contains(store.LoginKey(u.PreferredUsername), key) || strings.Contains(store.LoginKey(u.Email), key) {
				cfgUsers = append(cfgUsers, u)
			}
		}
		slices.SortFunc(cfgUsers, func(a, b *identity.User) int {
			if c := strings.Compare(store.LoginKey(a.PreferredUsername), store.LoginKey(b.PreferredUsername)); c != 0 {
				return c
			}
			return strings.Compare(a.Subject, b.Subject)
		})
	}
	out := UserList{Items: []UserItem{}, Offset: offset, Limit: limit, Total: len(cfgUsers)}
	for _, u := range cfgUsers[min(offset, len(cfgUsers)):min(offset+limit, len(cfgUsers))] {
		out.Items = append(out.Items, UserItem{Sub: u.Subject, Active: u.Active, PreferredUsername: u.PreferredUsername, Email: u.Email, Managed: "config"})
	}
	if t.stored {
		rest := limit - len(out.Items)
		from := max(offset-len(cfgUsers), 0)
		users, total, err := c.a.st.Users(c.ctx, t.name, search, from, rest)
		if err != nil {
			return unavailable(err)
		}
		out.Total += total
		for _, u := range users {
			if t.config != nil && t.config.users[u.Subject] != nil {
				continue // the configuration's wins
			}
			out.Items = append(out.Items, UserItem{Sub: u.Subject, Active: u.Active, PreferredUsername: u.PreferredUsername, Email: u.Email, Managed: "api"})
		}
	}
	return c.writeJSON(http.StatusOK, out)
}

// userTarget is the user a path names.
type userTarget struct {
	*domainTarget
	config *identity.User
	row    store.User
}

func (ut *userTarget) etag() string {
	if ut.config != nil {
		return ut.domainTarget.config.userTags[ut.config.Subject]
	}
	return rowETag(ut.row.Version, ut.row.CreatedAt)
}

// user finds the user the path names.
func (c *call) user(write bool) (*userTarget, *Problem) {
	t, p := c.target(write)
	if p != nil {
		return nil, p
	}
	sub := c.r.PathValue("sub")
	c.object = "user " + sub
	notFound := problem(TypeNotFound, fmt.Sprintf("user %q does not exist in domain %q", sub, t.api))
	if len(sub) > maxSubLen {
		return nil, notFound
	}
	ut := &userTarget{domainTarget: t}
	if t.config != nil {
		if u := t.config.users[sub]; u != nil {
			ut.config = u
			if write {
				return nil, problem(TypeManagedByConfig, fmt.Sprintf("user %q is defined by the configuration; change it there", sub))
			}
			return ut, nil
		}
	}
	if !t.stored {
		return nil, notFound
	}
	row, err := c.a.st.User(c.ctx, t.name, sub)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, notFound
		}
		return nil, unavailable(err)
	}
	ut.row = row
	return ut, nil
}

func (c *call) getUser() *Problem {
	ut, p := c.user(false)
	if p != nil {
		return p
	}
	c.setETag(ut.etag())
	if ut.config != nil {
		return c.writeJSON(http.StatusOK, userOfConfig(ut.config))
	}
	return c.writeJSON(http.StatusOK, userOfRow(ut.row))
}

func (c *call) createUser() *Problem {
	t, p := c.target(true)
	if p != nil {
		return p
	}
	body, p := c.jsonBody(mediaJSON)
	if p != nil {
		return p
	}
	var in userCreate
	if p := decodeJSON(body, &in); p != nil {
		return p
	}
	sub, err := newSubject()
	if err != nil {
		return unavailable(err)
	}
	u := store.User{Domain: t.name, Subject: sub, PreferredUsername: in.PreferredUsername, Name: in.Name,
		GivenName: in.GivenName, FamilyName: in.FamilyName, Email: in.Email, EmailVerified: in.EmailVerified, Active: true}
	if in.Active != nil {
		u.Active = *in.Active
	}
	if errs := checkUser(&u, in.Claims); len(errs) > 0 {
		return invalid(errs...)
	}
	if p := loginConflict(t.config, &u); p != nil {
		return p
	}
	if p := c.holdsStored(t); p != nil {
		return p
	}
	c.object = "user " + sub
	row, err := c.a.st.PutUser(c.ctx, u, store.Absent)
	if err != nil {
		return storeProblem(err, "user", "sub")
	}
	c.a.changed()
	c.setETag(rowETag(row.Version, row.CreatedAt))
	c.w.Header().Set("Location", "/v1/domain/"+url.PathEscape(t.api)+"/user/"+url.PathEscape(sub))
	return c.writeJSON(http.StatusCreated, userOfRow(row))
}

// updateUser applies change to the stored user with the request's
// precondition, trying again (without If-Match) when the user changed
// concurrently; change returns the problems of the result.
func (c *call) updateUser(ut *userTarget, change func(u *store.User) *Problem) (store.User, *Problem) {
	if p := c.precondition(ut.etag()); p != nil {
		return store.User{}, p
	}
	row := ut.row
	var prob *Problem
	err := c.retry(func() error {
		u := row
		if prob = change(&u); prob != nil {
			return nil
		}
		out, err := c.a.st.PutUser(c.ctx, u, row.Version)
		if errors.Is(err, store.ErrStale) {
			if fresh, rerr := c.a.st.User(c.ctx, row.Domain, row.Subject); rerr == nil {
				row = fresh
			}
			return err
		}
		row = out
		return err
	})
	if prob != nil {
		return row, prob
	}
	if err != nil {
		return row, storeProblem(err, "user", "sub")
	}
	c.a.changed()
	return row, nil
}

func (c *call) patchUser() *Problem {
	ut, p := c.user(true)
	if p != nil {
		return p
	}
	body, p := c.jsonBody(mediaJSON, mediaMergePatch)
	if p != nil {
		return p
	}
	var in userPatch
	if p := decodeJSON(body, &in); p != nil {
		return p
	}
	row, p := c.updateUser(ut, func(u *store.User) *Problem {
		set := func(o opt[string], dst *string) {
			if o.set {
				*dst = o.v
			}
		}
		set(in.PreferredUsername, &u.PreferredUsername)
		set(in.Name, &u.Name)
		set(in.GivenName, &u.GivenName)
		set(in.FamilyName, &u.FamilyName)
		set(in.Email, &u.Email)
		if in.EmailVerified.set {
			u.EmailVerified = in.EmailVerified.v
		}
		if in.Active.set {
			u.Active = in.Active.v
		}
		claims := userOfRow(*u).Claims
		if in.Claims.set {
			claims = in.Claims.v
		}
		if errs := checkUser(u, claims); len(errs) > 0 {
			return invalid(errs...)
		}
		return loginConflict(ut.domainTarget.config, u)
	})
	if p != nil {
		return p
	}
	// A disabled user's sessions and tokens end (again, harmlessly, when
	// they had ended).
	if !row.Active {
		var e ended
		if p := c.endSubject(ut.name, row.Subject, &e); p != nil {
			return p
		}
		c.detail = e.fields()
	}
	c.setETag(rowETag(row.Version, row.CreatedAt))
	return c.writeJSON(http.StatusOK, userOfRow(row))
}

func (c *call) deleteUser() *Problem {
	ut, p := c.user(true)
	if p != nil {
		return p
	}
	if p := c.precondition(ut.etag()); p != nil {
		return p
	}
	var e ended
	if p := c.endSubject(ut.name, ut.row.Subject, &e); p != nil {
		return p
	}
	if err := c.a.st.DeleteUser(c.ctx, ut.name, ut.row.Subject, c.expected(ut.row.Version)); err != nil {
		return storeProblem(err, "user", "sub")
	}
	c.a.changed()
	// What was granted while the first sweep ran.
	if p := c.endSubject(ut.name, ut.row.Subject, &e); p != nil {
		return p
	}
	c.detail = e.fields()
	return c.writeJSON(http.StatusOK, Deleted{Kind: "user", ID: ut.row.Subject, Deleted: true, RevokedFamilies: e.families, EndedSessions: e.sessions})
}

func (c *call) putPassword() *Problem {
	ut, p := c.user(true)
	if p != nil {
		return p
	}
	body, p := c.jsonBody(mediaJSON)
	if p != nil {
		return p
	}
	var in passwordBody
	if p := decodeJSON(body, &in); p != nil {
		return p
	}
	if err := identity.CheckNewPassword(in.Password); err != nil {
		return invalid(FieldError{"password", err.Error()})
	}
	hash, err := identity.HashPassword(in.Password)
	if err != nil {
		return unavailable(err)
	}
	row, p := c.updateUser(ut, func(u *store.User) *Problem {
		u.PasswordHash = hash
		return nil
	})
	if p != nil {
		return p
	}
	c.setETag(rowETag(row.Version, row.CreatedAt))
	return c.writeJSON(http.StatusOK, userOfRow(row))
}

// jsonBody checks the request's media type and reads its body.
func (c *call) jsonBody(accepted ...string) ([]byte, *Problem) {
	if _, p := mediaType(c.r, accepted...); p != nil {
		return nil, p
	}
	return readBody(c.r, c.a.maxBody)
}
