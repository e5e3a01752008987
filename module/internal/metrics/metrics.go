// Package metrics holds what Gatehouse's Prometheus collectors share:
// collectors that live as long as the process. Caddy gives every config its
// own registry, so a collector created per config would start again at zero
// on every `caddy reload`; Register instead hands out one collector per
// metric for the whole process and registers it with each config's
// registry, so counts go on across reloads.
package metrics

import (
	"errors"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	mu sync.Mutex
	// shared holds the process's collectors by their descriptions.
	shared = map[string]prometheus.Collector{}
)

// Register returns the process's collector described as c is (same names,
// help and labels) — c itself the first time — registered with reg (nil:
// not registered). Callers create c and use what Register returns.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	key := describe(c)
	mu.Lock()
	if existing, ok := shared[key].(C); ok {
		c = existing
	} else {
		shared[key] = c
	}
	mu.Unlock()
	if reg == nil {
		return c, nil
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}

// describe is a collector's identity: its descriptions (fully-qualified
// names, help, constant and variable labels).
func describe(c prometheus.Collector) string {
	ch := make(chan *prometheus.Desc)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	var descs []string
	for d := range ch {
		descs = append(descs, d.String())
	}
	slices.Sort(descs)
	return strings.Join(descs, "\n")
}
