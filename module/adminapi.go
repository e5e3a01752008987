package module

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/gatehouse-auth/gatehouse/module/internal/directory"
	"github.com/gatehouse-auth/gatehouse/module/internal/mgmtapi"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// AdminAPI is Gatehouse's part of Caddy's admin endpoint (module
// admin.api.gatehouse, loaded by Caddy itself wherever the admin endpoint
// runs — localhost:2019 unless the `admin` global option says otherwise):
//
//   - POST /gatehouse/domains/{domain}/keys/rotate adds a signing key to the
//     domain now, ahead of its schedule. Like a scheduled one, it is
//     published first and signs once every instance has read it (a quarter
//     of the rotation period later, at most an hour); the answer says when.
//   - POST /gatehouse/domains/{domain}/users/{sub}/revoke ends what the user
//     holds: their SSO sessions at the issuer are deleted and every token
//     family they hold is revoked — refresh tokens stop working, and the
//     gates refuse their access tokens and the gate sessions built on them
//     (this process's at once, other instances' within the app's
//     revocation_poll). It is what disabling the user through the
//     management API does, without disabling them: they may sign in again.
//
// {domain} is a domain's name ("default" for the configuration's unnamed
// domain, as in the management API); {sub} is the user's subject, escaped
// as a path segment. Answers are JSON; errors are Caddy's admin errors,
// {"error": "..."}, naming the problem. Every call goes to the audit log
// (gatehouse.audit). The routes act on the config that runs; they are as
// protected as the rest of the admin endpoint, which can replace the
// whole config.
type AdminAPI struct{}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.gatehouse",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// adminPrefix is where the routes live on the admin endpoint.
const adminPrefix = "/gatehouse/"

// Routes implements caddy.AdminRouter.
func (AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: adminPrefix, Handler: caddy.AdminHandlerFunc(serveAdmin)}}
}

// adminTimeout bounds the store work of one admin call.
const adminTimeout = 30 * time.Second

// serveAdmin routes a request under /gatehouse/ to the gatehouse app of the
// running config.
func serveAdmin(w http.ResponseWriter, r *http.Request) error {
	segs, err := adminSegments(r.URL)
	if err != nil {
		return adminError(http.StatusBadRequest, err.Error())
	}
	var action func(context.Context, *App, []string) (any, *adminFailure)
	switch {
	case len(segs) == 4 && segs[0] == "domains" && segs[2] == "keys" && segs[3] == "rotate":
		action = adminRotate
	case len(segs) == 5 && segs[0] == "domains" && segs[2] == "users" && segs[4] == "revoke":
		action = adminRevoke
	default:
		return adminError(http.StatusNotFound, fmt.Sprintf("no such Gatehouse admin route %s; the routes are POST %sdomains/{domain}/keys/rotate and POST %sdomains/{domain}/users/{sub}/revoke", r.URL.Path, adminPrefix, adminPrefix))
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return adminError(http.StatusMethodNotAllowed, fmt.Sprintf("%s is not allowed here; use POST", r.Method))
	}
	app, err := runningApp()
	if err != nil {
		return adminError(http.StatusNotFound, err.Error())
	}
	ctx, cancel := context.WithTimeout(r.Context(), adminTimeout)
	defer cancel()
	out, fail := action(ctx, app, segs)
	name := "keys.rotate"
	if len(segs) == 5 {
		name = "user.revoke"
	}
	app.auditAdmin(r, name, segs, fail, out)
	if fail != nil {
		if fail.err != nil {
			app.logger.Error("admin endpoint: "+name+" failed", zap.String("path", r.URL.Path), zap.Error(fail.err))
		}
		return adminError(fail.status, fail.message)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	return json.NewEncoder(w).Encode(out)
}

// adminSegments splits the path after /gatehouse/ into its unescaped
// segments.
func adminSegments(u *url.URL) ([]string, error) {
	rest, _ := strings.CutPrefix(u.EscapedPath(), adminPrefix)
	segs := strings.Split(rest, "/")
	for i, s := range segs {
		v, err := url.PathUnescape(s)
		if err != nil {
			return nil, fmt.Errorf("path segment %q is not validly escaped", s)
		}
		segs[i] = v
	}
	return segs, nil
}

// runningApp is the gatehouse app of the config Caddy runs now. The admin
// endpoint starts before a config's apps are provisioned, so the app is
// looked up per request, never kept.
func runningApp() (*App, error) {
	app, err := caddy.ActiveContext().AppIfConfigured("gatehouse")
	if err != nil {
		return nil, errors.New("no gatehouse app runs in the current config; add the gatehouse global option with a domain")
	}
	a, ok := app.(*App)
	if !ok || a.store == nil {
		return nil, errors.New("the gatehouse app of the current config is not provisioned")
	}
	return a, nil
}

// adminFailure is a failed admin call: its status and message (for the
// caller and the audit log) and, for a server-side failure, the cause.
type adminFailure struct {
	status  int
	message string
	err     error
}

func adminError(status int, msg string) error {
	return caddy.APIError{HTTPStatus: status, Err: errors.New(msg), Message: msg}
}

// adminDomainName maps a domain of an admin path to its name: "default" is
// the configuration's unnamed domain unless a domain is called that (the
// management API's rule).
func (a *App) adminDomainName(name string) string {
	if name == mgmtapi.DefaultDomain {
		if a.registry.lookup(name) == nil && a.registry.lookup("") != nil {
			return ""
		}
	}
	return name
}

// adminRotation is the answer of a key rotation.
type adminRotation struct {
	Domain string `json:"domain"`
	// Rotated is true when a key was added; false when the domain already
	// had a successor published (Reason says so).
	Rotated bool   `json:"rotated"`
	Reason  string `json:"reason,omitempty"`
	// SigningKID signs now; NextKID is published and signs from
	// NextSignsFrom.
	SigningKID    string    `json:"signing_kid"`
	NextKID       string    `json:"next_kid,omitempty"`
	NextSignsFrom time.Time `json:"next_signs_from,omitzero"`
	PublishedKIDs []string  `json:"published_kids"`
}

// adminRotate adds a signing key to a domain ahead of its schedule.
func adminRotate(ctx context.Context, a *App, segs []string) (any, *adminFailure) {
	name := a.adminDomainName(segs[1])
	ds := a.registry.lookup(name)
	if ds == nil {
		return nil, &adminFailure{status: http.StatusNotFound, message: fmt.Sprintf("%s is not served here: neither configured nor created through the management API", domainLabel(name))}
	}
	before := ds.keys.Status()
	if err := ds.keys.Rotate(ctx); err != nil {
		return nil, &adminFailure{status: http.StatusServiceUnavailable, message: fmt.Sprintf("rotating the signing keys of %s failed (the store did not answer); try again", domainLabel(name)), err: err}
	}
	after := ds.keys.Status()
	out := adminRotation{Domain: segs[1], SigningKID: after.Signing, NextKID: after.Next, NextSignsFrom: after.NextFrom, PublishedKIDs: after.Published}
	out.Rotated = after.Next != before.Next || after.Signing != before.Signing
	if !out.Rotated {
		out.Reason = "a successor key was already published; it starts signing at next_signs_from, and a rotation adds no second one"
	}
	return out, nil
}

// adminRevocation is the answer of revoking a user's sessions.
type adminRevocation struct {
	Domain          string `json:"domain"`
	Sub             string `json:"sub"`
	RevokedFamilies int    `json:"revoked_families"`
	EndedSessions   int    `json:"ended_sessions"`
}

// adminRevoke ends what a user holds in a domain, as disabling them through
// the management API does (mgmtapi.EndSubject, with the same revoker).
func adminRevoke(ctx context.Context, a *App, segs []string) (any, *adminFailure) {
	name, sub := a.adminDomainName(segs[1]), segs[3]
	if _, err := a.directory.Snapshot(ctx, name); err != nil {
		return nil, directoryFailure(err, fmt.Sprintf("domain %q does not exist", segs[1]))
	}
	if sub == "" {
		return nil, &adminFailure{status: http.StatusBadRequest, message: "the path names no user; put the user's sub (escaped) between users/ and /revoke"}
	}
	if _, err := a.directory.UserBySubject(ctx, name, sub); err != nil {
		return nil, directoryFailure(err, fmt.Sprintf("user %q does not exist in domain %q", sub, segs[1]))
	}
	e, err := mgmtapi.EndSubject(ctx, a.store, mgmtapi.RevokerFunc(a.revokeFamily), time.Now(), name, sub)
	if err != nil {
		return nil, &adminFailure{status: http.StatusServiceUnavailable,
			message: fmt.Sprintf("ending the sessions of user %q failed after %d families and %d sessions (the store did not answer); try again", sub, e.Families, e.Sessions), err: err}
	}
	return adminRevocation{Domain: segs[1], Sub: sub, RevokedFamilies: e.Families, EndedSessions: e.Sessions}, nil
}

// directoryFailure is a directory lookup that failed: not found, or the
// store did not answer.
func directoryFailure(err error, notFound string) *adminFailure {
	if errors.Is(err, directory.ErrNotFound) {
		return &adminFailure{status: http.StatusNotFound, message: notFound}
	}
	return &adminFailure{status: http.StatusServiceUnavailable, message: "the directory could not be read (the store did not answer); try again", err: err}
}

// auditAdmin records an admin call: who asked (the peer's address; the
// admin endpoint has no accounts), what, on what, and how it ended.
func (a *App) auditAdmin(r *http.Request, action string, segs []string, fail *adminFailure, out any) {
	outcome, level := "success", zap.InfoLevel
	if fail != nil {
		outcome, level = "failure", zap.WarnLevel
	}
	ce := a.audit.Check(level, "gatehouse admin "+action+" "+outcome)
	if ce == nil {
		return
	}
	peer, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		peer = r.RemoteAddr
	}
	fields := []zap.Field{zap.String("event", "admin"), zap.String("action", action), zap.String("outcome", outcome),
		zap.String("domain", segs[1]), zap.String("remote_ip", peer)}
	if len(segs) == 5 {
		fields = append(fields, zap.String("sub", segs[3]))
	}
	switch o := out.(type) {
	case adminRotation:
		fields = append(fields, zap.Bool("rotated", o.Rotated), zap.String("kid", o.SigningKID), zap.String("next_kid", o.NextKID))
	case adminRevocation:
		fields = append(fields, zap.Int("revoked_families", o.RevokedFamilies), zap.Int("ended_sessions", o.EndedSessions))
	}
	if fail != nil {
		fields = append(fields, zap.Int("status", fail.status), zap.String("reason", fail.message))
	}
	ce.Write(fields...)
}

// Interface guards
var _ caddy.AdminRouter = AdminAPI{}
