// Package identity holds the identity model of a Gatehouse domain — its
// settings, users and clients — and the checks that keep them sound
// (redirect-URI rules, password verification, client-secret hashing). A
// Domain compiled from configuration also indexes its users and clients;
// the issuer and the gate reach identities through the directory package,
// never through a Domain. It imports nothing of Caddy.
package identity
