package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestRegisterReusesTheCollectorOfAnEarlierProvision(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "x_total", Help: "x"}
	first, err := Register(reg, prometheus.NewCounterVec(opts, []string{"l"}))
	if err != nil {
		t.Fatal(err)
	}
	first.WithLabelValues("a").Inc()
	second, err := Register(reg, prometheus.NewCounterVec(opts, []string{"l"}))
	if err != nil {
		t.Fatal(err)
	}
	if second != first {
		t.Fatal("a second registration made a new collector; counts would restart at every reload")
	}
	if _, err := Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "x"}, []string{"other"})); err == nil {
		t.Fatal("a clashing collector was accepted")
	}
}

// TestRegisterKeepsCountsAcrossRegistries: Caddy gives each config (each
// reload) a new registry; the collector, and so its counts, is the
// process's.
func TestRegisterKeepsCountsAcrossRegistries(t *testing.T) {
	opts := prometheus.CounterOpts{Name: "reloads_survived_total", Help: "y"}
	before, err := Register(prometheus.NewRegistry(), prometheus.NewCounterVec(opts, []string{"l"}))
	if err != nil {
		t.Fatal(err)
	}
	before.WithLabelValues("a").Add(3)
	reg := prometheus.NewRegistry() // the reloaded config's
	after, err := Register(reg, prometheus.NewCounterVec(opts, []string{"l"}))
	if err != nil {
		t.Fatal(err)
	}
	after.WithLabelValues("a").Inc()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got float64
	for _, f := range fams {
		if f.GetName() == "reloads_survived_total" {
			got = f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if got != 4 {
		t.Fatalf("the new registry serves %v, want 4 (3 before the reload, 1 after)", got)
	}
	var m dto.Metric
	if err := before.WithLabelValues("a").Write(&m); err != nil || m.GetCounter().GetValue() != 4 {
		t.Fatalf("the collector of the first config counts %v (%v)", m.GetCounter().GetValue(), err)
	}
}
