package policy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the -- want -- sections of testdata/cases/*.txt")

// A case file is a comment followed by sections, each starting with a line
// "-- name --":
//
//	-- policy.yaml --   the document, parsed as file "policy.yaml"
//	-- claims.jsonl --  optional: one claims object per line ("#" lines are comments)
//	-- ids --           optional: policy ids evaluated together (OR); without
//	                    it every claims line is evaluated against each policy alone
//	-- want --          parse errors, or for each claims line its decisions
type section struct {
	name string
	body string
}

func splitSections(data string) (comment string, secs []section) {
	lines := strings.SplitAfter(data, "\n")
	cur := -1
	var b strings.Builder
	flush := func() {
		if cur < 0 {
			comment = b.String()
		} else {
			secs[cur].body = b.String()
		}
		b.Reset()
	}
	for _, l := range lines {
		t := strings.TrimRight(l, "\r\n")
		if strings.HasPrefix(t, "-- ") && strings.HasSuffix(t, " --") && len(t) > 6 {
			flush()
			secs = append(secs, section{name: strings.TrimSpace(t[3 : len(t)-3])})
			cur = len(secs) - 1
			continue
		}
		b.WriteString(l)
	}
	flush()
	return comment, secs
}

func joinSections(comment string, secs []section) string {
	var b strings.Builder
	b.WriteString(comment)
	for _, s := range secs {
		fmt.Fprintf(&b, "-- %s --\n", s.name)
		b.WriteString(s.body)
		if s.body != "" && !strings.HasSuffix(s.body, "\n") {
			b.WriteString("\n")
		}
	}
	return b.String()
}

func TestGoldenCases(t *testing.T) {
	files, err := filepath.Glob("testdata/cases/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden cases found: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			comment, secs := splitSections(string(data))
			get := func(name string) (string, bool) {
				for _, s := range secs {
					if s.name == name {
						return s.body, true
					}
				}
				return "", false
			}
			src, ok := get("policy.yaml")
			if !ok {
				t.Fatal("case has no -- policy.yaml -- section")
			}
			claims, _ := get("claims.jsonl")
			idsText, hasIDs := get("ids")
			got := runCase(t, src, claims, strings.Fields(idsText), hasIDs)
			want, hasWant := get("want")
			if *update {
				found := false
				for i := range secs {
					if secs[i].name == "want" {
						secs[i].body, found = got, true
					}
				}
				if !found {
					secs = append(secs, section{name: "want", body: got})
				}
				if err := os.WriteFile(file, []byte(joinSections(comment, secs)), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if !hasWant {
				t.Fatal("case has no -- want -- section; run go test -run TestGoldenCases -update")
			}
			if got != want {
				t.Errorf("output differs from the want section (run with -update after checking):\n--- got ---\n%s--- want ---\n%s", got, want)
			}
		})
	}
}

// runCase produces the want text of a case and checks the invariants that
// hold for every case: decisions do not depend on how numbers were decoded,
// the JSON form of the AST compiles to the same decisions, and the public
// text never quotes a claim value.
func runCase(t *testing.T, src, claimsText string, ids []string, hasIDs bool) string {
	t.Helper()
	policies, err := Parse("policy.yaml", []byte(src))
	if err != nil {
		if _, ok := err.(ErrorList); !ok {
			t.Fatalf("Parse returned %T, want ErrorList", err)
		}
		if claimsText != "" {
			t.Fatal("a case with parse errors must not have claims")
		}
		return "error:\n" + err.Error() + "\n"
	}
	set, err := Compile(policies)
	if err != nil {
		t.Fatalf("Compile of parsed policies failed: %v", err)
	}
	js, err := json.Marshal(policies)
	if err != nil {
		t.Fatal(err)
	}
	var again []Policy
	if err := json.Unmarshal(js, &again); err != nil {
		t.Fatal(err)
	}
	set2, err := Compile(again)
	if err != nil {
		t.Fatalf("the JSON form of the AST does not compile: %v\n%s", err, js)
	}
	var out strings.Builder
	fmt.Fprintf(&out, "parsed: %d policies\n", len(policies))
	sc := bufio.NewScanner(strings.NewReader(claimsText))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var cf map[string]any
		if err := json.Unmarshal([]byte(line), &cf); err != nil {
			t.Fatalf("bad claims line %q: %v", line, err)
		}
		dec := json.NewDecoder(bytes.NewReader([]byte(line)))
		dec.UseNumber()
		var cn map[string]any
		if err := dec.Decode(&cn); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&out, "claims %s\n", line)
		decide := func(label string, ids []string) {
			d := set.Evaluate(cf, ids)
			dn := set.Evaluate(cn, ids)
			d2 := set2.Evaluate(cf, ids)
			if d.Allow != dn.Allow || d.Policy != dn.Policy {
				t.Errorf("claims %s, %s: float64 decoding says %v, json.Number says %v", line, label, d.Allow, dn.Allow)
			}
			if d2.Explanation() != d.Explanation() {
				t.Errorf("claims %s, %s: JSON AST says %q, YAML AST says %q", line, label, d2.Explanation(), d.Explanation())
			}
			if !d.Allow && len(d.Failures()) == 0 && len(ids) > 0 {
				t.Errorf("claims %s, %s: denial without failures", line, label)
			}
			checkPublic(t, d, cf)
			fmt.Fprintf(&out, "  %s%s\n", label, d.Explanation())
		}
		if hasIDs {
			decide("", ids)
		} else {
			for i := range policies {
				decide(policies[i].ID+": ", []string{policies[i].ID})
			}
		}
	}
	return out.String()
}

// checkPublic asserts that the public text names no claim value.
func checkPublic(t *testing.T, d Decision, claims map[string]any) {
	t.Helper()
	pub := d.Public()
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			if len(x) >= 4 && strings.Contains(pub, x) && !isID(d, x) {
				t.Errorf("public text %q reveals claim value %q", pub, x)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(claims)
}

func isID(d Decision, s string) bool {
	for _, id := range d.ids {
		if strings.Contains(id, s) {
			return true
		}
	}
	return false
}
