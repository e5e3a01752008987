package issuer

import (
	"sync"
	"testing"
)

// race runs fn n times at once and returns the statuses.
func race(n int, fn func() tokenResult) []tokenResult {
	out := make([]tokenResult, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for k := 0; k < n; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[k] = fn()
		}()
	}
	close(start)
	wg.Wait()
	return out
}

func TestToken_ConcurrentCodeRedemptionHasOneWinnerAndRevokesIt(t *testing.T) {
	f := newFixture(t)
	code := f.code(f.browser(), authParams("web", webRedirect))
	res := race(4, func() tokenResult { return f.token(codeForm(code, webRedirect), "web", webSecret) })
	var winners []tokenResult
	for _, r := range res {
		switch {
		case r.status == 200:
			winners = append(winners, r)
		case r.err.Code != "invalid_grant":
			t.Fatalf("loser got %d %v", r.status, r.raw)
		}
	}
	// Exactly one request consumes the code; the others are replays, which
	// revoke its family. When a replay's revocation lands before the
	// consumer mints, the consumer is refused too (nothing is issued into
	// a revoked family), so there is at most one winner, and nothing it got
	// survives.
	if len(winners) > 1 {
		t.Fatalf("%d winners", len(winners))
	}
	if len(winners) == 1 {
		if m := f.introspect(winners[0].resp.AccessToken, "web", webSecret); m["active"] != false {
			t.Fatalf("winner's token survived a concurrent replay: %v", m)
		}
	}
}

func TestToken_ConcurrentRefreshHasOneWinnerAndKeepsTheFamilyWithinGrace(t *testing.T) {
	f := newFixture(t)
	tr := f.codeTokens("web", webRedirect, webSecret)
	res := race(4, func() tokenResult { return f.token(refreshForm(tr.resp.RefreshToken), "web", webSecret) })
	var winner *tokenResult
	for k, r := range res {
		switch {
		case r.status == 200:
			if winner != nil {
				t.Fatal("two winners")
			}
			winner = &res[k]
		case r.err.Code != "invalid_grant":
			t.Fatalf("loser got %d %v", r.status, r.raw)
		}
	}
	if winner == nil {
		t.Fatal("no winner")
	}
	if r := f.token(refreshForm(winner.resp.RefreshToken), "web", webSecret); r.status != 200 {
		t.Fatalf("the winner's successor was revoked by a concurrent retry: %v", r.raw)
	}
}
