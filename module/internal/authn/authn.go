package authn

import (
	"context"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
)

// Method is one way of signing in at the issuer.
type Method interface {
	// Name is the method's path segment under <issuer>/login/ and the
	// value of the login form's "method" field: lower-case letters,
	// digits, '-' and '_'. It must stay stable (forms and callbacks name it).
	Name() string
	// Offered reports whether the login page offers the method to client.
	Offered(client *identity.Client) bool
	// Render returns the method's section of the login page: usually a
	// form that posts v.Hidden to v.Action or below it. With v.Tx.Method
	// set to this method it renders its current stage.
	Render(v *View) (template.HTML, error)
	// Serve answers the requests for <issuer>/login/<name><path> (path is
	// "" or starts with '/'), and POSTs to <issuer>/login whose "method"
	// field names it (path ""). h is the issuer, for this method.
	Serve(h Host, w http.ResponseWriter, r *http.Request, path string)
}

// Aliased is implemented by a method that also answers to other values of
// the "method" field of a POST to <issuer>/login (the password method
// answers to "pwd", which login pages posted before methods had routes).
type Aliased interface {
	Aliases() []string
}

// Transaction is one sign-in in progress. The issuer seals it into the
// login page's "req" value between steps; a method changes the fields it
// owns (Method, Stage, Subject, AMR, State, a shorter Expires) and hands it
// back through Host.Continue or Host.Seal. A transaction whose Method is
// set is accepted by that method only.
type Transaction struct {
	// ID identifies the sign-in (it is the pending authorization request's
	// ID); the CSRF token of its forms is bound to it. It never changes.
	ID string `json:"i"`
	// Request is the pending authorization request, the issuer's: opaque
	// to methods.
	Request json.RawMessage `json:"r"`
	// ClientID is the client the user signs in to.
	ClientID string `json:"c"`
	// LoginHint is the client's login_hint, to prefill a form ("" if none).
	LoginHint string `json:"h,omitempty"`
	// Method is the method that is running: "" while the page lists every
	// method offered, a method's Name once it took over (its next step).
	Method string `json:"m,omitempty"`
	// Stage is the running method's step; method-defined, "" at the start.
	Stage string `json:"g,omitempty"`
	// Subject is the user identified so far (after a first factor). Host.
	// Complete refuses to finish as anyone else.
	Subject string `json:"u,omitempty"`
	// AMR are the factors done so far (RFC 8176 values such as "pwd",
	// "otp", "hwk"); Host.Complete adds the Authentication's to them.
	AMR []string `json:"a,omitempty"`
	// State is the running method's small state between steps. It is
	// sealed (encrypted and authenticated), but travels in every form of
	// the page: keep it small, and never put a secret the user may not see
	// in it (a one-time code's hash, not the code).
	State map[string]string `json:"s,omitempty"`
	// Expires is when the transaction stops being accepted. A method may
	// shorten it (a code valid for minutes); the issuer never seals it for
	// longer than its login timeout from now.
	Expires time.Time `json:"e"`
}

// Authentication is how every sign-in ends: who signed in, and how.
type Authentication struct {
	// Subject is the local user's sub. It is empty when External is set and
	// the external identity is not linked to a local user yet (the issuer
	// then refuses the sign-in: linking is not supported yet).
	Subject string
	// AMR are the factors this method proved (RFC 8176: pwd, otp, hwk,
	// fed, email, ...); the transaction's earlier factors are kept.
	AMR []string
	// ACR is the authentication context class reached, if the method
	// knows one.
	ACR string
	// External is the identity at another provider the user signed in
	// with (federated sign-in), with the provider's raw claims.
	External *External
}

// External is an identity at an external provider.
type External struct {
	// Provider names the provider (a connector's name).
	Provider string
	// Subject is the user's stable identifier at the provider.
	Subject string
	// Email is the address the provider gave, and whether it verified it.
	Email         string
	EmailVerified bool
	// Claims are the provider's claims as it sent them.
	Claims map[string]any
}

// Host is what the issuer offers a method. Each method gets its own: URL,
// Form and the audit entries know which method they serve.
type Host interface {
	// Form reads a form the login page posted to the method: a form body
	// of bounded size with no repeated field, the sealed transaction in
	// "req" (expired or tampered: the "Sign-in expired" page), the method
	// offered to the transaction's client and no other method's
	// transaction, and a "csrf" token bound to this browser's CSRF cookie
	// and the transaction. When anything is wrong it has answered with an
	// error page (and an audit entry for a failed CSRF check) and returns
	// nil.
	Form(w http.ResponseWriter, r *http.Request) (*Transaction, url.Values)
	// Seal seals tx for a method that carries it outside the login page
	// (a callback's state); Open opens it again, failing when it is
	// expired, tampered with or another method's.
	Seal(tx *Transaction) (string, error)
	Open(sealed string) (*Transaction, error)
	// CSRF returns a token binding tx to this browser (setting its CSRF
	// cookie when it has none); CheckCSRF verifies one in constant time.
	// Form does both for forms; a method whose step arrives another way (a
	// callback) carries the token and checks it itself.
	CSRF(w http.ResponseWriter, r *http.Request, tx *Transaction) string
	CheckCSRF(r *http.Request, tx *Transaction, token string) bool

	// Continue shows the login page again for tx with status: only this
	// method's section when tx.Method is set (its next step), otherwise
	// every method offered. msg, when not empty, is shown as an alert: the
	// method's words (what went wrong, or what to do next).
	Continue(w http.ResponseWriter, r *http.Request, tx *Transaction, status int, msg string)
	// Complete ends the sign-in: the user a.Subject (who must be
	// tx.Subject when that is set, exist and be active) gets an SSO session
	// with the amr of tx and a, and the authorization request is answered.
	Complete(w http.ResponseWriter, r *http.Request, tx *Transaction, a Authentication)
	// Cancel ends the sign-in without one: the client gets access_denied.
	Cancel(w http.ResponseWriter, r *http.Request, tx *Transaction)
	// Fail shows an error page (for a request that cannot go on, e.g. a
	// callback whose transaction cannot be opened).
	Fail(w http.ResponseWriter, status int, title, message string)

	// URL is the method's URL with path appended: <issuer>/login/<name><path>.
	URL(path string) string
	// Now is the issuer's clock.
	Now() time.Time
	// Users finds the domain's accounts.
	Users() Users
	// Throttle slows down guessing.
	Throttle() Throttle
	// Audit writes one sign_in audit entry for tx (outcome "success",
	// "failure" or "denied"; reason says why; sub when known). Never pass
	// secrets: codes, passwords, tokens.
	Audit(tx *Transaction, outcome, reason, sub string, fields ...zap.Field)
	// CountSignIn counts a sign-in outcome in the issuer's metrics
	// ("failure", "throttled"; the issuer counts successes and cancels).
	CountSignIn(outcome string)
}

// Audit outcomes and sign-in metric outcomes.
const (
	OutcomeFailed    = "failure"
	OutcomeDenied    = "denied"
	OutcomeThrottled = "throttled"
)

// Users is where methods find the domain's accounts.
type Users interface {
	// UserByLogin resolves what a user typed: a username or an e-mail
	// address, case-insensitively. It returns nil and no error when no
	// account has it; an error when it could not look.
	UserByLogin(ctx context.Context, login string) (*identity.User, error)
	// SpendDummyHash costs about one verification of the domain's password
	// hashes and always fails: spent when a login names no account (or one
	// without a password), so timing does not tell which accounts exist.
	SpendDummyHash(password string)
}

// Throttle counts failed attempts per key (what an attempt guesses at, e.g.
// an account) and per client address, in this process and across the
// instances sharing the store.
type Throttle interface {
	// Blocked reports whether an attempt at key from r's address must be
	// refused before it is checked.
	Blocked(r *http.Request, key string) bool
	// Failed counts a failed attempt; Succeeded clears the count of key
	// from r's address.
	Failed(r *http.Request, key string)
	Succeeded(r *http.Request, key string)
}

// View is what a method renders its section of the login page from.
type View struct {
	// Tx is the transaction (read it only).
	Tx *Transaction
	// Action is the method's URL, <issuer>/login/<name>.
	Action string
	// Hidden are the hidden inputs each of the method's forms must post:
	// the sealed transaction ("req") and the CSRF token ("csrf").
	Hidden template.HTML
	// Focus is set for the first section of the page, which should take
	// the keyboard focus.
	Focus bool
}
