package policy

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func mustSet(t testing.TB, src string) *Set {
	t.Helper()
	ps, err := Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	s, err := Compile(ps)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return s
}

func ptr[T any](v T) *T { return &v }

func TestCompileReportsErrorsByPolicyIDAndRulePath(t *testing.T) {
	rule := Rule{Claim: "c"}
	tests := []struct {
		name     string
		policies []Policy
		want     string
	}{
		{"policy without id is named by its index",
			[]Policy{{All: []Rule{rule}}, {All: []Rule{rule}}},
			`policy[0]: policy has no id (hint: give every policy a unique id such as "admins-only" (no spaces))` + "\n" +
				`policy[1]: policy has no id (hint: give every policy a unique id such as "admins-only" (no spaces))`},
		{"id with whitespace is rejected",
			[]Policy{{ID: "a b", All: []Rule{rule}}},
			`policy "a b": policy id "a b" contains whitespace or a control character (hint: give every policy a unique id such as "admins-only" (no spaces))`},
		{"overlong id is rejected",
			[]Policy{{ID: strings.Repeat("x", MaxIDLength+1), All: []Rule{rule}}},
			`policy "` + strings.Repeat("x", MaxIDLength+1) + `": policy id is longer than 128 bytes (hint: give every policy a unique id such as "admins-only" (no spaces))`},
		{"duplicate ids are rejected",
			[]Policy{{ID: "a", All: []Rule{rule}}, {ID: "a", Any: []Rule{rule}}},
			`policy "a": duplicate policy id "a" (hint: policy ids must be unique across all policy documents; rename one of them)`},
		{"both all and any",
			[]Policy{{ID: "a", All: []Rule{rule}, Any: []Rule{rule}}},
			`policy "a": policy has both all and any (hint: use exactly one; nest a group (- any: [...]) inside all to combine them)`},
		{"neither all nor any",
			[]Policy{{ID: "a"}},
			`policy "a": policy has neither all nor any (hint: add all: (every rule must hold) or any: (at least one rule must hold))`},
		{"empty all",
			[]Policy{{ID: "a", All: []Rule{}}},
			`policy "a": all is empty (hint: list at least one rule: - rule: {claim: NAME})`},
		{"rule without claim names its path",
			[]Policy{{ID: "a", All: []Rule{rule, {In: []string{"x"}}}}},
			`policy "a" all[1]: rule has no claim (hint: every rule needs claim: NAME)`},
		{"nested rule path",
			[]Policy{{ID: "a", Any: []Rule{{All: []Rule{rule, {Claim: "x", MinValue: ptr("nope")}}}}}},
			`policy "a" any[0].all[1]: minValue "nope" is neither a number nor an RFC 3339 timestamp (hint: write a number such as "18" or an RFC 3339 timestamp such as "2025-01-01T00:00:00Z")`},
		{"minValue above maxValue",
			[]Policy{{ID: "a", All: []Rule{{Claim: "x", MinValue: ptr("10"), MaxValue: ptr("9.99")}}}},
			`policy "a" all[0]: minValue "10" is greater than maxValue "9.99", so the rule can never hold (hint: swap the two values)`},
		{"bad maxValue",
			[]Policy{{ID: "a", All: []Rule{{Claim: "x", MaxValue: ptr("")}}}},
			`policy "a" all[0]: maxValue "" is neither a number nor an RFC 3339 timestamp (hint: write a number such as "18" or an RFC 3339 timestamp such as "2025-01-01T00:00:00Z")`},
		{"empty in and not-in lists",
			[]Policy{{ID: "a", All: []Rule{{Claim: "x", In: []string{}, NotIn: []string{}}}}},
			`policy "a" all[0]: in is empty, so the rule can never hold (hint: list at least one value or remove in)` + "\n" +
				`policy "a" all[0]: not-in is empty (hint: list at least one value or remove not-in)`},
		{"invalid regex",
			[]Policy{{ID: "a", All: []Rule{{Claim: "x", Matches: "a)"}}}},
			"policy \"a\" all[0]: invalid regular expression: unexpected ): `a)` (hint: matches uses RE2 syntax and must match the whole value)"},
		{"overlong regex",
			[]Policy{{ID: "a", All: []Rule{{Claim: "x", Matches: strings.Repeat("a", MaxPatternLength+1)}}}},
			`policy "a" all[0]: matches is longer than 1024 bytes`},
		{"exists false with constraints",
			[]Policy{{ID: "a", All: []Rule{{Claim: "x", Exists: ptr(false), Matches: "y"}}}},
			`policy "a" all[0]: exists: false cannot be combined with in, not-in, minValue, maxValue or matches (hint: those constraints need the claim to be present; put them in another rule)`},
		{"group that is also a claim rule",
			[]Policy{{ID: "a", All: []Rule{{Claim: "x", Any: []Rule{rule}}}}},
			`policy "a" all[0]: a group cannot also be a claim rule (hint: move claim and its constraints into a rule inside the group)`},
		{"group with both all and any",
			[]Policy{{ID: "a", All: []Rule{{All: []Rule{rule}, Any: []Rule{rule}}}}},
			`policy "a" all[0]: group has both all and any (hint: use exactly one; nest a group (- any: [...]) inside all to combine them)`},
		{"overlong claim",
			[]Policy{{ID: "a", All: []Rule{{Claim: strings.Repeat("c", MaxClaimLength+1)}}}},
			`policy "a" all[0]: claim is longer than 1024 bytes`},
		{"groups nested too deep",
			[]Policy{{ID: "a", All: nest(MaxDepth)}},
			`policy "a" ` + strings.TrimSuffix(strings.Repeat("all[0].", MaxDepth), ".") + `: groups are nested more than 16 deep (hint: flatten the policy)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Compile(tt.policies)
			if err == nil {
				t.Fatalf("Compile succeeded, want error %q", tt.want)
			}
			if s != nil {
				t.Error("Compile returned a set along with an error")
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error is %T, want ErrorList", err)
			}
			if err.Error() != tt.want {
				t.Errorf("got  %s\nwant %s", err, tt.want)
			}
		})
	}
}

// nest returns a rule list whose groups nest depth levels below the policy.
func nest(depth int) []Rule {
	r := []Rule{{Claim: "c"}}
	for i := 0; i < depth; i++ {
		r = []Rule{{All: r}}
	}
	return r
}

func TestNestingUpToTheLimitCompiles(t *testing.T) {
	if _, err := Compile([]Policy{{ID: "a", All: nest(MaxDepth - 1)}}); err != nil {
		t.Fatalf("depth %d rejected: %v", MaxDepth, err)
	}
}

func TestCompileFromJSONConfig(t *testing.T) {
	const cfg = `[{"id":"admins-only","all":[{"claim":"groups","in":["admins"]},{"any":[{"claim":"age","minValue":"18"},{"claim":"guardian","exists":true}]}]}]`
	var ps []Policy
	if err := json.Unmarshal([]byte(cfg), &ps); err != nil {
		t.Fatal(err)
	}
	s, err := Compile(ps)
	if err != nil {
		t.Fatal(err)
	}
	d := s.Evaluate(map[string]any{"groups": []any{"admins"}, "age": 17.0, "guardian": "mum"}, []string{"admins-only"})
	if !d.Allow || d.Policy != "admins-only" {
		t.Fatalf("got %+v, want allow by admins-only", d)
	}
	out, _ := json.Marshal(ps)
	if string(out) != cfg {
		t.Errorf("AST does not round-trip through JSON:\n got %s\nwant %s", out, cfg)
	}
}

func TestOversizedDocumentIsRejectedBeforeParsing(t *testing.T) {
	src := make([]byte, MaxSourceSize+1)
	_, err := Parse("big.yaml", src)
	want := "big.yaml:1:1: document is larger than 1048576 bytes (hint: split the policies into several files)"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}

func TestErrorsAreCappedPerDocument(t *testing.T) {
	var b strings.Builder
	b.WriteString("policy:\n")
	for i := 0; i < 200; i++ {
		b.WriteString("  - id: a\n    bogus: 1\n")
	}
	_, err := Parse("many.yaml", []byte(b.String()))
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("got %v", err)
	}
	if len(list) != maxErrors {
		t.Errorf("got %d errors, want the cap %d", len(list), maxErrors)
	}
}

func TestCheckRejectsUnknownPolicyIDs(t *testing.T) {
	s := mustSet(t, "policy:\n  - id: b\n    all: [{rule: {claim: c}}]\n  - id: a\n    all: [{rule: {claim: c}}]\n")
	if err := s.Check([]string{"a", "b"}); err != nil {
		t.Errorf("known ids rejected: %v", err)
	}
	if err := s.Check(nil); err != nil {
		t.Errorf("no ids rejected: %v", err)
	}
	err := s.Check([]string{"a", "x"})
	if want := `unknown policy "x" (defined: "a", "b")`; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
	err = s.Check([]string{"x", "y"})
	if want := `unknown policies "x", "y" (defined: "a", "b")`; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
	var empty *Set
	if err := empty.Check([]string{"a"}); err == nil || err.Error() != `unknown policy "a" (none are defined)` {
		t.Errorf("nil set: got %v", err)
	}
	if got := s.IDs(); strings.Join(got, ",") != "a,b" {
		t.Errorf("IDs() = %v", got)
	}
}

func TestUnknownPolicyIDFailsClosed(t *testing.T) {
	s := mustSet(t, "policy:\n  - id: a\n    all: [{rule: {claim: c}}]\n")
	d := s.Evaluate(map[string]any{"c": 1.0}, []string{"typo"})
	if d.Allow {
		t.Fatal("unknown policy id allowed access")
	}
	var nilSet *Set
	if d := nilSet.Evaluate(map[string]any{}, []string{"a"}); d.Allow {
		t.Fatal("nil set allowed access")
	}
	if got := d.Explanation(); got != `denied: policy "typo": unknown policy` {
		t.Errorf("explanation %q", got)
	}
}

func TestPublicTextNamesOnlyPolicyIDs(t *testing.T) {
	s := mustSet(t, "policy:\n  - id: admins-only\n    all: [{rule: {claim: groups, in: [admins]}}]\n  - id: staff\n    all: [{rule: {claim: groups, in: [staff]}}]\n")
	claims := map[string]any{"groups": []any{"secret-project-x"}}
	one := s.Evaluate(claims, []string{"admins-only"})
	if got, want := one.Public(), `access denied by policy "admins-only"`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	two := s.Evaluate(claims, []string{"admins-only", "staff"})
	if got, want := two.Public(), `access denied: none of the policies "admins-only", "staff" is satisfied`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if strings.Contains(two.Explanation(), "secret-project-x") == false {
		t.Error("the operator explanation should quote the claim value")
	}
	allow := s.Evaluate(map[string]any{"groups": []any{"staff"}}, []string{"admins-only", "staff"})
	if got, want := allow.Public(), `access allowed by policy "staff"`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if allow.Failures() != nil {
		t.Error("an allowing decision has failures")
	}
}

func TestFailuresListEachPolicy(t *testing.T) {
	s := mustSet(t, "policy:\n  - id: a\n    any: [{rule: {claim: x}}, {rule: {claim: y, in: [1]}}]\n  - id: b\n    all: [{rule: {claim: z}}]\n")
	d := s.Evaluate(map[string]any{"y": 2.0}, []string{"a", "b", "c"})
	want := []Failure{
		{Policy: "a", Rule: "any[0]", Reason: `claim "x" is missing`},
		{Policy: "a", Rule: "any[1]", Reason: `claim "y" = 2, not in [1]`},
		{Policy: "b", Rule: "all[0]", Reason: `claim "z" is missing`},
		{Policy: "c", Reason: "unknown policy"},
	}
	got := d.Failures()
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("failure %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestGoValueTypesFromCode(t *testing.T) {
	s := mustSet(t, `policy:
  - id: n
    all: [{rule: {claim: n, in: ["7"], minValue: 7, maxValue: 7, matches: "7"}}]
  - id: list
    all: [{rule: {claim: l, in: [b], not-in: [z], matches: "[a-c]"}}]
`)
	for _, v := range []any{7, int8(7), int16(7), int32(7), int64(7), uint(7), uint8(7), uint16(7), uint32(7), uint64(7), float32(7), 7.0, json.Number("7"), json.Number("7.0"), "7"} {
		if d := s.Evaluate(map[string]any{"n": v}, []string{"n"}); !d.Allow {
			t.Errorf("%T(%v) denied: %s", v, v, d.Explanation())
		}
	}
	for _, v := range []any{8, float32(6.5), json.Number("07"), "seven", struct{}{}, []int{7}} {
		if d := s.Evaluate(map[string]any{"n": v}, []string{"n"}); d.Allow {
			t.Errorf("%T(%v) allowed", v, v)
		}
	}
	if d := s.Evaluate(map[string]any{"l": []string{"a", "b"}}, []string{"list"}); !d.Allow {
		t.Errorf("[]string denied: %s", d.Explanation())
	}
	d := s.Evaluate(map[string]any{"l": []string{"b", "z"}}, []string{"list"})
	if want := `denied: policy "list" all[0]: claim "l" = ["b","z"], element "z" is excluded by not-in [z]`; d.Explanation() != want {
		t.Errorf("got %s", d.Explanation())
	}
}

func TestNaNAndInfinityAreNotComparable(t *testing.T) {
	s := mustSet(t, "policy:\n  - id: a\n    all: [{rule: {claim: n, minValue: 0}}]\n")
	for _, v := range []any{nan(), inf()} {
		if d := s.Evaluate(map[string]any{"n": v}, []string{"a"}); d.Allow {
			t.Errorf("%v allowed", v)
		}
	}
}

func TestLongValuesAreShortenedInExplanations(t *testing.T) {
	s := mustSet(t, "policy:\n  - id: a\n    all: [{rule: {claim: g, in: [x]}}]\n")
	long := strings.Repeat("é", 500)
	items := make([]any, 50)
	for i := range items {
		items[i] = long
	}
	got := s.Evaluate(map[string]any{"g": items}, []string{"a"}).Explanation()
	if len(got) > 2000 {
		t.Errorf("explanation is %d bytes long", len(got))
	}
	if !strings.Contains(got, "…(40 more)") {
		t.Errorf("explanation does not say how many elements it left out: %s", got)
	}
}

func TestDecimalComparison(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"0", "-0", 0}, {"0.0", "0e5", 0}, {"1", "1.000", 0}, {"10", "1e1", 0}, {"100", "1E+2", 0},
		{"0.001", "1e-3", 0}, {"12.5", "125e-1", 0}, {"1", "2", -1}, {"-1", "-2", 1}, {"-1", "1", -1},
		{"9", "10", -1}, {"0.9", "0.10", 1}, {"1.01", "1.1", -1}, {"123456789012345678901", "123456789012345678902", -1},
		{"1e1000", "1e999", 1}, {"-1e-1000", "0", -1}, {"0.5", "0.50001", -1},
	}
	for _, tt := range tests {
		a, ok1 := parseDecimal(tt.a)
		b, ok2 := parseDecimal(tt.b)
		if !ok1 || !ok2 {
			t.Fatalf("%s or %s did not parse", tt.a, tt.b)
		}
		if got := cmpDecimal(a, b); got != tt.want {
			t.Errorf("cmp(%s, %s) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := cmpDecimal(b, a); got != -tt.want {
			t.Errorf("cmp(%s, %s) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
	for _, bad := range []string{"", "-", "01", "1.", ".5", "+1", "1e", "1e+", "0x10", "Inf", "NaN", "1_000", " 1", "1 ", "1e1000000000", "--1"} {
		if _, ok := parseDecimal(bad); ok {
			t.Errorf("%q parsed as a number", bad)
		}
	}
}

func TestTimestampParsing(t *testing.T) {
	good := map[string]int64{
		"1970-01-01T00:00:00Z":      0,
		"2024-01-01T00:00:00Z":      1704067200,
		"2024-01-01T01:00:00+01:00": 1704067200,
		"2023-12-31T23:00:00-01:00": 1704067200,
		"2024-02-29T00:00:00z":      1709164800,
		"2000-02-29t00:00:00.5Z":    951782400,
		"1969-12-31T23:59:59Z":      -1,
	}
	for s, want := range good {
		got, ok := parseTimestamp(s)
		if !ok || got.sec != want {
			t.Errorf("%s: got %v %v, want %d", s, got, ok, want)
		}
	}
	for _, s := range []string{"2024-01-01", "2024-01-01T00:00:00", "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2024-13-01T00:00:00Z", "2024-01-01T24:00:00Z", "2024-01-01T00:00:60Z", "2024-01-01T00:00:00.Z", "2024-01-01T00:00:00.1234567891Z", "2024-01-01T00:00:00+0100", "2024-01-01T00:00:00+24:00", "2024-01-01 00:00:00Z", "2024-01-01T00:00:00Zjunk"} {
		if _, ok := parseTimestamp(s); ok {
			t.Errorf("%q parsed as a timestamp", s)
		}
	}
	var buf numBuf
	if got := string(appendEpoch(buf[:0], instant{sec: -2, nsec: 500_000_000})); got != "-1.500000000" {
		t.Errorf("appendEpoch(-1.5s) = %s", got)
	}
}

// TestMergeLetsTheSecondSetWin: a configured policy overrides a stored one
// of the same id; the others of both sets are kept, and neither set changes.
func TestMergeLetsTheSecondSetWin(t *testing.T) {
	stored := mustSet(t, "policy:\n  - id: staff\n    all:\n      - rule: {claim: dept, in: [sales]}\n  - id: stored-only\n    all:\n      - rule: {claim: dept}\n")
	config := mustSet(t, "policy:\n  - id: staff\n    all:\n      - rule: {claim: dept, in: [research]}\n")
	m := Merge(stored, config)
	if got := strings.Join(m.IDs(), ","); got != "staff,stored-only" {
		t.Fatalf("ids %s", got)
	}
	research := map[string]any{"dept": "research"}
	if !m.Evaluate(research, []string{"staff"}).Allow || m.Evaluate(map[string]any{"dept": "sales"}, []string{"staff"}).Allow {
		t.Fatal("the second set's staff policy did not win")
	}
	if !m.Evaluate(research, []string{"stored-only"}).Allow {
		t.Fatal("a policy only the first set holds is lost")
	}
	if !stored.Evaluate(map[string]any{"dept": "sales"}, []string{"staff"}).Allow || config.Has("stored-only") {
		t.Fatal("Merge changed an input set")
	}
	if Merge(nil, config) != config || Merge(stored, nil) != stored || Merge(nil, nil) != nil {
		t.Fatal("a nil side")
	}
}
