package strictyaml

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxErrors bounds how many problems one document reports.
const MaxErrors = 50

// Problem is one problem at a YAML position (1-based; Col 0 when only the
// line is known).
type Problem struct {
	Line, Col int
	Msg       string // what is wrong
	Hint      string // how to fix it; may be empty
}

// Reader reads YAML nodes strictly and collects the problems it finds. The
// zero value is ready to use.
type Reader struct {
	// Problems holds what was reported, in the order reported; Sort puts
	// them in source order.
	Problems []Problem
}

// Report records a problem at n's position. Past MaxErrors it is dropped.
func (r *Reader) Report(n *yaml.Node, msg, hint string) {
	if len(r.Problems) >= MaxErrors {
		return
	}
	r.Problems = append(r.Problems, Problem{Line: n.Line, Col: n.Column, Msg: msg, Hint: hint})
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// YAMLError records a yaml.v3 syntax error, which carries a line but no
// column (line 1 when it carries none).
func (r *Reader) YAMLError(err error) {
	pr := Problem{Line: 1, Msg: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: "), Hint: "fix the YAML syntax; check indentation and quoting"}
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		pr.Line, _ = strconv.Atoi(m[1])
		pr.Msg = "invalid YAML: " + m[2]
	}
	r.Problems = append(r.Problems, pr)
}

// Sort puts the problems in source order (line, then column), keeping the
// order of problems at the same position.
func (r *Reader) Sort() {
	sort.SliceStable(r.Problems, func(i, j int) bool {
		a, b := r.Problems[i], r.Problems[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}

// OK rejects YAML features the formats do not use: aliases and explicit
// tags other than !!str. It reports the problem and returns false.
func (r *Reader) OK(n *yaml.Node) bool {
	if n.Kind == yaml.AliasNode {
		r.Report(n, "aliases are not supported", "write the value out instead of *"+n.Value)
		return false
	}
	if n.Style&yaml.TaggedStyle != 0 && n.Tag != "!!str" {
		r.Report(n, fmt.Sprintf("YAML tag %s is not supported", n.Tag), "remove the tag; quote the value if it must be text")
		return false
	}
	return true
}

// Pair is one key and its value in a mapping.
type Pair struct {
	Name     string // the key's text
	Key, Val *yaml.Node
}

// Mapping returns the key/value pairs of a mapping node, rejecting
// duplicate and non-scalar keys (those pairs are left out). what names the
// node in "... must be a mapping"; hint goes with that message. The pairs
// are nil when n is not a mapping; ok is false when anything was reported.
func (r *Reader) Mapping(n *yaml.Node, what, hint string) (pairs []Pair, ok bool) {
	if !r.OK(n) {
		return nil, false
	}
	if n.Kind != yaml.MappingNode {
		r.Report(n, what+" must be a mapping", hint)
		return nil, false
	}
	good := true
	seen := map[string]bool{}
	var out []Pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !r.OK(k) {
			good = false
			continue
		}
		if k.Kind != yaml.ScalarNode {
			r.Report(k, "keys must be plain names", "")
			good = false
			continue
		}
		if seen[k.Value] {
			r.Report(k, fmt.Sprintf("duplicate key %q", k.Value), "each key may appear once; remove one of them")
			good = false
			continue
		}
		seen[k.Value] = true
		out = append(out, Pair{Name: k.Value, Key: k, Val: v})
	}
	return out, good
}

// UnknownKey reports key k, unknown in where, suggesting the known key it
// most likely means (same letters ignoring case, "-", "_" and spaces) in
// place of hint.
func (r *Reader) UnknownKey(k *yaml.Node, where string, known []string, hint string) {
	norm := func(s string) string {
		return strings.NewReplacer("-", "", "_", "", " ", "").Replace(strings.ToLower(s))
	}
	for _, kn := range known {
		if norm(kn) == norm(k.Value) {
			hint = fmt.Sprintf("did you mean %q?", kn)
			break
		}
	}
	r.Report(k, fmt.Sprintf("unknown key %q in %s", k.Value, where), hint)
}

// Format formats a problem as "file:line:col: message (hint: ...)", or
// "file:line: ..." when col is 0. Without a line it is
// "where: message (hint: ...)", or just the message when where is empty.
func Format(file string, line, col int, where, msg, hint string) string {
	var b strings.Builder
	switch {
	case line > 0 && col > 0:
		fmt.Fprintf(&b, "%s:%d:%d: ", file, line, col)
	case line > 0:
		fmt.Fprintf(&b, "%s:%d: ", file, line)
	case where != "":
		b.WriteString(where + ": ")
	}
	b.WriteString(msg)
	if hint != "" {
		b.WriteString(" (hint: " + hint + ")")
	}
	return b.String()
}

// Join joins the errors' messages, one per line.
func Join[E error](list []E) string {
	s := make([]string, len(list))
	for i, e := range list {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}
