package mgmtapi

import (
	"reflect"
	"strings"
	"testing"

	"github.com/gatehouse-auth/gatehouse/policy"
)

const staffYAML = `policy:
  - id: staff
    description: "staff only"
    all:
      - rule:
          claim: groups
          in: [staff, admins]
      - any:
          - rule:
              claim: level
              minValue: "3"
          - rule:
              claim: email
              matches: '.*@example\.com'
`

func TestPoliciesCRUD(t *testing.T) {
	f := newFixture(t, withConfig(testConfig()))
	f.createDomain("acme")
	// YAML in, JSON out.
	r := f.do(req{method: "PUT", path: "/v1/domain/acme/policy/staff", body: staffYAML, ctype: "application/yaml"})
	r.must(t, 201)
	var p Policy
	r.json(t, &p)
	if p.ID != "staff" || p.Description != "staff only" || len(p.All) != 2 || p.All[1].Any[0].MinValue == nil || p.Managed != "api" {
		t.Fatalf("stored %+v", p)
	}
	etag := r.header.Get("ETag")
	// YAML out reads back as the same policy.
	r = f.do(req{method: "GET", path: "/v1/domain/acme/policy/staff", header: map[string]string{"Accept": "application/yaml"}})
	if r.must(t, 200).header.Get("Content-Type") != "application/yaml" {
		t.Fatalf("Content-Type %q", r.header.Get("Content-Type"))
	}
	back, err := policy.Parse("answer", r.body)
	if err != nil || !reflect.DeepEqual(back[0], p.Policy) {
		t.Fatalf("YAML answer does not read back: %v\n%s", err, r.body)
	}
	// JSON in: the same model; a PUT of what was read is accepted.
	r = f.do(req{method: "PUT", path: "/v1/domain/acme/policy/staff", body: p, header: map[string]string{"If-Match": etag}})
	r.must(t, 200)
	if r.header.Get("ETag") == etag {
		t.Fatal("the ETag did not change")
	}
	f.do(req{method: "PUT", path: "/v1/domain/acme/policy/staff", body: p, header: map[string]string{"If-Match": etag}}).problem(t, 412, TypeStaleETag)
	f.do(req{method: "PUT", path: "/v1/domain/acme/policy/staff", body: p, header: map[string]string{"If-None-Match": "*"}}).problem(t, 412, TypeStaleETag)

	// An invalid policy: the parser's error, positioned, and nothing
	// written.
	v := f.directoryVersion()
	bad := strings.Replace(staffYAML, "          claim: groups", "          claim: groups\n          bogus: 1", 1)
	pr := f.do(req{method: "PUT", path: "/v1/domain/acme/policy/staff", body: bad, ctype: "application/yaml"}).problem(t, 400, TypeInvalidPolicy)
	if !strings.Contains(pr.Detail, "body:7:11:") || !strings.Contains(pr.Detail, `unknown key "bogus"`) || pr.Errors[0].Field != "7:11" {
		t.Fatalf("invalid policy %+v", pr)
	}
	pr = f.do(req{method: "PUT", path: "/v1/domain/acme/policy/p2", body: map[string]any{"all": []map[string]any{{"claim": "x", "in": []string{}}}}}).problem(t, 400, TypeInvalidPolicy)
	if !strings.Contains(pr.Detail, `policy "p2" all[0]`) {
		t.Fatalf("invalid JSON policy %+v", pr)
	}
	f.do(req{method: "PUT", path: "/v1/domain/acme/policy/p2", body: map[string]any{"any": []map[string]any{{"claim": "x", "nope": 1}}}}).problem(t, 400, TypeInvalidBody)
	f.do(req{method: "PUT", path: "/v1/domain/acme/policy/p2", body: map[string]any{"id": "p3", "any": []map[string]any{{"claim": "x"}}}}).problem(t, 400, TypeInvalidField)
	f.do(req{method: "PUT", path: "/v1/domain/acme/policy/p2", body: "policy: []", ctype: "text/plain"}).problem(t, 415, TypeUnsupportedMediaType)
	if f.directoryVersion() != v {
		t.Fatal("a refused policy wrote")
	}

	// Configured policies and clients: the portal client names "staff"
	// in the configuration; a configured policy cannot be written.
	var l List[PolicyItem]
	f.get("/v1/domain/acme/policy").must(t, 200).json(t, &l)
	if len(l.Items) != 1 || l.Items[0].ID != "staff" {
		t.Fatalf("list %+v", l)
	}
	f.do(req{method: "PUT", path: "/v1/domain/corp/policy/staff", body: staffYAML, ctype: "application/yaml"}).must(t, 201)
	f.do(req{method: "DELETE", path: "/v1/domain/corp/policy/staff"}).problem(t, 409, TypeConflict)

	f.do(req{method: "DELETE", path: "/v1/domain/acme/policy/staff"}).must(t, 200)
	f.get("/v1/domain/acme/policy/staff").problem(t, 404, TypeNotFound)
}
