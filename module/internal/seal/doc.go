// Package seal is Gatehouse's one way of sealing a value for the browser:
// deriving keys from the shared secrets (Keys, bound to an audience with
// Keys.Bind; MACs with Keys.MAC), sealing a value into one or more encrypted
// and authenticated cookies and opening it again (Sealer; OpenCached with a
// Cache of opened values for the gate's session cookies), and SealText /
// OpenText, which seal the same way into a string that travels in a form
// field or a URL instead of a cookie (the issuer's sign-in transactions and
// logout hints). Every kind of sealed value has a purpose of its own: keys
// are derived per purpose, so one never opens as another.
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
package seal
