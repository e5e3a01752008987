package module

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-auth/gatehouse/module/internal/store/sqlite"
)

func TestRevocationWatcherPublishesWhatOtherInstancesRecorded(t *testing.T) {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "gh.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	now := time.Now()
	// Recorded before this instance started: learned at start, more than a
	// page of them.
	const before = revocationPage*2 + 17
	for i := range before {
		if err := st.Revoke(ctx, fmt.Sprintf("old-%d", i), now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Revoke(ctx, "expired", now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}

	hub := newRevocationHub()
	published := make(chan string, before+16)
	defer hub.subscribe(func(id string) { published <- id })()
	// The first poll runs before the domain serves: everything recorded
	// earlier is refused from the first request on.
	w := newRevocationWatcher(st, hub, zap.NewNop())
	w.poll(ctx)
	for _, id := range []string{"old-0", fmt.Sprintf("old-%d", before-1)} {
		if !hub.isRevoked(id) {
			t.Fatalf("%s is not refused after the first poll", id)
		}
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.run(wctx, 10*time.Millisecond)
	}()
	defer func() { cancel(); <-done }()

	seen := map[string]int{}
	wait := func(id string) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for seen[id] == 0 {
			select {
			case got := <-published:
				seen[got]++
			case <-deadline:
				t.Fatalf("%s was not published (%d ids so far)", id, len(seen))
			}
		}
	}
	for i := range before {
		wait(fmt.Sprintf("old-%d", i))
	}
	if !hub.isRevoked("old-5") || !hub.isRevoked("old-5.jti") {
		t.Fatal("the hub does not refuse a revoked family")
	}

	// Recorded while running: published within a few polls, once.
	if err := st.Revoke(ctx, "fam-new", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	wait("fam-new")
	if err := st.Revoke(ctx, "fam-later", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	wait("fam-later")
	if !hub.isRevoked("fam-new.x") {
		t.Fatal("the hub does not refuse a token of the newly revoked family")
	}
	// Let several more polls run over the overlap window, then count.
	time.Sleep(100 * time.Millisecond)
	for drained := false; !drained; {
		select {
		case got := <-published:
			seen[got]++
		default:
			drained = true
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s published %d times; the overlap must not repeat what was seen", id, n)
		}
	}
	if seen["expired"] != 0 || hub.isRevoked("expired") {
		t.Error("an expired revocation was published")
	}
}

// TestGateSessionWatcherKeepsEveryLiveLogout: the watcher behind the gates'
// logged-out sessions publishes only gate-session ids (bare), learns every
// live one however long ago it was recorded (a session may outlast
// revocationMemory), and remembers each until the session's end.
func TestGateSessionWatcherKeepsEveryLiveLogout(t *testing.T) {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "gh.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	now := time.Now()
	st.Now = func() time.Time { return now.Add(-3 * 24 * time.Hour) } // recorded three days ago
	if err := st.Revoke(ctx, gateSessionPrefix+"old", now.Add(7*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	st.Now = time.Now
	if err := st.Revoke(ctx, gateSessionPrefix+"new", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := st.Revoke(ctx, "fam.jti", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	hub := newRevocationHub()
	w := newRevocationWatcher(st, hub, zap.NewNop())
	w.prefix, w.since = gateSessionPrefix, time.Unix(0, 0)
	w.poll(ctx)
	if !hub.isRevoked("old") || !hub.isRevoked("new") {
		t.Fatal("a logged-out session is not refused")
	}
	if hub.isRevoked("fam.jti") || hub.isRevoked(gateSessionPrefix+"new") {
		t.Fatal("the gate-session hub holds other revocations, or prefixed ids")
	}
	hub.mu.RLock()
	until := hub.revoked["old"]
	hub.mu.RUnlock()
	if !until.Equal(now.Add(7 * 24 * time.Hour).Truncate(time.Microsecond)) {
		t.Fatalf("remembered until %v, want the session's end", until)
	}
}
