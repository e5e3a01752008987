package issuer

import (
	"strings"
	"testing"

	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestMetrics_ReRegistrationReusesCollectorsAndCounts(t *testing.T) {
	reg := prometheus.NewRegistry()
	m1, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := NewMetrics(reg) // a Caddy reload provisions again
	if err != nil {
		t.Fatalf("second registration: %v", err)
	}
	if m1.tokensIssued != m2.tokensIssued || m1.storeLatency != m2.storeLatency {
		t.Fatal("collectors were not reused")
	}
	// The collectors are the process's (they outlive reloads): count what
	// this test adds.
	issued := counterValue(t, m1.tokensIssued.WithLabelValues("", "client_credentials"))
	refused := counterValue(t, m1.tokenErrors.WithLabelValues("", "invalid_client"))
	signIns := counterValue(t, m1.signIns.WithLabelValues("", "success"))
	f := newFixture(t, withConfig(func(c *Config, _ *identity.Domain) { c.Metrics = m2 }))
	f.token(urlValues("grant_type", "client_credentials"), "service", serviceSecret)
	f.token(urlValues("grant_type", "client_credentials"), "service", "wrong-secret-xxxxxxx")
	f.codeTokens("spa", spaRedirect, "")
	if v := counterValue(t, m1.tokensIssued.WithLabelValues("", "client_credentials")) - issued; v != 1 {
		t.Fatalf("client_credentials issued = %v", v)
	}
	if v := counterValue(t, m1.tokenErrors.WithLabelValues("", "invalid_client")) - refused; v != 1 {
		t.Fatalf("invalid_client errors = %v", v)
	}
	if v := counterValue(t, m1.signIns.WithLabelValues("", "success")) - signIns; v != 1 {
		t.Fatalf("sign-ins = %v", v)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fam := range families {
		if fam.GetName() == "gatehouse_issuer_store_duration_seconds" {
			n = len(fam.GetMetric())
		}
	}
	if n == 0 {
		t.Fatal("no store latency series")
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestAudit_NeverLogsSecretsCodesOrTokens(t *testing.T) {
	f := newFixture(t)
	c := f.browser()
	code := f.code(c, authParams("web", webRedirect))
	tr := f.token(codeForm(code, webRedirect), "web", webSecret)
	f.token(codeForm(code, webRedirect), "web", webSecret) // replay
	f.token(urlValues("grant_type", "client_credentials"), "service", "wrong-secret-xxxxxxx")
	secrets := []string{code, webSecret, serviceSecret, "wrong-secret-xxxxxxx", tr.resp.AccessToken, tr.resp.RefreshToken, tr.resp.IDToken, alicePassword}
	if f.audit.Len() < 4 {
		t.Fatalf("only %d audit entries", f.audit.Len())
	}
	for _, e := range f.audit.All() {
		m := e.ContextMap()
		for _, k := range []string{"event", "outcome", "reason", "domain", "client_id", "sub"} {
			if _, ok := m[k]; !ok {
				t.Errorf("entry %q lacks %s", e.Message, k)
			}
		}
		line := e.Message
		for _, v := range m {
			if s, ok := v.(string); ok {
				line += " " + s
			}
		}
		for _, s := range secrets {
			if s != "" && strings.Contains(line, s) {
				t.Fatalf("audit entry %q leaks a secret", e.Message)
			}
		}
	}
}
