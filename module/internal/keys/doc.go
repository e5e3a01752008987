// Package keys owns a domain's token signing keys: it generates the first key
// on first start, persists keys through the store, signs JWTs with the active
// key, publishes the public keys as a JWKS and rotates keys on schedule with
// an overlap, so every token stays verifiable until it expires.
//
// Rotation is safe with several instances sharing one database: the decision
// to add a key is taken by store.RotateSigningKeys, under the store's lock,
// after re-reading the keys.
//
// A new key is published before it signs: the successor of the signing key
// is stored PublishAhead (a quarter of the rotation period, at most an hour)
// before its predecessor stops, with that instant as its CreatedAt, and every
// instance reads the store at the moment the lead begins (Maintain), so each
// serves it in its JWKS and accepts it at its gates before any instance signs
// with it. Only a key that replaces one that cannot sign — the domain's
// first, or one after every key has stopped, or a sealed one replacing a
// plaintext one — signs at once; a gate that meets a kid it does not know
// re-reads the store, at most once per UnknownKIDCooldown.
package keys
