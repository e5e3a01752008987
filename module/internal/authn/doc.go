// Package authn is the issuer's sign-in seam: the ways a person proves who
// they are at the login page, kept out of the protocol code.
//
// A Method owns its section of the login page (Render) and its routes under
// <issuer>/login/<name>/... (Serve). It may take several steps: between
// them the sign-in travels as a Transaction — the pending authorization
// request (opaque to methods), the method running, its stage, the user
// identified and the factors (amr) done so far, and the method's small
// state — sealed by the issuer (encrypted, authenticated, expiring) into the
// page's "req" value, so the issuer keeps nothing per unfinished sign-in.
// Every method ends the same way: Host.Complete with an Authentication
// (subject, amr, acr, optionally the external identity it came from), or
// Host.Continue to show the page again at its next step or with what went
// wrong, in its own words.
//
// The Host is what the issuer offers a method: reading its forms (the
// transaction, and the CSRF token bound to the browser's CSRF cookie and
// the transaction), sealing and opening transactions for methods that carry
// them elsewhere (a federated callback), the users, the sign-in throttle,
// audit entries and metrics. Page is the login page itself: the sections of
// every method the client is offered, one message, and a cancel button.
//
// Password is the built-in method: a username or e-mail and a password (amr
// "pwd"). Other methods are Caddy guest modules (namespace
// gatehouse.login_methods) that provide a Method for their domain.
//
// The package knows nothing of Caddy, OAuth or the store.
package authn
