package module

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(IssuerHandler{})
}

// IssuerHandler serves one domain's OpenID Connect issuer: discovery, JWKS,
// authorize, token, userinfo, revocation, introspection, end-session, the
// login page and a health check (/healthz), under the domain's issuer URL.
// An issuer with a path (https://example.com/auth) answers every path under
// it, with 404 for what is not an endpoint; other requests — and, for an
// issuer at the root of its host, every path that is not an endpoint — go to
// the next handler.
type IssuerHandler struct {
	// Domain names the gatehouse domain to serve. Empty: the default domain.
	Domain string `json:"domain,omitempty"`

	ds *domainState
}

// CaddyModule returns the Caddy module information.
func (IssuerHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.gatehouse_issuer",
		New: func() caddy.Module { return new(IssuerHandler) },
	}
}

// Provision finds the domain in the gatehouse app.
func (h *IssuerHandler) Provision(ctx caddy.Context) error {
	ds, err := loadDomain(ctx, "gatehouse_issuer", h.Domain)
	h.ds = ds
	return err
}

// ServeHTTP serves the issuer's endpoints and passes anything else on.
func (h *IssuerHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if !h.ds.issuer.Owns(r) {
		return next.ServeHTTP(w, r)
	}
	h.ds.issuer.ServeHTTP(w, r)
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*IssuerHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*IssuerHandler)(nil)
)
