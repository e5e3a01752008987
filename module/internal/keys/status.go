package keys

import (
	"slices"
	"time"
)

// Status is what a domain's keys are at one instant, as this manager last
// read them from the store.
type Status struct {
	// Signing is the kid of the key that signs now; "" before Load.
	Signing string
	// SigningUntil is when that key stops signing at the latest (a
	// successor may take over earlier).
	SigningUntil time.Time
	// Next is the kid of a published key that starts signing after Signing,
	// at NextFrom; "" when none is published yet.
	Next     string
	NextFrom time.Time
	// Published lists the kids of every key in the JWKS, sorted.
	Published []string
}

// Status reports the keys as this manager last read them.
func (m *Manager) Status() Status {
	s := m.current()
	if s == nil {
		return Status{}
	}
	now := m.cfg.Now()
	signer := s.signer(now)
	out := Status{Signing: signer.rec.KID, SigningUntil: signer.rec.NotAfter}
	if s.next != nil && s.next != signer {
		out.Next, out.NextFrom = s.next.rec.KID, s.next.rec.CreatedAt
	}
	for kid := range s.byKID {
		out.Published = append(out.Published, kid)
	}
	slices.Sort(out.Published)
	return out
}
