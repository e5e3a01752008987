package module

import (
	"net/url"
	"slices"
	"testing"
)

// TestAdminSegments: a sub is one path segment however it is spelt (a
// slash in it is escaped).
func TestAdminSegments(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:2019/gatehouse/domains/corp/users/team%2Falice%20b/revoke")
	segs, err := adminSegments(u)
	if err != nil || !slices.Equal(segs, []string{"domains", "corp", "users", "team/alice b", "revoke"}) {
		t.Fatalf("segments %q, %v", segs, err)
	}
}

// TestAdminDomainName: "default" is the unnamed domain, unless a domain is
// called that.
func TestAdminDomainName(t *testing.T) {
	app := func(names ...string) *App {
		a := &App{}
		a.registry = newRegistry(a)
		for _, n := range names {
			a.registry.configured[n] = &domainRuntime{name: n}
		}
		a.registry.publish()
		return a
	}
	unnamed := app("", "corp")
	if got := unnamed.adminDomainName("default"); got != "" {
		t.Fatalf("default with an unnamed domain: %q", got)
	}
	if got := unnamed.adminDomainName("corp"); got != "corp" {
		t.Fatalf("corp: %q", got)
	}
	named := app("", "default")
	if got := named.adminDomainName("default"); got != "default" {
		t.Fatalf("default with a domain of that name: %q", got)
	}
	if got := app("corp").adminDomainName("default"); got != "default" {
		t.Fatalf("default without an unnamed domain: %q", got)
	}
}
