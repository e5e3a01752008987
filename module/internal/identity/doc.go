// Package identity holds the static identity model of a Gatehouse domain —
// users and clients as configured — and the checks that keep them sound
// (redirect-URI rules, password verification). It imports nothing of Caddy.
package identity
