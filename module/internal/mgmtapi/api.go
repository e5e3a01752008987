package mgmtapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// Store is what the API reads and writes: the directory (domains, users,
// clients, policies), the API keys, and — to end what a deleted or
// disabled user or a deleted client holds — the token families of a
// subject or client, the subject's SSO sessions and revocations.
type Store interface {
	store.Directory
	store.Credentials
	SubjectFamilies(ctx context.Context, domain, subject string, now time.Time) ([]store.Family, error)
	ClientFamilies(ctx context.Context, domain, clientID string, now time.Time) ([]store.Family, error)
	DeleteSubjectSessions(ctx context.Context, domain, subject string) ([]string, error)
	Revoke(ctx context.Context, id string, expiresAt time.Time) error
}

// Revoker ends a token family of a domain (named as the store names it:
// "" for the unnamed domain) on every instance: recorded in the store until
// until (other instances poll it) and published to this process's gates at
// once.
type Revoker interface {
	RevokeFamily(ctx context.Context, domain, familyID string, until time.Time) error
}

// RevokerFunc adapts a function to Revoker.
type RevokerFunc func(ctx context.Context, domain, familyID string, until time.Time) error

// RevokeFamily calls f.
func (f RevokerFunc) RevokeFamily(ctx context.Context, domain, familyID string, until time.Time) error {
	return f(ctx, domain, familyID, until)
}

// Options configure the API.
type Options struct {
	// Store is where everything is read and written. Required.
	Store Store
	// Config is what the configuration defines (read-only through the
	// API). nil: nothing.
	Config *Config
	// Revoker ends token families. nil: they are recorded in the store
	// only (Store.Revoke), and the gates learn of them when they poll.
	Revoker Revoker
	// Changed is called after every successful write to the directory, so
	// the process can read the directory again at once (other instances
	// notice the store's directory version move). nil: nothing is called.
	Changed func()
	// Audit receives one record per management request (the logger named
	// gatehouse.audit); Logger, operational failures. nil: discarded.
	Audit, Logger *zap.Logger
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// MaxBody bounds a request body in bytes; 0: DefaultMaxBody.
	MaxBody int64
}

// API is the management API: an http.Handler for the paths under /v1/.
type API struct {
	st      Store
	cfg     *Config
	revoker Revoker
	changed func()
	audit   *zap.Logger
	log     *zap.Logger
	now     func() time.Time
	maxBody int64
	mux     *http.ServeMux
	routed  []string // "METHOD /pattern", for the OpenAPI document's test
}

// New returns the API over opts.Store.
func New(opts Options) (*API, error) {
	if opts.Store == nil {
		return nil, errors.New("mgmtapi: no store")
	}
	a := &API{st: opts.Store, cfg: opts.Config, revoker: opts.Revoker, changed: opts.Changed,
		audit: opts.Audit, log: opts.Logger, now: opts.Now, maxBody: opts.MaxBody}
	if a.cfg == nil {
		a.cfg = NewConfig()
	}
	if a.revoker == nil {
		st := opts.Store
		a.revoker = RevokerFunc(func(ctx context.Context, _, id string, until time.Time) error { return st.Revoke(ctx, id, until) })
	}
	if a.changed == nil {
		a.changed = func() {}
	}
	if a.audit == nil {
		a.audit = zap.NewNop()
	}
	if a.log == nil {
		a.log = zap.NewNop()
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.maxBody <= 0 {
		a.maxBody = DefaultMaxBody
	}
	a.routes()
	return a, nil
}

// Prefix is the path the API serves under.
const Prefix = "/v1/"

// Owns reports whether the request is for the API (its path is under /v1/).
func (a *API) Owns(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, Prefix) || r.URL.Path == "/v1"
}

// op is one operation: an audited action and its function, which writes
// the answer on success and returns a problem otherwise.
type op struct {
	action string
	fn     func(*call) *Problem
}

// call is one request being served.
type call struct {
	a   *API
	w   http.ResponseWriter
	r   *http.Request
	key store.APIKey
	ctx context.Context
	// what the audit record names: the domain (API name) and the object.
	domain, object string
	// detail is added to the audit record of a success.
	detail []zap.Field
}

// routes registers every path; each path's handler dispatches on the
// method, so that a known path with another method is a 405 problem.
func (a *API) routes() {
	a.mux = http.NewServeMux()
	add := func(pattern string, ops map[string]op) {
		allow := make([]string, 0, len(ops))
		for m := range ops {
			allow = append(allow, m)
		}
		slices.Sort(allow)
		for _, m := range allow {
			a.routed = append(a.routed, m+" "+pattern)
		}
		a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			c := &call{a: a, w: w, r: r, ctx: r.Context()}
			c.key, _ = r.Context().Value(keyContext{}).(store.APIKey)
			o, ok := ops[r.Method]
			if !ok {
				p := problem(TypeMethodNotAllowed, r.Method+" is not allowed here; use "+strings.Join(allow, ", ")).with("Allow", strings.Join(allow, ", "))
				c.finish("request", p)
				return
			}
			c.finish(o.action, o.fn(c))
		})
	}
	add("/v1/domain", map[string]op{
		"GET":  {"domain.list", (*call).listDomains},
		"POST": {"domain.create", (*call).createDomain},
	})
	add("/v1/domain/{domain}", map[string]op{
		"GET":    {"domain.read", (*call).getDomain},
		"PATCH":  {"domain.update", (*call).patchDomain},
		"DELETE": {"domain.delete", (*call).deleteDomain},
	})
	add("/v1/domain/{domain}/user", map[string]op{
		"GET":  {"user.list", (*call).listUsers},
		"POST": {"user.create", (*call).createUser},
	})
	add("/v1/domain/{domain}/user/{sub}", map[string]op{
		"GET":    {"user.read", (*call).getUser},
		"PATCH":  {"user.update", (*call).patchUser},
		"DELETE": {"user.delete", (*call).deleteUser},
	})
	add("/v1/domain/{domain}/user/{sub}/password", map[string]op{
		"PUT": {"user.password", (*call).putPassword},
	})
	a.clientRoutes(add)
	a.policyRoutes(add)
	add("/v1/apikey", map[string]op{
		"GET":  {"apikey.list", (*call).listKeys},
		"POST": {"apikey.create", (*call).createKey},
	})
	add("/v1/apikey/{id}", map[string]op{
		"DELETE": {"apikey.revoke", (*call).revokeKey},
	})
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c := &call{a: a, w: w, r: r, ctx: r.Context()}
		c.key, _ = r.Context().Value(keyContext{}).(store.APIKey)
		c.finish("request", problem(TypeNotFound, "no such path; the OpenAPI document at /v1/openapi.json lists them"))
	})
}

// routeList lists every "METHOD /pattern" the API serves.
func (a *API) routeList() []string { return slices.Clone(a.routed) }

type keyContext struct{}

// ServeHTTP serves the API: the OpenAPI document to anyone, everything
// else to the holder of a valid API key.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v1/openapi.json" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		serveOpenAPI(w, r)
		return
	}
	key, p := a.authenticate(r)
	if p != nil {
		c := &call{a: a, w: w, r: r, ctx: r.Context(), key: key}
		c.finish("authenticate", p)
		return
	}
	a.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyContext{}, key)))
}

// finish writes p (when the operation failed) and the audit record.
func (c *call) finish(action string, p *Problem) {
	if p != nil {
		if p.err != nil {
			c.a.log.Error("management API: store failure", zap.String("action", action), zap.String("path", c.r.URL.Path), zap.Error(p.err))
		}
		writeProblem(c.w, p)
	}
	outcome, level := "success", zapcore.InfoLevel
	switch {
	case p == nil:
	case p.Status == http.StatusUnauthorized || p.Status == http.StatusForbidden:
		outcome, level = "denied", zapcore.WarnLevel
	default:
		outcome, level = "failure", zapcore.WarnLevel
	}
	ce := c.a.audit.Check(level, "gatehouse management "+action+" "+outcome)
	if ce == nil {
		return
	}
	fields := []zap.Field{
		zap.String("event", "management"),
		zap.String("action", action),
		zap.String("outcome", outcome),
		zap.String("key_id", c.key.ID),
		zap.String("method", c.r.Method),
		zap.String("path", c.r.URL.Path),
		zap.String("domain", c.domain),
		zap.String("object", c.object),
	}
	if p != nil {
		fields = append(fields, zap.Int("status", p.Status), zap.String("problem", p.Type), zap.String("reason", p.Detail))
	} else {
		fields = append(fields, c.detail...)
	}
	ce.Write(fields...)
}

// writeJSON answers with v as JSON.
func (c *call) writeJSON(status int, v any) *Problem {
	h := c.w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	c.w.WriteHeader(status)
	enc := json.NewEncoder(c.w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return nil
}

// List is the answer of the listings other than users': the items.
type List[T any] struct {
	Items []T `json:"items"`
}
