package identity

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gatehouse-auth/gatehouse/module/internal/claims"
)

// ProfileClaims are the claims made from a user's profile fields. A claims
// map may read them as sources; they never come out of it.
var ProfileClaims = map[string]bool{"sub": true, "preferred_username": true, "name": true, "given_name": true,
	"family_name": true, "email": true, "email_verified": true}

// MapClaims returns u's custom claims after the claims map m (u's own
// claims when m is nil), sorted by name. The map reads the profile claims
// and every custom claim; what comes out, less the profile claims, are the
// custom claims. A claim lands in the access token when an access claim of
// that name went in, otherwise in the ID token. The result may carry names
// the issuer reserves (ReservedClaims): callers drop or refuse them. u is
// not changed; an error means the map cannot be applied to u's claims.
func MapClaims(m *claims.Map, u *User) ([]CustomClaim, error) {
	if m == nil {
		return u.Claims, nil
	}
	in := map[string]any{
		"sub": u.Subject, "preferred_username": u.PreferredUsername, "name": u.Name,
		"given_name": u.GivenName, "family_name": u.FamilyName, "email": u.Email, "email_verified": u.EmailVerified,
	}
	access := make(map[string]bool, len(u.Claims))
	for _, c := range u.Claims {
		in[c.Name] = c.Value
		access[c.Name] = c.In == ClaimAccess
	}
	out, err := m.Apply(in)
	if err != nil {
		return nil, err
	}
	mapped := make([]CustomClaim, 0, len(out))
	for name, v := range out {
		if ProfileClaims[name] {
			continue
		}
		where := ClaimIdentity
		if access[name] {
			where = ClaimAccess
		}
		mapped = append(mapped, CustomClaim{Name: name, Value: v, In: where})
	}
	slices.SortFunc(mapped, func(a, b CustomClaim) int { return strings.Compare(a.Name, b.Name) })
	return mapped, nil
}

// CheckClaimsMap applies the domain's claims map to every user, as minting
// will, and reports what would fail: a map that cannot be applied to a
// user's claims, or one that produces a claim the issuer sets itself (the
// issuer would leave it out of the tokens). Configuration calls it so that
// such mistakes stop the configuration from loading rather than surface at
// sign-in.
func (d *Domain) CheckClaimsMap() error {
	if d.ClaimsMap == nil {
		return nil
	}
	var errs []error
	for _, u := range d.Users {
		mapped, err := MapClaims(d.ClaimsMap, u)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: claims_map: %w", u.label(), err))
			continue
		}
		for _, c := range mapped {
			if ReservedClaims[c.Name] {
				errs = append(errs, fmt.Errorf("%s: custom claim %q is set by the issuer itself; pick another name", u.label(), c.Name))
			}
		}
	}
	return errors.Join(errs...)
}
