// Package session owns the gate's browser session cookies: deriving cookie
// keys from the shared secrets (Keys), sealing a value into one or more
// encrypted and authenticated cookies and opening it again (Sealer), and the
// session payload the gate keeps in them (Session) with the gates it is valid
// at (Audience: keys bound with Keys.Bind, cookie names tagged with
// Audience.Tag). SealText and OpenText seal the same way into a string that
// travels in a form field or a URL instead of a cookie (the issuer's sign-in
// transactions and logout hints, each under a purpose of its own).
//
// Cookies are sealed with gorilla/securecookie (AES-256-CTR + HMAC-SHA256 over
// name, timestamp and ciphertext). The payload is JSON: it round-trips the
// map[string]any of claims without gob type registration, and the expiry
// checked on Open lives inside the sealed payload, so it is checked against an
// injectable clock and cannot be extended by the client.
//
// The package does not know about Caddy, OIDC or the store: the caller hands it
// the secrets (from the store, so every instance and every reload accepts the
// same cookies) and decides what to put in the cookie.
package session
