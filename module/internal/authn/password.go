package authn

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
)

// Password signs local accounts in with a username or e-mail address and a
// password (amr "pwd"). It is offered to clients that allow local login
// (not deny_local_login). Failed attempts are throttled per account (every
// spelling of it) and per address; the page says "Incorrect username or
// password." whatever was wrong, the audit entry says what it was.
type Password struct{}

// Name is "password": the form posts to <issuer>/login/password.
func (Password) Name() string { return "password" }

// Aliases: "pwd" is the "method" value login pages posted to <issuer>/login.
func (Password) Aliases() []string { return []string{"pwd"} }

// Offered to clients that allow local login.
func (Password) Offered(c *identity.Client) bool { return c.AllowLocalLogin }

// The page's messages.
const (
	msgIncorrect   = "Incorrect username or password."
	msgThrottled   = "Too many failed sign-ins. Wait a few minutes and try again."
	msgUnavailable = "Sign-in is unavailable for a moment; try again."
)

// stateLogin keeps what the user typed, to fill the field in again.
const stateLogin = "password.login"

var passwordSection = template.Must(template.New("password").Parse(`<form method="post" action="{{.Action}}">
{{.Hidden}}
<label for="login">Username or e-mail</label>
<input type="text" id="login" name="login" value="{{.Login}}" autocomplete="username" autocapitalize="none" required{{if .Focus}} autofocus{{end}}>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>`))

// Render returns the username-and-password form.
func (Password) Render(v *View) (template.HTML, error) {
	login := v.Tx.State[stateLogin]
	if login == "" {
		login = v.Tx.LoginHint
	}
	var b bytes.Buffer
	err := passwordSection.Execute(&b, struct {
		Action, Login string
		Hidden        template.HTML
		Focus         bool
	}{v.Action, login, v.Hidden, v.Focus})
	return template.HTML(b.String()), err // escaped by html/template above
}

// Serve checks a posted username and password.
func (p Password) Serve(h Host, w http.ResponseWriter, r *http.Request, path string) {
	if path != "" {
		h.Fail(w, http.StatusNotFound, "Not found", "There is no such page.")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		h.Fail(w, http.StatusMethodNotAllowed, "Method not allowed", "Use POST.")
		return
	}
	tx, form := h.Form(w, r)
	if tx == nil {
		return
	}
	login, password := form.Get("login"), form.Get("password")
	again := func(status int, msg string) {
		tx.State = map[string]string{stateLogin: login}
		h.Continue(w, r, tx, status, msg)
	}
	users := h.Users()
	user, err := users.UserByLogin(r.Context(), login)
	if err != nil {
		again(http.StatusServiceUnavailable, msgUnavailable)
		return
	}
	account := accountKey(user, login)
	if h.Throttle().Blocked(r, account) {
		// Refused before any password hash is spent.
		h.Audit(tx, OutcomeDenied, "too many failed sign-ins", "", zap.String("method", "pwd"))
		h.CountSignIn(OutcomeThrottled)
		again(http.StatusTooManyRequests, msgThrottled)
		return
	}
	if err := checkPassword(users, user, login, password); err != nil {
		h.Throttle().Failed(r, account)
		sub := ""
		if user != nil {
			sub = user.Subject
		}
		h.Audit(tx, OutcomeFailed, err.Error(), sub, zap.String("method", "pwd"))
		h.CountSignIn(OutcomeFailed)
		again(http.StatusUnauthorized, msgIncorrect)
		return
	}
	h.Throttle().Succeeded(r, account)
	h.Complete(w, r, tx, Authentication{Subject: user.Subject, AMR: []string{"pwd"}})
}

// accountKey names what a sign-in attempt guesses at: the account the login
// resolves to (user), so that every spelling of it (username or e-mail, any
// case) shares one count, or, for a login that names no account, the login
// trimmed and lower-cased. The prefixes keep the two kinds apart.
func accountKey(user *identity.User, login string) string {
	if user != nil {
		return "a\x00" + user.Subject
	}
	return "l\x00" + strings.ToLower(strings.TrimSpace(login))
}

// checkPassword checks password for user (nil: login names no account). It
// always spends one password-hash verification when the input is
// plausible, whether or not the account exists, so timing does not reveal
// accounts; the error says what was wrong (for the audit log only).
func checkPassword(users Users, user *identity.User, login, password string) error {
	if login == "" || password == "" || len(login) > 256 || len(password) > identity.MaxPasswordLength {
		// Nothing about accounts depends on this answer: no hash is spent.
		return fmt.Errorf("login or password missing or too long")
	}
	if user == nil {
		users.SpendDummyHash(password)
		return identity.ErrUnknownUser
	}
	if user.PasswordHash == "" {
		users.SpendDummyHash(password)
		return identity.ErrNoPassword
	}
	ok, err := identity.VerifyPassword(user.PasswordHash, password)
	if err != nil {
		return fmt.Errorf("password hash of %q: %w", user.Subject, err)
	}
	if !ok {
		return identity.ErrWrongPassword
	}
	if !user.Active {
		return identity.ErrInactive
	}
	return nil
}
