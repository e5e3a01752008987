package mgmtapi

import (
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

// endSubject deletes a subject's SSO sessions in domain (its store name)
// and revokes the token families it holds.
func (c *call) endSubject(domain, sub string, e *ended) *Problem {
	sessions, err := c.a.st.DeleteSubjectSessions(c.ctx, domain, sub)
	if err != nil {
		return unavailable(err)
	}
	e.sessions += len(sessions)
	now := c.a.now()
	fams, err := c.a.st.SubjectFamilies(c.ctx, domain, sub, now)
	if err != nil {
		return unavailable(err)
	}
	return c.revokeFamilies(domain, fams, now, e)
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
