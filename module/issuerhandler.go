package module

import (
	"bufio"
	"errors"
	"net"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(IssuerHandler{})
}

// IssuerHandler serves OpenID Connect issuers: discovery, JWKS, authorize,
// token, userinfo, revocation, introspection, end-session, the login page
// and a health check (/healthz), under each domain's issuer URL.
//
// With a domain name it serves that one configured domain. An issuer with a
// path (https://example.com/auth) answers every path under it, with 404 for
// what is not an endpoint; other requests — and, for an issuer at the root
// of its host, every path that is not an endpoint — go to the next handler.
//
// With "*" it serves every domain, configured or stored through the
// management API, whose issuer URL matches the request: the same scheme
// (https on a TLS connection; behind a proxy in the server's
// trusted_proxies, the proxy's X-Forwarded-Proto), the same host (and
// port), and a path that is a prefix of the request's path — the longest
// one when several are, so that issuers such as https://auth.example.com/acme
// and https://auth.example.com/globex share one site. A domain created
// through the API is served at once, with its own signing keys; a deleted
// one no longer is. Requests no domain owns go to the next handler; when
// nothing after it answers either, they get 404 rather than an empty
// response.
type IssuerHandler struct {
	// Domain names the gatehouse domain to serve: a configured domain's
	// name, or "*" for every domain whose issuer URL matches the request.
	// Empty: the default domain.
	Domain string `json:"domain,omitempty"`

	app *App
}

// CaddyModule returns the Caddy module information.
func (IssuerHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.gatehouse_issuer",
		New: func() caddy.Module { return new(IssuerHandler) },
	}
}

// Provision finds the gatehouse app and checks that it configures the
// domain (domains stored through the API are served by "*").
func (h *IssuerHandler) Provision(ctx caddy.Context) error {
	app, err := loadApp(ctx, "gatehouse_issuer")
	if err != nil {
		return err
	}
	h.app = app
	if h.Domain == wildcardDomain {
		return nil
	}
	return app.configuredDomain("gatehouse_issuer", h.Domain)
}

// ServeHTTP serves the issuers' endpoints and passes anything else on.
func (h *IssuerHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if err := h.app.await(r.Context()); err != nil {
		return caddyhttp.Error(http.StatusServiceUnavailable, err)
	}
	if h.Domain != wildcardDomain {
		rt := h.app.registry.lookup(h.Domain)
		if rt == nil {
			return caddyhttp.Error(http.StatusServiceUnavailable, errors.New("gatehouse_issuer: the domain is not served (the configuration is being unloaded)"))
		}
		if !rt.issuer.Owns(r) {
			return next.ServeHTTP(w, r)
		}
		rt.issuer.ServeHTTP(w, r)
		return nil
	}
	if rt := h.app.registry.match(r); rt != nil {
		rt.issuer.ServeHTTP(w, r)
		return nil
	}
	// No domain owns the request (a domain that was deleted, or never
	// existed): the next handler may; if nothing answers, 404 rather than
	// Caddy's empty 200.
	ww := &writeWatcher{ResponseWriter: w}
	if err := next.ServeHTTP(ww, r); err != nil {
		return err
	}
	if unhandled, _ := caddyhttp.GetVar(r.Context(), "unhandled").(bool); unhandled && !ww.wrote {
		http.NotFound(w, r)
	}
	return nil
}

// writeWatcher notes whether anything was written to the response.
type writeWatcher struct {
	http.ResponseWriter
	wrote bool
}

func (w *writeWatcher) WriteHeader(status int) {
	w.wrote = true
	w.ResponseWriter.WriteHeader(status)
}

func (w *writeWatcher) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *writeWatcher) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack hands the connection over (a WebSocket upgrade): the response is
// the next handler's.
func (w *writeWatcher) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.wrote = true
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Interface guards
var (
	_ caddy.Provisioner           = (*IssuerHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*IssuerHandler)(nil)
)
