package authn

import (
	"html/template"
	"strings"
	"testing"

	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
)

func TestPageRendersSectionsMessageAndCancel(t *testing.T) {
	var b strings.Builder
	p := &Page{
		Client:       `<app "one">`,
		Message:      `Wrong <code>.`,
		Sections:     []template.HTML{`<form id="a"></form>`, `<form id="b"></form>`},
		CancelAction: "https://auth.example.com/login",
		Hidden:       HiddenFields(`se"aled&`, "tok"),
	}
	if err := p.Write(&b); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{
		`<title>Sign in</title>`,
		`<strong>&lt;app &#34;one&#34;&gt;</strong>`,
		`<p class="err" role="alert">Wrong &lt;code&gt;.</p>`,
		"<section>\n<form id=\"a\"></form>\n</section>\n<section>\n<form id=\"b\"></form>\n</section>",
		`<form method="post" action="https://auth.example.com/login">`,
		`<input type="hidden" name="req" value="se&#34;aled&amp;">`,
		`<input type="hidden" name="csrf" value="tok">`,
		`<button type="submit" name="cancel" value="1" formnovalidate>Cancel</button>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q:\n%s", want, page)
		}
	}
	b.Reset()
	p.Message = ""
	_ = p.Write(&b)
	if strings.Contains(b.String(), `role="alert"`) {
		t.Error("an alert without a message")
	}
}

func TestPasswordSection(t *testing.T) {
	if !(Password{}).Offered(&identity.Client{AllowLocalLogin: true}) || (Password{}).Offered(&identity.Client{}) {
		t.Fatal("the password method is offered to exactly the clients that allow local login")
	}
	render := func(tx *Transaction, focus bool) string {
		h, err := Password{}.Render(&View{Tx: tx, Action: "https://auth.example.com/login/password", Hidden: HiddenFields("s", "c"), Focus: focus})
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	s := render(&Transaction{LoginHint: "alice@example.com"}, true)
	for _, want := range []string{
		`<form method="post" action="https://auth.example.com/login/password">`,
		`name="req" value="s"`, `name="csrf" value="c"`,
		`name="login" value="alice@example.com"`, ` required autofocus>`, `name="password"`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("section lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, `name="method"`) {
		t.Error("the section posts a method field: it has a route of its own")
	}
	// What the user typed wins over the hint, escaped; only the first
	// section takes the focus.
	s = render(&Transaction{LoginHint: "hint", State: map[string]string{stateLogin: `"><script>`}}, false)
	if !strings.Contains(s, `value="&#34;&gt;&lt;script&gt;"`) || strings.Contains(s, "autofocus") {
		t.Errorf("section:\n%s", s)
	}
}

func TestAccountKeyNamesTheAccountOrTheLogin(t *testing.T) {
	u := &identity.User{Subject: "u-alice"}
	if accountKey(u, "ALICE") != accountKey(u, "alice@example.com") {
		t.Error("two spellings of one account count apart")
	}
	if accountKey(nil, " Nobody ") != "l\x00nobody" || accountKey(nil, "u-alice") == accountKey(u, "x") {
		t.Error("logins that name no account are not kept apart from accounts")
	}
}
