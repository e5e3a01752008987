package issuer

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// healthTimeout bounds the store query of a health check: a load balancer
// or orchestrator probing the issuer must get an answer within its own
// timeout, even when the database hangs.
const healthTimeout = 2 * time.Second

// healthProbeID is the revocation looked up by a health check: a cheap query
// by primary key that reaches the database and finds nothing.
const healthProbeID = "gatehouse-health-probe"

// health is the body of the health endpoint.
type health struct {
	// Status is "ok" when the issuer can serve, "unavailable" otherwise.
	Status string `json:"status"`
	// Store is "ok" or "unreachable".
	Store string `json:"store"`
	// SigningKey is the kid of the key that signs now, or "missing".
	SigningKey string `json:"signing_key"`
}

// serveHealth answers GET <issuer>/healthz: 200 when the store answers a
// query within healthTimeout and a signing key is active, 503 naming the
// failing part otherwise. The body carries no secret and no error detail
// (those go to the log).
func (i *Issuer) serveHealth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h := health{Status: "ok", Store: "ok", SigningKey: i.keys.ActiveKID()}
	timeout := i.healthTimeout
	if timeout == 0 {
		timeout = healthTimeout
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	// Not through the timed store: probes would skew its latency metrics.
	if _, err := i.cfg.Store.Revoked(ctx, healthProbeID); err != nil {
		h.Status, h.Store = "unavailable", "unreachable"
		i.log.Warn("health check: the store did not answer", zap.String("domain", i.name), zap.Error(err))
	}
	if h.SigningKey == "" {
		h.Status, h.SigningKey = "unavailable", "missing"
	}
	noStore(w.Header())
	w.Header().Set("Content-Type", "application/json")
	if h.Status != "ok" {
		w.Header().Set("Retry-After", "5")
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	if r.Method == http.MethodHead {
		return
	}
	_ = json.NewEncoder(w).Encode(h)
}
