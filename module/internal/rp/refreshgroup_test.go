package rp

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitForWaiters returns once n callers have joined the call in flight for
// token (they block on it; the test may then end the call).
func waitForWaiters(t *testing.T, rg *RefreshGroup, token string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rg.mu.Lock()
		got := 0
		for _, c := range rg.calls {
			got += c.waiters
		}
		rg.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d callers joined the call for %s within 10s, want %d", got, token, n)
		}
		runtime.Gosched()
	}
}

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)} }

// TestRefreshGroupConcurrentCallersShareOneCall: the requests of one browser
// that need a refresh at once make one call to the provider and all get its
// result.
func TestRefreshGroupConcurrentCallersShareOneCall(t *testing.T) {
	var rg RefreshGroup
	var calls atomic.Int32
	release := make(chan struct{})
	fresh := &Session{AccessToken: "at-2"}
	fn := func() (*Session, error) {
		calls.Add(1)
		<-release
		return fresh, nil
	}
	const n = 8
	results := make(chan *Session, n)
	go func() {
		s, _ := rg.Do(context.Background(), "rt-1", fn)
		results <- s
	}()
	for range n - 1 {
		go func() {
			// The first caller may not have started yet: whoever comes
			// first runs fn, the others wait for it.
			s, _ := rg.Do(context.Background(), "rt-1", fn)
			results <- s
		}()
	}
	waitForWaiters(t, &rg, "rt-1", n-1)
	close(release)
	for range n {
		if s := <-results; s != fresh {
			t.Fatalf("a caller got %+v, want the shared session", s)
		}
	}
	if got := calls.Load(); got != 1 {
		t.Fatalf("%d calls to the provider for one refresh token, want 1", got)
	}
	// Another refresh token is another call.
	if _, err := rg.Do(context.Background(), "rt-other", func() (*Session, error) { calls.Add(1); return fresh, nil }); err != nil || calls.Load() != 2 {
		t.Fatalf("a second refresh token did not make its own call: %v, %d calls", err, calls.Load())
	}
}

// TestRefreshGroupWaiterWhoseContextEnds: a waiting request that goes away
// gets its context's error at once; the call goes on and the caller that
// made it gets the result.
func TestRefreshGroupWaiterWhoseContextEnds(t *testing.T) {
	var rg RefreshGroup
	release := make(chan struct{})
	started := make(chan struct{})
	fresh := &Session{AccessToken: "at-2"}
	leader := make(chan *Session, 1)
	go func() {
		s, _ := rg.Do(context.Background(), "rt-1", func() (*Session, error) {
			close(started)
			<-release
			return fresh, nil
		})
		leader <- s
	}()
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s, err := rg.Do(ctx, "rt-1", func() (*Session, error) {
		t.Error("a waiter ran its own refresh while one was in flight")
		return nil, nil
	})
	if !errors.Is(err, context.Canceled) || s != nil {
		t.Fatalf("the waiter whose context ended got %v, %v; want context.Canceled", s, err)
	}
	close(release)
	if got := <-leader; got != fresh {
		t.Fatalf("the caller that made the call got %+v", got)
	}
}

// TestRefreshGroupFailureIsSharedOnlyWithItsWaiters: the callers that waited
// for a failed call get its error; the next caller tries again (a transient
// provider error must not stick for the reuse window).
func TestRefreshGroupFailureIsSharedOnlyWithItsWaiters(t *testing.T) {
	var rg RefreshGroup
	boom := errors.New("provider down")
	release := make(chan struct{})
	started := make(chan struct{})
	var calls atomic.Int32
	errs := make(chan error, 2)
	go func() {
		_, err := rg.Do(context.Background(), "rt-1", func() (*Session, error) {
			calls.Add(1)
			close(started)
			<-release
			return nil, boom
		})
		errs <- err
	}()
	<-started
	go func() {
		_, err := rg.Do(context.Background(), "rt-1", func() (*Session, error) {
			calls.Add(1)
			return nil, errors.New("a waiter ran its own refresh")
		})
		errs <- err
	}()
	waitForWaiters(t, &rg, "rt-1", 1)
	close(release)
	for range 2 {
		if err := <-errs; !errors.Is(err, boom) {
			t.Fatalf("a caller of the failed call got %v, want its error", err)
		}
	}
	fresh := &Session{AccessToken: "at-2"}
	s, err := rg.Do(context.Background(), "rt-1", func() (*Session, error) {
		calls.Add(1)
		return fresh, nil
	})
	if err != nil || s != fresh || calls.Load() != 2 {
		t.Fatalf("after the failure: %+v, %v, %d calls; want a new call that succeeds", s, err, calls.Load())
	}
}

// TestRefreshGroupHandsTheResultOverForTheWindow: a request that still
// carries the old cookie within RefreshReuse of the refresh gets the same
// session without a call (its refresh token was rotated); after the window
// the result is dropped and a call is made.
func TestRefreshGroupHandsTheResultOverForTheWindow(t *testing.T) {
	clock := newClock()
	rg := RefreshGroup{now: clock.Now}
	var calls atomic.Int32
	fn := func() (*Session, error) {
		calls.Add(1)
		return &Session{AccessToken: fmt.Sprint("at-", calls.Load())}, nil
	}
	first, _ := rg.Do(context.Background(), "rt-1", fn)
	clock.Advance(RefreshReuse - time.Millisecond)
	again, _ := rg.Do(context.Background(), "rt-1", fn)
	if again != first || calls.Load() != 1 {
		t.Fatalf("within the window: %+v after %d calls, want the first result", again, calls.Load())
	}
	clock.Advance(time.Millisecond)
	later, _ := rg.Do(context.Background(), "rt-1", fn)
	if later == first || calls.Load() != 2 {
		t.Fatalf("at the end of the window: %+v after %d calls, want a new call", later, calls.Load())
	}
}

// TestRefreshGroupBoundsWhatItRemembers: past the bound, results that can no
// longer be handed over are dropped first; while every entry is still live,
// refreshes run unshared (correct, just not coalesced) and nothing more is
// remembered.
func TestRefreshGroupBoundsWhatItRemembers(t *testing.T) {
	clock := newClock()
	const bound = 3
	rg := RefreshGroup{now: clock.Now, max: bound}
	var calls atomic.Int32
	fn := func() (*Session, error) { calls.Add(1); return &Session{}, nil }
	size := func() int { rg.mu.Lock(); defer rg.mu.Unlock(); return len(rg.calls) }
	for i := range bound {
		rg.Do(context.Background(), fmt.Sprint("rt-", i), fn)
	}
	if size() != bound {
		t.Fatalf("%d entries after %d refreshes", size(), bound)
	}
	// Full of live entries: rt-x runs, unremembered, each time.
	rg.Do(context.Background(), "rt-x", fn)
	rg.Do(context.Background(), "rt-x", fn)
	if calls.Load() != bound+2 || size() != bound {
		t.Fatalf("past the bound: %d calls, %d entries; want %d calls (unshared) and %d entries", calls.Load(), size(), bound+2, bound)
	}
	// The earlier results expire: the next refresh drops them and is
	// remembered again.
	clock.Advance(RefreshReuse)
	rg.Do(context.Background(), "rt-y", fn)
	rg.Do(context.Background(), "rt-y", fn)
	if calls.Load() != bound+3 || size() != 1 {
		t.Fatalf("after the window: %d calls, %d entries; want rt-y made once and alone remembered", calls.Load(), size())
	}
}
