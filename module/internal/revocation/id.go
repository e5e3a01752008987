package revocation

import "strings"

// ID names what a revocation revokes: a token family (its family ID), one
// access token of a family (its jti, JTI), or a gate session (GateSession).
// The store records it as a string; a family ID never contains '.' or ':'.
type ID string

// gateSessionPrefix marks a gate session's ID.
const gateSessionPrefix = "gate-session:"

// JTI is the jti of an access token of family: "<family>.<random>".
// Revoking the family revokes every jti made this way.
func JTI(family, random string) ID { return ID(family + "." + random) }

// GateSession is the ID of a gate's browser session, ended by a logout.
func GateSession(session string) ID { return ID(gateSessionPrefix + session) }

// IsGateSession reports whether id is a gate session's.
func (id ID) IsGateSession() bool { return strings.HasPrefix(string(id), gateSessionPrefix) }

// IsJTI reports whether id is an access token's jti ("<family>.<random>").
func (id ID) IsJTI() bool {
	return !id.IsGateSession() && strings.Contains(string(id), ".")
}

// Family is the family a jti belongs to, or "" when id is not a jti.
func (id ID) Family() ID {
	if id.IsGateSession() {
		return ""
	}
	f, _, ok := strings.Cut(string(id), ".")
	if !ok {
		return ""
	}
	return ID(f)
}
