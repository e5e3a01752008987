package issuer

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-auth/gatehouse/module/internal/metrics"
	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// Metrics are the issuer's Prometheus collectors, shared by every domain
// (each series carries a domain label).
type Metrics struct {
	tokensIssued *prometheus.CounterVec   // domain, grant
	signIns      *prometheus.CounterVec   // domain, outcome
	tokenErrors  *prometheus.CounterVec   // domain, error
	storeLatency *prometheus.HistogramVec // domain, op
}

// NewMetrics creates the collectors and registers them with reg (nil: not
// registered). A collector that is already registered — Caddy re-provisions
// on every reload — is reused.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		tokensIssued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "issuer", Name: "tokens_issued_total",
			Help: "Tokens issued by the token endpoint, by grant type.",
		}, []string{"domain", "grant"}),
		signIns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "issuer", Name: "sign_ins_total",
			Help: "Sign-in attempts at the issuer, by outcome.",
		}, []string{"domain", "outcome"}),
		tokenErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "issuer", Name: "token_errors_total",
			Help: "Token endpoint error responses, by RFC 6749 error code.",
		}, []string{"domain", "error"}),
		storeLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "gatehouse", Subsystem: "issuer", Name: "store_duration_seconds",
			Help:    "Latency of store operations made by the issuer.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"domain", "op"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.tokensIssued, err = metrics.Register(reg, m.tokensIssued); err != nil {
		return nil, err
	}
	if m.signIns, err = metrics.Register(reg, m.signIns); err != nil {
		return nil, err
	}
	if m.tokenErrors, err = metrics.Register(reg, m.tokenErrors); err != nil {
		return nil, err
	}
	if m.storeLatency, err = metrics.Register(reg, m.storeLatency); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Metrics) tokenIssued(domain, grant string) {
	if m != nil {
		m.tokensIssued.WithLabelValues(domain, grant).Inc()
	}
}

func (m *Metrics) signIn(domain, outcome string) {
	if m != nil {
		m.signIns.WithLabelValues(domain, outcome).Inc()
	}
}

func (m *Metrics) tokenError(domain, code string) {
	if m != nil {
		m.tokenErrors.WithLabelValues(domain, code).Inc()
	}
}

// timedStore measures the latency of every store call the issuer makes.
type timedStore struct {
	Store
	m      *Metrics
	domain string
}

func (t timedStore) observe(op string, start time.Time) {
	if t.m != nil {
		t.m.storeLatency.WithLabelValues(t.domain, op).Observe(time.Since(start).Seconds())
	}
}

func (t timedStore) CreateAuthCode(ctx context.Context, c store.AuthCode) error {
	defer t.observe("create_auth_code", time.Now())
	return t.Store.CreateAuthCode(ctx, c)
}

func (t timedStore) ConsumeAuthCode(ctx context.Context, id string, now time.Time) (store.AuthCode, error) {
	defer t.observe("consume_auth_code", time.Now())
	return t.Store.ConsumeAuthCode(ctx, id, now)
}

func (t timedStore) CreateRefreshToken(ctx context.Context, r store.RefreshToken) error {
	defer t.observe("create_refresh_token", time.Now())
	return t.Store.CreateRefreshToken(ctx, r)
}

func (t timedStore) RotateRefreshToken(ctx context.Context, oldID string, now time.Time, next store.RefreshToken) (store.RefreshToken, error) {
	defer t.observe("rotate_refresh_token", time.Now())
	return t.Store.RotateRefreshToken(ctx, oldID, now, next)
}

func (t timedStore) RefreshToken(ctx context.Context, id string, now time.Time) (store.RefreshToken, error) {
	defer t.observe("refresh_token", time.Now())
	return t.Store.RefreshToken(ctx, id, now)
}

func (t timedStore) Revoke(ctx context.Context, id string, expiresAt time.Time) error {
	defer t.observe("revoke", time.Now())
	return t.Store.Revoke(ctx, id, expiresAt)
}

func (t timedStore) Revoked(ctx context.Context, ids ...string) (bool, error) {
	defer t.observe("revoked", time.Now())
	return t.Store.Revoked(ctx, ids...)
}

func (t timedStore) CreateSession(ctx context.Context, s store.Session) error {
	defer t.observe("create_session", time.Now())
	return t.Store.CreateSession(ctx, s)
}

func (t timedStore) Session(ctx context.Context, id string, now time.Time) (store.Session, error) {
	defer t.observe("session", time.Now())
	return t.Store.Session(ctx, id, now)
}

func (t timedStore) DeleteSession(ctx context.Context, id string) error {
	defer t.observe("delete_session", time.Now())
	return t.Store.DeleteSession(ctx, id)
}

func (t timedStore) AddSessionGrant(ctx context.Context, g store.SessionGrant) error {
	defer t.observe("add_session_grant", time.Now())
	return t.Store.AddSessionGrant(ctx, g)
}

func (t timedStore) SessionGrants(ctx context.Context, sessionID string, now time.Time) ([]store.SessionGrant, error) {
	defer t.observe("session_grants", time.Now())
	return t.Store.SessionGrants(ctx, sessionID, now)
}
