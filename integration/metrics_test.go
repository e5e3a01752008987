package integration

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestMetrics_IssuerCountersOnCaddysMetricsEndpoint: the issuer's Prometheus
// metrics are registered with Caddy's registry and served by the metrics
// handler.
func TestMetrics_IssuerCountersOnCaddysMetricsEndpoint(t *testing.T) {
	env := newIssuerEnv(t)
	// The issuer site also serves Caddy's metrics handler at /metrics.
	startCaddy(t, strings.Replace(issuerCaddyfile(t, env, ""), "\tgatehouse_issuer\n", "\tgatehouse_issuer\n\tmetrics /metrics\n", 1))
	genv := &gateEnv{issuerEnv: env}
	serviceToken(t, genv, "orders:read")
	// A refused token request counts as an error by RFC 6749 code.
	resp := postForm(t, env.issuer+"/token", "service", "wrong-secret-0123456789abcdef", map[string][]string{"grant_type": {"client_credentials"}})
	resp.Body.Close()

	body := scrape(t, env.issuer+"/metrics")
	for _, want := range []string{
		`gatehouse_issuer_tokens_issued_total{domain="",grant="client_credentials"} 1`,
		`gatehouse_issuer_token_errors_total{domain="",error="invalid_client"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func scrape(t testing.TB, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d", u, resp.StatusCode)
	}
	return string(b)
}

// TestMetrics_GateCountsEveryDecision: the gate's outcomes and session events
// are on Caddy's metrics endpoint.
func TestMetrics_GateCountsEveryDecision(t *testing.T) {
	env := startGate(t, `
			login webapp
			bearer {
				audience https://api.example.com
				scopes orders:read
			}
			forward X-Auth-Subject sub`, func(cf string) string {
		return strings.Replace(cf, "\tgatehouse_issuer\n", "\tgatehouse_issuer\n\tmetrics /metrics\n", 1)
	})
	api := env.app + "/orders"
	good := serviceToken(t, env, "orders:read")
	noScope := serviceToken(t, env, "orders:write")
	for _, tc := range []struct {
		hdr  map[string]string
		want int
	}{
		{map[string]string{"Authorization": "Bearer " + good}, 200},
		{map[string]string{"Authorization": "Bearer " + good}, 200},
		{map[string]string{"Authorization": "Bearer " + noScope}, 403},
		{map[string]string{"Authorization": "Bearer not-a-jwt"}, 401},
		{map[string]string{"Accept": "application/json"}, 401},
		{map[string]string{"Accept": "text/html"}, 302},
	} {
		if resp, _ := do(t, nil, "GET", api, tc.hdr); resp.StatusCode != tc.want {
			t.Fatalf("%v: %d, want %d", tc.hdr, resp.StatusCode, tc.want)
		}
	}
	b := loginAs(t, env, "alice") // one more login redirect, then a login
	if resp, _ := do(t, b, "GET", env.app+"/.gatehouse/logout", sameOrigin); resp.StatusCode != 302 {
		t.Fatalf("logout: %d", resp.StatusCode)
	}

	body := scrape(t, env.issuer+"/metrics")
	for _, want := range []string{
		`gatehouse_gate_requests_total{outcome="allowed"} 2`,
		`gatehouse_gate_requests_total{outcome="insufficient_scope"} 1`,
		`gatehouse_gate_requests_total{outcome="invalid_token"} 1`,
		`gatehouse_gate_requests_total{outcome="no_credentials"} 1`,
		`gatehouse_gate_requests_total{outcome="login_redirect"} 2`,
		`gatehouse_gate_requests_total{outcome="policy_denied"} 0`,
		`gatehouse_gate_sessions_total{event="login"} 1`,
		`gatehouse_gate_sessions_total{event="logout"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
