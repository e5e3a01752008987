package rp

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/seal"
)

// stubProvider refuses every exchange; it lets FuzzCallback run without a
// network.
type stubProvider struct{}

var errStub = errors.New("stub: no exchange")

func (stubProvider) AuthCodeURL(state, nonce, challenge, redirectURI, prompt string) string {
	return "https://op.example/authorize?" + url.Values{"state": {state}}.Encode()
}
func (stubProvider) Exchange(context.Context, string, string, string) (*Tokens, error) {
	return nil, errStub
}
func (stubProvider) Refresh(context.Context, string) (*Tokens, error) { return nil, errStub }
func (stubProvider) EndSessionURL(string, string, string) string      { return "" }

// FuzzCallback feeds arbitrary callback query strings, with a genuine pending
// login in the cookie, to Callback: it must not panic and must never succeed.
func FuzzCallback(f *testing.F) {
	keys, _ := seal.NewKeys([][]byte{bytes.Repeat([]byte{3}, seal.SecretSize)})
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	flow, err := NewFlow(FlowConfig{Provider: stubProvider{}, Keys: keys, RedirectURI: callbackURL, Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	rec := httptest.NewRecorder()
	if err := flow.Start(rec, httptest.NewRequest(http.MethodGet, "/", nil), "/x"); err != nil {
		f.Fatal(err)
	}
	cookies := rec.Result().Cookies()
	loc, _ := url.Parse(rec.Header().Get("Location"))
	state := loc.Query().Get("state")

	f.Add("code=abc&state=" + state)
	f.Add("error=access_denied&state=" + state)
	f.Add("state=" + state + "&state=" + state + "&code=a")
	f.Add("iss=x&code=a&state=" + state)
	f.Add("%zz;;&&==")
	f.Fuzz(func(t *testing.T, rawQuery string) {
		r := httptest.NewRequest(http.MethodGet, "/cb", nil)
		r.URL.RawQuery = rawQuery
		for _, c := range cookies {
			r.AddCookie(c)
		}
		tok, _, err := flow.Callback(httptest.NewRecorder(), r)
		if err == nil || tok != nil {
			t.Fatalf("Callback succeeded for %q", rawQuery)
		}
	})
}
