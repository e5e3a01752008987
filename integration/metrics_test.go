package integration

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
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
	before := metricValues(scrape(t, env.issuer+"/metrics"))
	genv := &gateEnv{issuerEnv: env}
	serviceToken(t, genv, "orders:read")
	// A refused token request counts as an error by RFC 6749 code.
	resp := postForm(t, env.issuer+"/token", "service", "wrong-secret-0123456789abcdef", map[string][]string{"grant_type": {"client_credentials"}})
	resp.Body.Close()

	wantIncrements(t, before, metricValues(scrape(t, env.issuer+"/metrics")), map[string]float64{
		`gatehouse_issuer_tokens_issued_total{domain="",grant="client_credentials"}`: 1,
		`gatehouse_issuer_token_errors_total{domain="",error="invalid_client"}`:      1,
	})
}

// metricValues reads the samples of a Prometheus text exposition, by
// series (name and labels, as printed).
func metricValues(body string) map[string]float64 {
	m := map[string]float64{}
	for line := range strings.Lines(body) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	return m
}

// wantIncrements checks that each series grew by exactly the given amount
// from before to after. The collectors are the process's — they outlive
// reloads — so earlier tests' counts are in both.
func wantIncrements(t *testing.T, before, after, want map[string]float64) {
	t.Helper()
	for series, inc := range want {
		if _, ok := after[series]; !ok {
			t.Errorf("metrics lack %s", series)
			continue
		}
		if got := after[series] - before[series]; got != inc {
			t.Errorf("%s grew by %v, want %v", series, got, inc)
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
	before := metricValues(scrape(t, env.issuer+"/metrics"))
	gateRequests(t, env)

	wantIncrements(t, before, metricValues(scrape(t, env.issuer+"/metrics")), map[string]float64{
		`gatehouse_gate_requests_total{outcome="allowed"}`:            2,
		`gatehouse_gate_requests_total{outcome="insufficient_scope"}`: 1,
		`gatehouse_gate_requests_total{outcome="invalid_token"}`:      1,
		`gatehouse_gate_requests_total{outcome="no_credentials"}`:     1,
		`gatehouse_gate_requests_total{outcome="login_redirect"}`:     2,
		`gatehouse_gate_requests_total{outcome="policy_denied"}`:      0,
		`gatehouse_gate_sessions_total{event="login"}`:                1,
		`gatehouse_gate_sessions_total{event="logout"}`:               1,
	})
}

// gateRequests makes the gate decide two allowed requests, one each of
// insufficient_scope, invalid_token and no_credentials, and two login
// redirects; then a login and a logout.
func gateRequests(t *testing.T, env *gateEnv) {
	t.Helper()
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
}

// TestMetrics_CountersSurviveAReload: `caddy reload` gives the new config a
// new metrics registry; Gatehouse's counters go on from where they were
// instead of starting again at zero.
func TestMetrics_CountersSurviveAReload(t *testing.T) {
	withMetrics := func(cf string) string {
		return strings.Replace(cf, "\tgatehouse_issuer\n", "\tgatehouse_issuer\n\tmetrics /metrics\n", 1)
	}
	gateBlock := `
			login webapp
			bearer {
				audience https://api.example.com
				scopes orders:read
			}`
	env := startGate(t, gateBlock, withMetrics)
	gateRequests(t, env)
	series := []string{
		`gatehouse_gate_requests_total{outcome="allowed"}`,
		`gatehouse_gate_sessions_total{event="login"}`,
		`gatehouse_issuer_tokens_issued_total{domain="",grant="client_credentials"}`,
		`gatehouse_issuer_sign_ins_total{domain="",outcome="success"}`,
	}
	before := metricValues(scrape(t, env.issuer+"/metrics"))
	for _, s := range series {
		if before[s] == 0 {
			t.Fatalf("%s is %v before the reload", s, before[s])
		}
	}

	// The same sites, reloaded (a new config: new gate, issuer and registry).
	env.upstream = newRecorder(t)
	reloadCaddy(t, withMetrics(issuerCaddyfile(t, env.issuerEnv, fmt.Sprintf(`
%s {
	gatehouse {
%s
	}
	reverse_proxy %s
}`, env.app, gateBlock, env.upstream.addr()))))
	after := metricValues(scrape(t, env.issuer+"/metrics"))
	for _, s := range series {
		if after[s] != before[s] {
			t.Errorf("%s: %v before the reload, %v after", s, before[s], after[s])
		}
	}
	// And they go on counting.
	tok := serviceToken(t, env, "orders:read")
	if resp, _ := do(t, nil, "GET", env.app+"/orders", map[string]string{"Authorization": "Bearer " + tok}); resp.StatusCode != 200 {
		t.Fatalf("after the reload: %d", resp.StatusCode)
	}
	wantIncrements(t, after, metricValues(scrape(t, env.issuer+"/metrics")), map[string]float64{
		`gatehouse_gate_requests_total{outcome="allowed"}`:                           1,
		`gatehouse_issuer_tokens_issued_total{domain="",grant="client_credentials"}`: 1,
	})
}
