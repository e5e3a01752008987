// Package keys owns a domain's token signing keys: it generates the first key
// on first start, persists keys through the store, signs JWTs with the active
// key, publishes the public keys as a JWKS and rotates keys on schedule with
// an overlap, so every token stays verifiable until it expires.
//
// Rotation is safe with several instances sharing one database: the decision
// to add a key is taken by store.RotateSigningKeys, under the store's lock,
// after re-reading the keys.
package keys
