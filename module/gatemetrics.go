package module

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-auth/gatehouse/module/internal/metrics"
)

// Gate request outcomes (label values of gatehouse_gate_requests_total).
const (
	outcomeAllowed           = "allowed"
	outcomeNoCredentials     = "no_credentials"
	outcomeLoginRedirect     = "login_redirect"
	outcomeInvalidToken      = "invalid_token"
	outcomeInvalidRequest    = "invalid_request"
	outcomeInsufficientScope = "insufficient_scope"
	outcomePolicyDenied      = "policy_denied"
	// outcomeUnavailable: the gate could not decide (the gatehouse app had
	// not started, or the gate's domain is not served) and answered 503.
	outcomeUnavailable = "unavailable"
)

// Browser-session events (label values of gatehouse_gate_sessions_total).
const (
	sessionLogin         = "login"
	sessionLoginFailed   = "login_failed"
	sessionRefreshed     = "refreshed"
	sessionRefreshFailed = "refresh_failed"
	sessionRejected      = "rejected"
	sessionLogout        = "logout"
)

var (
	gateOutcomes  = []string{outcomeAllowed, outcomeNoCredentials, outcomeLoginRedirect, outcomeInvalidToken, outcomeInvalidRequest, outcomeInsufficientScope, outcomePolicyDenied, outcomeUnavailable}
	sessionEvents = []string{sessionLogin, sessionLoginFailed, sessionRefreshed, sessionRefreshFailed, sessionRejected, sessionLogout}
)

// gateMetrics counts what every gate decides. The counters are resolved
// once, at provision: counting a request is one atomic add.
type gateMetrics struct {
	requests map[string]prometheus.Counter
	sessions map[string]prometheus.Counter
}

func newGateMetrics(reg prometheus.Registerer) (*gateMetrics, error) {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gatehouse", Subsystem: "gate", Name: "requests_total",
		Help: "Requests the gate decided, by outcome.",
	}, []string{"outcome"})
	sessions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gatehouse", Subsystem: "gate", Name: "sessions_total",
		Help: "Browser-session events at the gate: logins, refreshes, rejected cookies, logouts.",
	}, []string{"event"})
	if reg != nil {
		var err error
		if requests, err = metrics.Register(reg, requests); err != nil {
			return nil, err
		}
		if sessions, err = metrics.Register(reg, sessions); err != nil {
			return nil, err
		}
	}
	m := &gateMetrics{requests: map[string]prometheus.Counter{}, sessions: map[string]prometheus.Counter{}}
	for _, o := range gateOutcomes {
		m.requests[o] = requests.WithLabelValues(o)
	}
	for _, e := range sessionEvents {
		m.sessions[e] = sessions.WithLabelValues(e)
	}
	return m, nil
}

func (m *gateMetrics) request(outcome string) {
	if m != nil {
		m.requests[outcome].Inc()
	}
}

func (m *gateMetrics) session(event string) {
	if m != nil {
		m.sessions[event].Inc()
	}
}
