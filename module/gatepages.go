package module

import (
	"html/template"
	"net/http"

	"github.com/gatehouse-auth/gatehouse/module/internal/htmlpage"
)

// The gate's HTML pages share one layout: a language, a title, one h1 and
// the page's own text, in the style of the issuer's pages. Every page is
// written by writePage, which sets htmlpage's headers (not stored, never
// framed, no referrer, a CSP that loads nothing).
var pageLayout = template.Must(template.New("layout").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{template "title" .}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}code{background:#f2f2f2;padding:.1rem .3rem}button{font:inherit;padding:.4rem 1rem}form{margin:1rem 0}q{font-style:italic}</style>
</head><body><main>
{{template "body" .}}
</main></body></html>
`))

// gatePage makes a page of the layout from its title and body templates.
func gatePage(title, body string) *template.Template {
	t := template.Must(pageLayout.Clone())
	return template.Must(t.Parse(`{{define "title"}}` + title + `{{end}}{{define "body"}}` + body + `{{end}}`))
}

// switchForm is the "Sign in as someone else" button: a POST to the gate's
// logout path, which ends this browser's session (checked like any logout:
// same-site, or the CSRF token) and starts a login that asks the provider
// for credentials (prompt=login).
type switchForm struct {
	Action string // the logout path
	CSRF   string // the logout CSRF token of the session; empty without one
	Return string // where to land after signing in
}

const switchFormHTML = `<form method="post" action="{{.Action}}">{{if .CSRF}}<input type="hidden" name="csrf" value="{{.CSRF}}">{{end}}<input type="hidden" name="switch" value="1"><input type="hidden" name="return" value="{{.Return}}"><button type="submit">Sign in as someone else</button></form>`

var deniedPage = gatePage(`Access denied`, `<h1>Access denied</h1>
<p>You are signed in{{if .Account}} as <strong>{{.Account}}</strong>{{end}}, but this site requires one of these policies, and your account satisfies none of them:</p>
<ul>{{range .Policies}}<li><code>{{.}}</code></li>{{end}}</ul>
<p>Ask the site's administrator for access{{if .Switch}}, or use another account{{end}}.</p>
{{with .Switch}}`+switchFormHTML+`{{end}}`)

type deniedView struct {
	Account  string
	Policies []string
	Switch   *switchForm
}

// loginFailedPage answers a callback that did not sign the user in: the
// sign-in was cancelled or refused at the provider, failed, or could not be
// matched to a login this browser started.
var loginFailedPage = gatePage(`{{.Heading}}`, `<h1>{{.Heading}}</h1>
<p>{{.Message}}</p>
{{if .Detail}}<p>The sign-in service said: <q>{{.Detail}}</q></p>
{{end}}<p><a href="{{.Retry}}">{{.RetryText}}</a></p>
{{with .Switch}}`+switchFormHTML+`{{end}}`)

type loginFailedView struct {
	Heading   string
	Message   string
	Detail    string // the provider's error_description, untrusted text
	Retry     string // a path on this site that starts a login
	RetryText string
	Switch    *switchForm
}

var signedOutPage = gatePage(`Signed out`, `<h1>You are signed out</h1>
<p>You have signed out of this site.</p>
<p><a href="{{.SignIn}}">Sign in again</a></p>`)

var logoutPage = gatePage(`Sign out`, `<h1>Sign out?</h1>
<p>Do you want to sign out of this site?</p>
<form method="post" action="{{.Action}}"><input type="hidden" name="csrf" value="{{.Token}}">{{if .Switch}}<input type="hidden" name="switch" value="1"><input type="hidden" name="return" value="{{.Return}}">{{end}}<button type="submit">Sign out</button></form>`)

type logoutView struct {
	Action, Token string
	Switch        bool
	Return        string
}

// writePage answers with page t: htmlpage's headers (csp, when not empty,
// replaces its Content-Security-Policy), status and the rendered view.
func writePage(w http.ResponseWriter, status int, t *template.Template, view any, csp string) error {
	h := w.Header()
	htmlpage.SetHeaders(h)
	if csp != "" {
		h.Set("Content-Security-Policy", csp)
	}
	w.WriteHeader(status)
	return t.Execute(w, view)
}
