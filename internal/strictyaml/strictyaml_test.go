package strictyaml

import (
	"errors"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func root(t *testing.T, src string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	return doc.Content[0]
}

func TestMapping(t *testing.T) {
	tests := []struct {
		name      string
		src       string
		wantNames []string
		wantOK    bool
		wantMsg   string // substring of the first problem; "" for none
		wantLine  int
	}{
		{"plain mapping is read in order", "b: 1\na: 2\n", []string{"b", "a"}, true, "", 0},
		{"duplicate key is reported and left out", "a: 1\nb: 2\na: 3\n", []string{"a", "b"}, false, `duplicate key "a"`, 3},
		{"values are left to the caller, aliases too", "x: &v {a: 1}\ny: *v\n", []string{"x", "y"}, true, "", 0},
		{"tagged key is rejected", "!!int 1: x\n", nil, false, "YAML tag !!int is not supported", 1},
		{"non-scalar key is rejected", "? [a]\n: x\n", nil, false, "keys must be plain names", 1},
		{"a list is not a mapping", "- a\n", nil, false, "doc must be a mapping", 1},
		{"explicit !!str tag is allowed", "!!str a: 1\n", []string{"a"}, true, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Reader
			pairs, ok := r.Mapping(root(t, tt.src), "doc", "")
			var names []string
			for _, p := range pairs {
				names = append(names, p.Name)
			}
			if strings.Join(names, ",") != strings.Join(tt.wantNames, ",") || ok != tt.wantOK {
				t.Fatalf("got %v ok=%v, want %v ok=%v (problems %v)", names, ok, tt.wantNames, tt.wantOK, r.Problems)
			}
			if tt.wantMsg == "" {
				if len(r.Problems) != 0 {
					t.Fatalf("unexpected problems %v", r.Problems)
				}
				return
			}
			if len(r.Problems) == 0 || !strings.Contains(r.Problems[0].Msg, tt.wantMsg) || r.Problems[0].Line != tt.wantLine {
				t.Fatalf("problems %v, want %q at line %d", r.Problems, tt.wantMsg, tt.wantLine)
			}
		})
	}
}

func TestAliasIsRejected(t *testing.T) {
	var r Reader
	n := root(t, "x: &v 1\ny: *v\n")
	if r.OK(n.Content[3]) {
		t.Fatal("alias accepted")
	}
	if len(r.Problems) != 1 || r.Problems[0].Msg != "aliases are not supported" || r.Problems[0].Hint != "write the value out instead of *v" {
		t.Fatalf("problems %v", r.Problems)
	}
}

func TestUnknownKeySuggestsTheKnownKey(t *testing.T) {
	var r Reader
	k := &yaml.Node{Kind: yaml.ScalarNode, Value: "Not_In", Line: 2, Column: 3}
	r.UnknownKey(k, "a rule", []string{"claim", "not-in"}, "fallback")
	r.UnknownKey(&yaml.Node{Kind: yaml.ScalarNode, Value: "zzz"}, "a rule", []string{"claim"}, "fallback")
	want := []Problem{
		{Line: 2, Col: 3, Msg: `unknown key "Not_In" in a rule`, Hint: `did you mean "not-in"?`},
		{Msg: `unknown key "zzz" in a rule`, Hint: "fallback"},
	}
	if len(r.Problems) != 2 || r.Problems[0] != want[0] || r.Problems[1] != want[1] {
		t.Fatalf("got %v, want %v", r.Problems, want)
	}
}

func TestReportStopsAtMaxErrorsAndSortKeepsSourceOrder(t *testing.T) {
	var r Reader
	for i := 0; i < MaxErrors+5; i++ {
		r.Report(&yaml.Node{Line: MaxErrors + 5 - i, Column: 1}, "x", "")
	}
	if len(r.Problems) != MaxErrors {
		t.Fatalf("got %d problems, want %d", len(r.Problems), MaxErrors)
	}
	r.Report(&yaml.Node{Line: 9, Column: 2}, "late", "")
	r.YAMLError(errors.New("yaml: line 7: mapping values are not allowed in this context"))
	if len(r.Problems) != MaxErrors+1 {
		t.Fatalf("a YAML syntax error must be kept past the cap; got %d problems", len(r.Problems))
	}
	r.Sort()
	for i := 1; i < len(r.Problems); i++ {
		if r.Problems[i-1].Line > r.Problems[i].Line {
			t.Fatalf("not in source order at %d: %v", i, r.Problems)
		}
	}
}

func TestYAMLError(t *testing.T) {
	tests := []struct {
		name, err string
		want      Problem
	}{
		{"line is taken from the message", "yaml: line 4: did not find expected key",
			Problem{Line: 4, Msg: "invalid YAML: did not find expected key", Hint: "fix the YAML syntax; check indentation and quoting"}},
		{"without a line the problem is on line 1", "yaml: control characters are not allowed",
			Problem{Line: 1, Msg: "invalid YAML: control characters are not allowed", Hint: "fix the YAML syntax; check indentation and quoting"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Reader
			r.YAMLError(errors.New(tt.err))
			if len(r.Problems) != 1 || r.Problems[0] != tt.want {
				t.Fatalf("got %v, want %v", r.Problems, tt.want)
			}
		})
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		name                   string
		file                   string
		line, col              int
		where, msg, hint, want string
	}{
		{"line and column", "p.yaml", 3, 5, "ignored", "bad", "fix it", "p.yaml:3:5: bad (hint: fix it)"},
		{"line only", "p.yaml", 3, 0, "", "bad", "", "p.yaml:3: bad"},
		{"no position uses where", "", 0, 0, "transformations[2]", "bad", "h", "transformations[2]: bad (hint: h)"},
		{"nothing but the message", "", 0, 0, "", "bad", "", "bad"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Format(tt.file, tt.line, tt.col, tt.where, tt.msg, tt.hint); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func TestJoinPutsOneErrorPerLine(t *testing.T) {
	if got := Join([]errString{"a", "b"}); got != "a\nb" {
		t.Fatalf("got %q", got)
	}
	if got := Join([]errString(nil)); got != "" {
		t.Fatalf("empty list gave %q", got)
	}
}
