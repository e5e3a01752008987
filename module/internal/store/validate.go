package store

import (
	"errors"
	"time"
)

// errNoExpiry and errNoID are what Validate reports; backends refuse such
// records before touching the database.
var (
	errNoID     = errors.New("store: record has no ID")
	errNoExpiry = errors.New("store: record has no expiry (ExpiresAt is zero)")
)

func check(id string, expiresAt time.Time) error {
	if id == "" {
		return errNoID
	}
	if expiresAt.IsZero() {
		return errNoExpiry
	}
	return nil
}

// Validate reports whether k can be stored: it needs a KID and an ExpiresAt.
func (k SigningKey) Validate() error { return check(k.KID, k.ExpiresAt) }

// Validate reports whether c can be stored: it needs an ID and an ExpiresAt.
func (c AuthCode) Validate() error { return check(c.ID, c.ExpiresAt) }

// Validate reports whether t can be stored: it needs an ID, a FamilyID and
// an ExpiresAt.
func (t RefreshToken) Validate() error {
	if t.FamilyID == "" {
		return errors.New("store: refresh token has no FamilyID")
	}
	return check(t.ID, t.ExpiresAt)
}

// Validate reports whether s can be stored: it needs an ID and an ExpiresAt.
func (s Session) Validate() error { return check(s.ID, s.ExpiresAt) }

// Validate reports whether g can be stored: it needs a SessionID, a
// FamilyID and an ExpiresAt.
func (g SessionGrant) Validate() error {
	if g.SessionID == "" {
		return errors.New("store: session grant has no SessionID")
	}
	return check(g.FamilyID, g.ExpiresAt)
}
