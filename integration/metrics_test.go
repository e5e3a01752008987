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
