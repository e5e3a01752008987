// Command tokens mints the RS256 access tokens the gate benchmark sends.
//
//	tokens -dir D -init          # key pair, jwks.json, repeated.txt, mixed.txt
//	tokens -dir D -unique N [-budget 150s]  # N distinct valid tokens → unique.txt
//
// Every file holds one token per line. The public key is written as a JWK Set
// (kid "bench-1") so that the gate's `public_key` reads it with a kid, and
// tokens signed by another key under another kid are refused before any
// signature check, as they would be by an issuer's JWKS.
//
// mixed.txt repeats blocks of 100 requests, shuffled with a fixed seed:
// 80 valid (drawn in turn from a pool of -valid-pool tokens, so they are
// verified once and then served from the gate's cache, like clients that
// reuse their token), 10 expired (correctly signed; each a distinct token),
// 5 with a bad signature, 3 with an unknown kid and 2 garbage strings.
package main
