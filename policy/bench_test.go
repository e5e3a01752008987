package policy

import (
	"encoding/json"
	"testing"
)

const benchPolicies = `policy:
  - id: admins-only
    all:
      - rule: {claim: groups, in: [admins, ops]}
      - rule: {claim: email_verified, in: ["true"]}
      - rule: {claim: email, matches: '[^@]+@example\.com'}
  - id: adults
    all:
      - rule: {claim: age, minValue: 18, maxValue: 130}
      - rule: {claim: address.country, in: [NL, BE], not-in: [XX]}
      - rule: {claim: auth_time, minValue: "2024-01-01T00:00:00Z"}
      - rule: {claim: updated_at, maxValue: "2100-01-01T00:00:00Z"}
      - rule: {claim: suspended, exists: false}
  - id: nested
    any:
      - all:
          - rule: {claim: groups, in: [nobody]}
      - any:
          - rule: {claim: level, minValue: "2.5"}
`

func benchClaims() map[string]any {
	var c map[string]any
	_ = json.Unmarshal([]byte(`{
		"sub": "u-1", "groups": ["dev", "qa", "ops"], "email_verified": true,
		"email": "ann@example.com", "age": 30, "address": {"country": "NL"},
		"auth_time": 1717200000, "updated_at": "2024-06-01T12:00:00Z", "level": "3"
	}`), &c)
	return c
}

func TestEvaluateAllocatesNothing(t *testing.T) {
	s := mustSet(t, benchPolicies)
	claims := benchClaims()
	numClaims := map[string]any{}
	for k, v := range claims {
		numClaims[k] = v
	}
	numClaims["age"] = json.Number("30")
	numClaims["level"] = 3
	denied := map[string]any{"groups": []any{"dev"}, "age": 12.0, "level": "1", "email": "x@evil.org", "email_verified": false}
	cases := []struct {
		name   string
		claims map[string]any
		ids    []string
		allow  bool
	}{
		{"allow with in, matches and bool", claims, []string{"admins-only"}, true},
		{"allow with numbers, timestamps, paths and exists", claims, []string{"adults"}, true},
		{"allow with json.Number and int claims", numClaims, []string{"adults", "nested"}, true},
		{"allow through nested groups", claims, []string{"nested"}, true},
		{"deny across every policy", denied, []string{"admins-only", "adults", "nested", "unknown"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var d Decision
			allocs := testing.AllocsPerRun(200, func() { d = s.Evaluate(tc.claims, tc.ids) })
			if d.Allow != tc.allow {
				t.Fatalf("Allow = %v, want %v: %s", d.Allow, tc.allow, d.Explanation())
			}
			if allocs != 0 {
				t.Errorf("Evaluate allocated %.1f times per call, want 0", allocs)
			}
		})
	}
}

func BenchmarkEvaluateAllow(b *testing.B) {
	s := mustSet(b, benchPolicies)
	claims := benchClaims()
	ids := []string{"adults"}
	b.ReportAllocs()
	for b.Loop() {
		if !s.Evaluate(claims, ids).Allow {
			b.Fatal("denied")
		}
	}
}

func BenchmarkEvaluateAllowRegexAndIn(b *testing.B) {
	s := mustSet(b, benchPolicies)
	claims := benchClaims()
	ids := []string{"admins-only"}
	b.ReportAllocs()
	for b.Loop() {
		if !s.Evaluate(claims, ids).Allow {
			b.Fatal("denied")
		}
	}
}

func BenchmarkEvaluateDeny(b *testing.B) {
	s := mustSet(b, benchPolicies)
	claims := map[string]any{"groups": []any{"dev"}, "age": 12.0, "level": "1"}
	ids := []string{"admins-only", "adults", "nested"}
	b.ReportAllocs()
	for b.Loop() {
		if s.Evaluate(claims, ids).Allow {
			b.Fatal("allowed")
		}
	}
}

func BenchmarkEvaluateDenyWithExplanation(b *testing.B) {
	s := mustSet(b, benchPolicies)
	claims := map[string]any{"groups": []any{"dev"}, "age": 12.0, "level": "1"}
	ids := []string{"admins-only", "adults", "nested"}
	b.ReportAllocs()
	for b.Loop() {
		if s.Evaluate(claims, ids).Explanation() == "" {
			b.Fatal("no explanation")
		}
	}
}

func BenchmarkParseAndCompile(b *testing.B) {
	src := []byte(benchPolicies)
	b.ReportAllocs()
	for b.Loop() {
		ps, err := Parse("bench.yaml", src)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Compile(ps); err != nil {
			b.Fatal(err)
		}
	}
}
