package authn

import (
	"bytes"
	"html/template"
	"io"
)

// Page is the login page: for whom, what the last method said, the section
// of every method shown, and a cancel button.
type Page struct {
	// Client is the application the user signs in to (shown by name).
	Client string
	// Message is shown as an alert when not empty: a method's words.
	Message string
	// Sections are the methods' sections, in order.
	Sections []template.HTML
	// CancelAction is where the cancel button posts Hidden
	// (<issuer>/login, with cancel=1).
	CancelAction string
	// Hidden are the sealed transaction and the CSRF token (see View).
	Hidden template.HTML
}

var pageTemplate = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in</title>
<style>body{font-family:system-ui,sans-serif;max-width:22rem;margin:4rem auto;padding:0 1rem;color:#222}
label{display:block;margin:.8rem 0 .2rem}input[type=text],input[type=password]{width:100%;padding:.5rem;box-sizing:border-box}
button{margin-top:1rem;padding:.5rem 1rem}.err{color:#a00}section+section{border-top:1px solid #ddd;margin-top:1.5rem;padding-top:.5rem}</style>
</head><body>
<h1>Sign in</h1>
<p>to continue to <strong>{{.Client}}</strong></p>
{{if .Message}}<p class="err" role="alert">{{.Message}}</p>{{end}}
{{range .Sections}}<section>
{{.}}
</section>
{{end}}<form method="post" action="{{.CancelAction}}">
{{.Hidden}}
<button type="submit" name="cancel" value="1" formnovalidate>Cancel</button>
</form>
</body></html>
`))

// Write renders the page.
func (p *Page) Write(w io.Writer) error { return pageTemplate.Execute(w, p) }

var hiddenTemplate = template.Must(template.New("hidden").Parse(
	`<input type="hidden" name="req" value="{{.Req}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">`))

// HiddenFields renders the hidden inputs of the login page's forms: the
// sealed transaction and the CSRF token, escaped.
func HiddenFields(sealed, csrf string) template.HTML {
	var b bytes.Buffer
	_ = hiddenTemplate.Execute(&b, struct{ Req, CSRF string }{sealed, csrf})
	return template.HTML(b.String()) // escaped by html/template above
}
