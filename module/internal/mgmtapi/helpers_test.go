package mgmtapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/gatehouse-auth/gatehouse/module/internal/store"
	"github.com/gatehouse-auth/gatehouse/module/internal/store/sqlite"
)

// fixture is an API over a fresh SQLite store, with a global read-write
// key.
type fixture struct {
	t       testing.TB
	api     *API
	st      *sqlite.Store
	key     string // global, read-write
	keyRec  store.APIKey
	now     time.Time
	changed atomic.Int32
	audit   *observer.ObservedLogs
	revoked []string // families revoked through the Revoker
}

type fixtureOpt func(*Options)

func withConfig(c *Config) fixtureOpt { return func(o *Options) { o.Config = c } }

func newFixture(t testing.TB, opts ...fixtureOpt) *fixture {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{t: t, st: st, now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	core, logs := observer.New(zap.InfoLevel)
	f.audit = logs
	o := Options{
		Store:   st,
		Audit:   zap.New(core),
		Now:     func() time.Time { return f.now },
		Changed: func() { f.changed.Add(1) },
		Revoker: RevokerFunc(func(ctx context.Context, domain, id string, until time.Time) error {
			f.revoked = append(f.revoked, id)
			return st.Revoke(ctx, id, until)
		}),
	}
	for _, fn := range opts {
		fn(&o)
	}
	f.api, err = New(o)
	if err != nil {
		t.Fatal(err)
	}
	f.key, f.keyRec = f.newKey(KeySpec{Name: "test", CreatedBy: "cli"})
	return f
}

// newKey stores a key made to spec.
func (f *fixture) newKey(spec KeySpec) (string, store.APIKey) {
	f.t.Helper()
	key, rec, err := CreateKey(context.Background(), f.st, spec, f.now)
	if err != nil {
		f.t.Fatal(err)
	}
	return key, rec
}

// response is an answer, read.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("answer %d is not JSON: %v\n%s", r.status, err, r.body)
	}
}

// problem decodes a problem answer and checks its status, type and
// media type.
func (r response) problem(t testing.TB, status int, typ string) Problem {
	t.Helper()
	if r.status != status || r.header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("want %d %s, got %d %s\n%s", status, typ, r.status, r.header.Get("Content-Type"), r.body)
	}
	var p Problem
	r.json(t, &p)
	if p.Type != typ || p.Status != status || p.Title == "" {
		t.Fatalf("want problem %s (%d), got %+v", typ, status, p)
	}
	return p
}

// req is a request to send.
type req struct {
	method, path string
	body         any // string: sent as is; otherwise JSON
	ctype        string
	key          string // "": the fixture's key; "-": none
	header       map[string]string
}

func (f *fixture) do(r req) response {
	f.t.Helper()
	var body io.Reader
	ctype := r.ctype
	switch b := r.body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			f.t.Fatal(err)
		}
		body = bytes.NewReader(raw)
		if ctype == "" {
			ctype = "application/json"
		}
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	if ctype != "" {
		hr.Header.Set("Content-Type", ctype)
	}
	switch r.key {
	case "":
		hr.Header.Set("X-Api-Key", f.key)
	case "-":
	default:
		hr.Header.Set("X-Api-Key", r.key)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	f.api.ServeHTTP(w, hr)
	res := response{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
	// Every answer matches the OpenAPI document.
	if err := checkResponse(f.t, hr, res.status, res.header, res.body); err != nil {
		f.t.Fatalf("%s %s: the answer does not match the OpenAPI document: %v\n%d %s", r.method, r.path, err, res.status, res.body)
	}
	return res
}

func (f *fixture) get(path string) response { return f.do(req{method: "GET", path: path}) }

// must checks an answer's status.
func (r response) must(t testing.TB, status int) response {
	t.Helper()
	if r.status != status {
		t.Fatalf("want %d, got %d\n%s", status, r.status, r.body)
	}
	return r
}

// createDomain makes a domain through the API.
func (f *fixture) createDomain(name string) Domain {
	f.t.Helper()
	var d Domain
	f.do(req{method: "POST", path: "/v1/domain", body: map[string]any{"name": name, "issuer": "https://auth.example.com/" + name}}).must(f.t, 201).json(f.t, &d)
	return d
}

// createUser makes a user through the API.
func (f *fixture) createUser(domain string, body map[string]any) User {
	f.t.Helper()
	var u User
	f.do(req{method: "POST", path: "/v1/domain/" + domain + "/user", body: body}).must(f.t, 201).json(f.t, &u)
	return u
}

// directoryVersion reads the store's directory version, to show that a
// refused write wrote nothing.
func (f *fixture) directoryVersion() uint64 {
	f.t.Helper()
	v, err := f.st.DirectoryVersion(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return v
}

func zapString(k, v string) zap.Field { return zap.String(k, v) }
