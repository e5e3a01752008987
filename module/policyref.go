package module

import (
	"context"
	"fmt"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/gatehouse-auth/gatehouse/module/internal/directory"
	"github.com/gatehouse-auth/gatehouse/policy"
)

// policyRef is a handler's reference to policies of a domain, applied to
// every request: they are read from the domain's current snapshot, so a
// changed policy applies without a reload. A policy the handler names that
// the snapshot no longer defines fails the request closed, with an error
// logged once per snapshot.
type policyRef struct {
	dir    directory.Directory
	domain string
	ids    []string
	logger *zap.Logger
	// checked is the last snapshot found to define every id.
	checked atomic.Pointer[directory.Snapshot]
	// reported is the version (+1) of the last snapshot whose missing
	// policies were logged.
	reported atomic.Uint64
}

// check fails unless the domain's current snapshot defines every id.
func (p *policyRef) check(ctx context.Context) error {
	snap, err := p.dir.Snapshot(ctx, p.domain)
	if err != nil {
		return fmt.Errorf("%s: %w", domainLabel(p.domain), err)
	}
	if snap.Policies == nil {
		return fmt.Errorf("policy %v is not defined; %s has no policies (add them with `policy_file` or a `policy` block, or through the management API)", p.ids, domainLabel(p.domain))
	}
	if err := snap.CheckPolicies(p.ids); err != nil {
		return err
	}
	p.checked.Store(snap)
	return nil
}

// policyRef refers a handler (who) to policies of a domain. For a
// configured domain, ids its configuration defines are checked now (a typo
// stops provisioning, `caddy validate` included); a policy stored through
// the management API can only be seen once the store is open, so when one
// is not in the configuration the check runs when the app starts, and a
// policy defined nowhere fails the start. A domain only the store holds is
// checked per request (deferredPolicyRef).
func (a *App) policyRef(who, domain string, ids []string, configured bool, logger *zap.Logger) *policyRef {
	p := deferredPolicyRef(a.directory, domain, ids, logger)
	if !configured || p.check(context.Background()) == nil {
		return p
	}
	a.whenStarted(func() error {
		if err := p.check(context.Background()); err != nil {
			return fmt.Errorf("%s: %w", who, err)
		}
		return nil
	})
	return p
}

// deferredPolicyRef refers to policies of a domain that is not configured
// (one stored through the management API): nothing is checked now; a
// policy the domain does not define when a request comes fails it closed.
func deferredPolicyRef(dir directory.Directory, domain string, ids []string, logger *zap.Logger) *policyRef {
	return &policyRef{dir: dir, domain: domain, ids: ids, logger: logger}
}

// evaluate decides claims against the policies of the current snapshot.
// An error means the decision could not be made (the directory could not
// answer, or a policy is no longer defined): the caller denies.
func (p *policyRef) evaluate(ctx context.Context, claims map[string]any) (policy.Decision, error) {
	snap, err := p.dir.Snapshot(ctx, p.domain)
	if err != nil {
		p.report(0, err)
		return policy.Decision{}, err
	}
	if p.checked.Load() != snap {
		if err := snap.CheckPolicies(p.ids); err != nil {
			p.report(snap.Version+1, err)
			return policy.Decision{}, err
		}
		p.checked.Store(snap)
	}
	return snap.Policies.Evaluate(claims, p.ids), nil
}

// report logs why policies could not be applied, once per snapshot
// version (every time for a directory that cannot answer: version 0).
func (p *policyRef) report(version uint64, err error) {
	if version != 0 && p.reported.Swap(version) == version {
		return
	}
	p.logger.Error("policies cannot be applied; requests are denied until they are defined again",
		zap.String("domain", p.domain), zap.Strings("policies", p.ids), zap.Error(err))
}
