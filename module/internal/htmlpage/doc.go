// Package htmlpage owns the response headers of every HTML page Gatehouse
// renders — the issuer's sign-in and error pages, the gate's access-denied,
// sign-in failure, logout and signed-out pages — so they cannot drift apart:
// not stored, never framed, not sniffed, no referrer, and a
// Content-Security-Policy that allows inline styles and forms to the page's
// own origin only.
package htmlpage
