package module

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/gatehouse-auth/gatehouse/module/internal/mgmtapi"
	"github.com/gatehouse-auth/gatehouse/module/internal/revocation"
)

func init() {
	caddy.RegisterModule(APIHandler{})
}

// APIHandler serves the management API (domains, users, clients, policies
// and API keys, at run time) under /v1/ of the site it is in; requests for
// other paths go to the next handler. Put it on a listener only operators
// reach (for example `:9443 { bind 127.0.0.1; gatehouse_api }`): every
// request except GET /v1/openapi.json needs an API key (make the first with
// `caddy gatehouse apikey create`). The issuer's public sites do not grow.
type APIHandler struct {
	app *App
	api *mgmtapi.API // built when the app starts
}

// CaddyModule returns the Caddy module information.
func (APIHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.gatehouse_api",
		New: func() caddy.Module { return new(APIHandler) },
	}
}

// Provision reads what the configuration defines; the API is built over
// the gatehouse app's store when the app starts (it opens the store).
func (h *APIHandler) Provision(ctx caddy.Context) error {
	app, err := loadApp(ctx, "gatehouse_api")
	if err != nil {
		return err
	}
	h.app = app
	cfg, err := app.apiConfig()
	if err != nil {
		return fmt.Errorf("gatehouse_api: %w", err)
	}
	logger := ctx.Logger()
	app.whenStarted(func() error {
		h.api, err = mgmtapi.New(mgmtapi.Options{
			Store:   app.store,
			Config:  cfg,
			Revoker: mgmtapi.RevokerFunc(app.revokeFamily),
			// The store's directory this process serves from, and the
			// domains it serves, follow a write through the API at once,
			// before the answer; other instances poll the store.
			Changed: func() {
				rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if err := app.stored.Refresh(rctx); err != nil {
					logger.Warn("reading the store's directory after a change; the watcher will", zap.Error(err))
					return
				}
				if err := app.registry.sync(rctx); err != nil {
					logger.Warn("serving the store's domains after a change; the watcher will", zap.Error(err))
				}
			},
			Audit:  app.audit,
			Logger: logger,
		})
		if err != nil {
			return fmt.Errorf("gatehouse_api: %w", err)
		}
		return nil
	})
	return nil
}

// ServeHTTP serves the API's paths and passes anything else on.
func (h *APIHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if err := h.app.await(r.Context()); err != nil {
		return caddyhttp.Error(http.StatusServiceUnavailable, err)
	}
	if !h.api.Owns(r) {
		return next.ServeHTTP(w, r)
	}
	h.api.ServeHTTP(w, r)
	return nil
}

// apiConfig is what the configuration defines, as the management API shows
// it (read-only there).
func (a *App) apiConfig() (*mgmtapi.Config, error) {
	var domains []mgmtapi.ConfigDomain
	for _, dc := range a.Domains {
		dom, err := dc.identity()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", domainWhere(dc.Name), err)
		}
		pols, err := dc.policies()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", domainWhere(dc.Name), err)
		}
		domains = append(domains, mgmtapi.ConfigDomain{
			Name:             dc.Name,
			Issuer:           dom.Issuer,
			SigningAlgorithm: dc.SigningAlgorithm,
			SessionLifetime:  time.Duration(dc.SessionLifetime),
			KeyRotation:      time.Duration(dc.KeyRotation),
			Users:            dom.Users,
			Clients:          dom.Clients,
			Policies:         pols,
		})
	}
	return mgmtapi.NewConfig(domains...), nil
}

// revokeFamily ends a token family of a domain on every instance, as the
// issuer's own revocations do: recorded in the store (other instances
// poll it) and published at once to this process's gates of the domain,
// configured or stored.
func (a *App) revokeFamily(ctx context.Context, domain, id string, until time.Time) error {
	if err := a.store.Revoke(ctx, id, until); err != nil {
		return err
	}
	if rt := a.registry.lookup(domain); rt != nil {
		rt.revoke.Publish(revocation.ID(id))
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*APIHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*APIHandler)(nil)
)
