package revocation

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// Polling the store for revocations other instances recorded.
const (
	// PageSize bounds one RevokedSince query.
	PageSize = 1000
	// Overlap: each poll looks this far behind the newest revocation it
	// saw, because a revocation stamped earlier may commit later (and
	// instance clocks differ a little). What was seen is not published
	// twice.
	Overlap = 10 * time.Second
)

// Watcher publishes to a hub the revocations recorded in the store, of one
// kind: token revocations (families and jtis) or gate sessions.
type Watcher struct {
	st     store.Revocations
	hub    *Hub
	logger *zap.Logger
	since  time.Time
	seen   map[string]time.Time // id → RevokedAt already published
	// gateSessions: publish only gate sessions, each remembered until its
	// revocation expires; otherwise only token revocations, remembered for
	// Memory.
	gateSessions bool
}

// NewWatcher returns a watcher of token revocations (families and jtis):
// its first poll publishes those of the last Memory (an instance that
// starts, or a domain that is rebuilt, learns what was revoked before),
// each later poll those recorded since.
func NewWatcher(st store.Revocations, hub *Hub, logger *zap.Logger) *Watcher {
	return &Watcher{st: st, hub: hub, logger: logger, since: time.Now().Add(-Memory), seen: map[string]time.Time{}}
}

// NewGateSessionWatcher returns a watcher of ended gate sessions: its first
// poll publishes every one that is live, however long ago it was recorded
// (a session may last longer than Memory), each remembered until the
// session's end.
func NewGateSessionWatcher(st store.Revocations, hub *Hub, logger *zap.Logger) *Watcher {
	return &Watcher{st: st, hub: hub, logger: logger, since: time.Unix(0, 0), seen: map[string]time.Time{}, gateSessions: true}
}

// Poll publishes what was recorded since the last poll. Not safe for
// concurrent use.
func (w *Watcher) Poll(ctx context.Context) {
	for ctx.Err() == nil {
		revs, err := w.st.RevokedSince(ctx, w.since, PageSize)
		if err != nil {
			if ctx.Err() == nil {
				w.logger.Error("reading revocations from the store", zap.Error(err))
			}
			return
		}
		newest := w.since
		for _, r := range revs {
			if at, ok := w.seen[r.ID]; !ok || !at.Equal(r.RevokedAt) {
				w.seen[r.ID] = r.RevokedAt
				switch id := ID(r.ID); {
				case id.IsGateSession() != w.gateSessions:
				case w.gateSessions:
					w.hub.PublishUntil(id, r.ExpiresAt)
				default:
					w.hub.Publish(id)
				}
			}
			if r.RevokedAt.After(newest) {
				newest = r.RevokedAt
			}
		}
		if len(revs) == PageSize {
			// A full page: read on from the newest one.
			if !newest.After(w.since) {
				newest = w.since.Add(time.Microsecond)
			}
			w.since = newest
			continue
		}
		if c := newest.Add(-Overlap); c.After(w.since) {
			w.since = c
		}
		for id, at := range w.seen {
			if at.Before(w.since) {
				delete(w.seen, id)
			}
		}
		return
	}
}

// Run polls every `every` until ctx is done.
func (w *Watcher) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.Poll(ctx)
		}
	}
}
