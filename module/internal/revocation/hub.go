package revocation

import (
	"sync"
	"time"
)

// Memory is how long Publish remembers a revocation: longer than any
// access token lives.
const Memory = 48 * time.Hour

// Hub fans revocations out to subscribers and remembers them, so a gate
// refuses a revoked token even after its signature checks out again. Safe
// for concurrent use.
type Hub struct {
	mu      sync.RWMutex
	next    int
	subs    map[int]func(ID)
	revoked map[ID]time.Time // id → when the entry may be forgotten
	pruned  time.Time        // last sweep of revoked
	now     func() time.Time
}

// NewHub returns an empty hub.
func NewHub() *Hub {
	return &Hub{subs: map[int]func(ID){}, revoked: map[ID]time.Time{}, now: time.Now}
}

// Publish records id as revoked for Memory and tells the subscribers.
func (h *Hub) Publish(id ID) {
	h.PublishUntil(id, h.now().Add(Memory))
}

// PublishUntil records id as revoked until the given time (when it may be
// forgotten; a later one already recorded is kept) and tells the
// subscribers, after the hub has recorded it.
func (h *Hub) PublishUntil(id ID, until time.Time) {
	now := h.now()
	h.mu.Lock()
	if now.Sub(h.pruned) > time.Minute {
		h.pruned = now
		for k, until := range h.revoked {
			if now.After(until) {
				delete(h.revoked, k)
			}
		}
	}
	if until.After(h.revoked[id]) {
		h.revoked[id] = until
	}
	subs := make([]func(ID), 0, len(h.subs))
	for _, f := range h.subs {
		subs = append(subs, f)
	}
	h.mu.Unlock()
	for _, f := range subs {
		f(id)
	}
}

// Revoked reports whether id, or the family of a jti, was revoked.
func (h *Hub) Revoked(id ID) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if len(h.revoked) == 0 {
		return false
	}
	if _, ok := h.revoked[id]; ok {
		return true
	}
	if fam := id.Family(); fam != "" {
		_, ok := h.revoked[fam]
		return ok
	}
	return false
}

// Subscribe calls f with every ID published from now on, until cancel is
// called. f runs on the publisher's goroutine and must not block.
func (h *Hub) Subscribe(f func(id ID)) (cancel func()) {
	h.mu.Lock()
	id := h.next
	h.next++
	h.subs[id] = f
	h.mu.Unlock()
	return func() {
		h.mu.Lock()
		delete(h.subs, id)
		h.mu.Unlock()
	}
}
