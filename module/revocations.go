package module

import (
	"context"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/gatehouse-auth/gatehouse/module/internal/revocation"
)

// The gate sessions ended by a logout, shared across reloads (the
// revocation package holds the hub and the watcher; this is their pool
// entry).

type pooledRevocations struct {
	hub    *revocation.Hub
	cancel context.CancelFunc
	done   chan struct{}
}

func (p *pooledRevocations) Destruct() error {
	p.cancel()
	<-p.done
	return nil
}

// gateSessionRevocations returns the hub of gate sessions ended by a logout,
// on this instance or any other sharing the store: one per store (and
// poll interval), whatever the domain or provider of the gate, kept in
// memory so gates look a session up without a query. It learns every live
// revocation in the store before it is returned, then polls. Called while
// the config is provisioned (one goroutine).
func (a *App) gateSessionRevocations() (*revocation.Hub, error) {
	if a.gateSessions != nil {
		return a.gateSessions, nil
	}
	key := fmt.Sprintf("gate-sessions|%s|%s", a.storeKey, time.Duration(a.RevocationPoll))
	val, _, err := pool.LoadOrNew(key, func() (caddy.Destructor, error) {
		hub := revocation.NewHub()
		// The watcher outlives this config, whose log writers Caddy closes
		// when it unloads it: Caddy's default logger.
		w := revocation.NewGateSessionWatcher(a.store, hub, pooledLogger())
		lctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		w.Poll(lctx)
		bg, stop := context.WithCancel(context.Background())
		p := &pooledRevocations{hub: hub, cancel: stop, done: make(chan struct{})}
		every := time.Duration(a.RevocationPoll)
		go func() {
			defer close(p.done)
			w.Run(bg, every)
		}()
		return p, nil
	})
	if err != nil {
		return nil, err
	}
	a.poolKeys = append(a.poolKeys, key)
	a.gateSessions = val.(*pooledRevocations).hub
	return a.gateSessions, nil
}

// revokeGateSession ends a gate session on every instance: recorded in the
// store until the session's end (other instances poll it) and published
// here at once.
func (a *App) revokeGateSession(ctx context.Context, session string, until time.Time) error {
	id := revocation.GateSession(session)
	a.gateSessions.PublishUntil(id, until)
	return a.store.Revoke(ctx, string(id), until)
}
