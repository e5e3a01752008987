package seal

import "time"

// Session is the payload the tests seal: shaped like the gate's session
// (rp.Session), with tokens that make it large and a claims map that must
// round-trip.
type Session struct {
	Subject       string         `json:"sub"`
	Issuer        string         `json:"iss,omitempty"`
	Claims        map[string]any `json:"cl,omitempty"`
	AccessToken   string         `json:"at,omitempty"`
	RefreshToken  string         `json:"rt,omitempty"`
	IDToken       string         `json:"it,omitempty"`
	Expiry        time.Time      `json:"exp,omitzero"`
	SessionExpiry time.Time      `json:"sx,omitzero"`
}
