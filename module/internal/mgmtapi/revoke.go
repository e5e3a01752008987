package mgmtapi

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// Ending what a user or client holds. Deleting or disabling a user deletes
// their SSO sessions (no new grant can start from them) and revokes every
// token family they hold: refresh tokens stop working and the access
// tokens of the family are refused by every gate. Deleting a client revokes
// every family issued to it. Deleting a domain does both for each of its
// users and clients.

// ended counts what a sweep ended.
type ended struct {
	families, sessions int
}

func (e ended) fields() []zap.Field {
	return []zap.Field{zap.Int("revoked_families", e.families), zap.Int("ended_sessions", e.sessions)}
}

// revocationUntil is how long a family's revocation must last: as long as
// its refresh tokens and session grants would have, and as long as an
// access token issued now lives.
func revocationUntil(f store.Family, now time.Time) time.Time {
	until := now.Add(identity.MaxTokenLifetime)
	if f.ExpiresAt.After(until) {
		until = f.ExpiresAt
	}
	return until
}

// revokeFamilies revokes each family, counting them in e.
func (c *call) revokeFamilies(domain string, fams []store.Family, now time.Time, e *ended) *Problem {
	for _, f := range fams {
		if err := c.a.revoker.RevokeFamily(c.ctx, domain, f.ID, revocationUntil(f, now)); err != nil {
			return unavailable(err)
		}
		e.families++
	}
	return nil
}

// SubjectStore is what EndSubject needs of the store: a subject's SSO
// sessions and the token families it holds.
type SubjectStore interface {
	DeleteSubjectSessions(ctx context.Context, domain, subject string) ([]string, error)
	SubjectFamilies(ctx context.Context, domain, subject string, now time.Time) ([]store.Family, error)
}

// Ended counts what EndSubject ended.
type Ended struct {
	// Families is how many token families were revoked.
	Families int
	// Sessions is how many SSO sessions were deleted.
	Sessions int
}

// EndSubject ends what a subject holds in a domain (its store name: "" for
// the unnamed domain): its SSO sessions are deleted, so no new grant starts
// from them, and every token family it holds is revoked through rv, so its
// refresh tokens stop working and every gate refuses its access tokens and
// the gate sessions built on them. It is what deleting or disabling a user
// does, and what Caddy's admin endpoint does to revoke a user's sessions.
// On an error, what was ended before it is counted.
func EndSubject(ctx context.Context, st SubjectStore, rv Revoker, now time.Time, domain, sub string) (Ended, error) {
	var e Ended
	sessions, err := st.DeleteSubjectSessions(ctx, domain, sub)
	if err != nil {
		return e, err
	}
	e.Sessions = len(sessions)
	fams, err := st.SubjectFamilies(ctx, domain, sub, now)
	if err != nil {
		return e, err
	}
	for _, f := range fams {
		if err := rv.RevokeFamily(ctx, domain, f.ID, revocationUntil(f, now)); err != nil {
			return e, err
		}
		e.Families++
	}
	return e, nil
}

// endSubject ends what a subject holds in domain (its store name),
// counting it in e.
func (c *call) endSubject(domain, sub string, e *ended) *Problem {
	n, err := EndSubject(c.ctx, c.a.st, c.a.revoker, c.a.now(), domain, sub)
	e.families += n.Families
	e.sessions += n.Sessions
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// endClient revokes the token families issued to a client of domain.
func (c *call) endClient(domain, clientID string, e *ended) *Problem {
	now := c.a.now()
	fams, err := c.a.st.ClientFamilies(c.ctx, domain, clientID, now)
	if err != nil {
		return unavailable(err)
	}
	return c.revokeFamilies(domain, fams, now, e)
}

// endAll ends what the subjects and clients of domain hold.
func (c *call) endAll(domain string, subjects, clients []string, e *ended) *Problem {
	for _, s := range subjects {
		if p := c.endSubject(domain, s, e); p != nil {
			return p
		}
	}
	for _, id := range clients {
		if p := c.endClient(domain, id, e); p != nil {
			return p
		}
	}
	return nil
}
