package module

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/gatehouse-auth/gatehouse/module/internal/directory"
	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/policy"
)

// swappedPolicies serves whichever Static it holds now: a domain whose
// policies change at run time.
type swappedPolicies struct {
	directory.Directory
	cur atomic.Pointer[directory.Static]
}

func (s *swappedPolicies) Snapshot(ctx context.Context, d string) (*directory.Snapshot, error) {
	return s.cur.Load().Snapshot(ctx, d)
}

func staticWithPolicies(t *testing.T, src string) *directory.Static {
	t.Helper()
	var set *policy.Set
	if src != "" {
		ps, err := policy.Parse("p.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		if set, err = policy.Compile(ps); err != nil {
			t.Fatal(err)
		}
	}
	s, err := directory.NewStatic(directory.StaticDomain{Domain: &identity.Domain{DomainSettings: identity.DomainSettings{Issuer: "https://auth.example.com"}}, Policies: set})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestPolicyRef_FollowsTheSnapshotAndFailsClosedWhenAPolicyIsGone: a
// handler's policies are read from the domain's current snapshot (a change
// applies without a reload); when a policy it names is no longer defined,
// every request is denied and the error is logged once per snapshot.
func TestPolicyRef_FollowsTheSnapshotAndFailsClosedWhenAPolicyIsGone(t *testing.T) {
	sw := &swappedPolicies{}
	sw.cur.Store(staticWithPolicies(t, "policy:\n  - id: staff\n    all:\n      - rule: {claim: dept, in: [research]}\n"))
	core, logs := observer.New(zapcore.ErrorLevel)
	ref, err := newPolicyRef(sw, "", []string{"staff"}, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	research, sales := map[string]any{"dept": "research"}, map[string]any{"dept": "sales"}
	decide := func(claims map[string]any) (bool, error) {
		d, err := ref.evaluate(context.Background(), claims)
		return err == nil && d.Allow, err
	}
	if ok, _ := decide(research); !ok {
		t.Fatal("research denied by the first snapshot")
	}
	sw.cur.Store(staticWithPolicies(t, "policy:\n  - id: staff\n    all:\n      - rule: {claim: dept, in: [sales]}\n"))
	if ok, _ := decide(research); ok {
		t.Fatal("the changed policy did not apply")
	}
	if ok, _ := decide(sales); !ok {
		t.Fatal("sales denied by the changed policy")
	}
	sw.cur.Store(staticWithPolicies(t, "policy:\n  - id: other\n    all:\n      - rule: {claim: dept}\n"))
	for range 3 {
		if ok, err := decide(sales); ok || err == nil || !strings.Contains(err.Error(), `"staff"`) {
			t.Fatalf("a policy that is gone: allowed=%v, %v", ok, err)
		}
	}
	if n := logs.FilterMessageSnippet("policies cannot be applied").Len(); n != 1 {
		t.Fatalf("logged %d times for one snapshot, want once", n)
	}
	sw.cur.Store(staticWithPolicies(t, ""))
	if ok, _ := decide(sales); ok {
		t.Fatal("a domain without policies allowed")
	}
	if n := logs.FilterMessageSnippet("policies cannot be applied").Len(); n != 2 {
		t.Fatalf("a new snapshot without the policy was not logged: %d", n)
	}
	// Refused at provision: a policy the domain does not define now.
	if _, err := newPolicyRef(sw, "", []string{"staff"}, zap.NewNop()); err == nil || !strings.Contains(err.Error(), "has no policies") {
		t.Fatalf("provisioning against a domain without policies: %v", err)
	}
}

// newPolicyRef is a policyRef checked now (as App.policyRef checks one
// whose policies the configuration defines).
func newPolicyRef(dir directory.Directory, domain string, ids []string, logger *zap.Logger) (*policyRef, error) {
	p := &policyRef{dir: dir, domain: domain, ids: ids, logger: logger}
	if err := p.check(context.Background()); err != nil {
		return nil, err
	}
	return p, nil
}
