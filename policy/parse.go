package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse-auth/gatehouse/internal/strictyaml"
)

// Parse reads a policy document — YAML, or JSON, which is YAML too — and
// returns its policies, validated as Compile validates them. A file may hold
// several YAML documents separated by "---"; ids must be unique across all
// of them. Every problem is reported as "file:line:col: message (hint: ...)"
// in an ErrorList; on error the policies are nil.
func Parse(filename string, src []byte) ([]Policy, error) {
	p := &parser{file: filename}
	if len(src) > MaxSourceSize {
		return nil, ErrorList{{File: filename, Line: 1, Col: 1,
			Msg:  fmt.Sprintf("document is larger than %d bytes", MaxSourceSize),
			Hint: "split the policies into several files"}}
	}
	var (
		policies []Policy
		locs     []locator
		docs     int
	)
	dec := yaml.NewDecoder(bytes.NewReader(src))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			p.YAMLError(err)
			break
		}
		docs++
		p.document(&doc, &policies, &locs)
	}
	if docs == 0 && len(p.Problems) == 0 {
		p.Problems = append(p.Problems, strictyaml.Problem{Line: 1, Col: 1, Msg: "document is empty", Hint: "a policy document starts with policy: and a list of policies"})
	}
	// Policies with structural errors were left out; compile the rest so
	// their semantic errors are reported too.
	compileAll(policies, locs)
	if len(p.Problems) > 0 {
		return nil, p.errs()
	}
	return policies, nil
}

// ParseFile reads and parses a policy file, refusing files larger than
// MaxSourceSize without reading them whole.
func ParseFile(name string) ([]Policy, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, MaxSourceSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return Parse(name, src)
}

type parser struct {
	strictyaml.Reader
	file string
}

// errs converts the problems found into an ErrorList in source order.
func (p *parser) errs() ErrorList {
	p.Sort()
	out := make(ErrorList, len(p.Problems))
	for i, pr := range p.Problems {
		out[i] = &Error{File: p.file, Line: pr.Line, Col: pr.Col, Msg: pr.Msg, Hint: pr.Hint}
	}
	return out
}

// yamlLoc locates compile problems at YAML positions.
type yamlLoc struct {
	p    *parser
	node *yaml.Node
	keys map[string]*yaml.Node
	kids map[string][]*yamlLoc
}

func newLoc(p *parser, n *yaml.Node) *yamlLoc {
	return &yamlLoc{p: p, node: n, keys: map[string]*yaml.Node{}, kids: map[string][]*yamlLoc{}}
}

func (l *yamlLoc) fail(field, msg, hint string) {
	n := l.node
	if k := l.keys[field]; k != nil {
		n = k
	}
	l.p.Report(n, msg, hint)
}

func (l *yamlLoc) child(group string, i int) locator { return l.kids[group][i] }

// scalar returns the text of a scalar node. Unquoted and quoted scalars mean
// the same. An empty unquoted value (YAML null) is rejected unless allowEmpty.
func (p *parser) scalar(n *yaml.Node, what string, allowEmpty bool) (string, bool) {
	if !p.OK(n) {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		p.Report(n, what+" must be a single value, not a "+kindName(n), `quote the value if it contains ": " or starts with "[" or "{"`)
		return "", false
	}
	if !allowEmpty && n.Value == "" && n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 {
		p.Report(n, what+" is empty", `give it a value; write "" for the empty string`)
		return "", false
	}
	return n.Value, true
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.AliasNode:
		return "alias"
	}
	return "value"
}

func (p *parser) document(doc *yaml.Node, policies *[]Policy, locs *[]locator) {
	if len(doc.Content) == 0 {
		return
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		p.Report(root, "document is empty", "a policy document starts with policy: and a list of policies")
		return
	}
	pairs, _ := p.Mapping(root, "a policy document", "a policy document starts with policy: and a list of policies")
	var list *yaml.Node
	unknown := false
	for _, kv := range pairs {
		switch kv.Name {
		case "policy":
			list = kv.Val
		case "policies":
			p.Report(kv.Key, `unknown key "policies" in the document`, `the key is "policy" (singular)`)
			unknown = true
		default:
			p.UnknownKey(kv.Key, "the document", []string{"policy"}, "a policy document has the single key policy:")
			unknown = true
		}
	}
	if list == nil {
		if root.Kind == yaml.MappingNode && !unknown {
			p.Report(root, "document has no policy: list", "a policy document starts with policy: and a list of policies")
		}
		return
	}
	if !p.OK(list) {
		return
	}
	if list.Kind != yaml.SequenceNode {
		p.Report(list, "policy must be a list of policies", "start each policy with - id: NAME")
		return
	}
	if len(list.Content) == 0 {
		p.Report(list, "policy list is empty", "add a policy: - id: NAME with all: or any: rules")
		return
	}
	for _, item := range list.Content {
		pol, loc, good := p.policy(item)
		if good {
			*policies = append(*policies, pol)
			*locs = append(*locs, loc)
		}
	}
}

var policyKeys = []string{"id", "description", "all", "any"}

func (p *parser) policy(n *yaml.Node) (Policy, *yamlLoc, bool) {
	var pol Policy
	loc := newLoc(p, n)
	pairs, good := p.Mapping(n, "a policy", "write - id: NAME followed by all: or any:")
	if pairs == nil {
		return pol, loc, false
	}
	for _, kv := range pairs {
		loc.keys[kv.Name] = kv.Key
		switch kv.Name {
		case "id":
			s, ok := p.scalar(kv.Val, "id", false)
			pol.ID = s
			good = good && ok
		case "description":
			s, ok := p.scalar(kv.Val, "description", true)
			pol.Description = s
			good = good && ok
		case "all", "any":
			rules, kids, ok := p.rules(kv.Key, kv.Val, kv.Name, 1)
			if kv.Name == "all" {
				pol.All = rules
			} else {
				pol.Any = rules
			}
			loc.kids[kv.Name] = kids
			good = good && ok
		case "rule", "rules":
			p.Report(kv.Key, fmt.Sprintf("unknown key %q in a policy", kv.Name), "rules go in a list under all: or any:")
			good = false
		default:
			p.UnknownKey(kv.Key, "a policy", policyKeys, "a policy has id, description, and all or any")
			good = false
		}
	}
	return pol, loc, good
}

var ruleKeys = []string{"claim", "in", "not-in", "minValue", "maxValue", "matches", "exists"}

func isRuleKey(k string) bool {
	for _, r := range ruleKeys {
		if r == k {
			return true
		}
	}
	return false
}

// rules reads the list under all: or any:.
func (p *parser) rules(key, n *yaml.Node, group string, depth int) ([]Rule, []*yamlLoc, bool) {
	if !p.OK(n) {
		return nil, nil, false
	}
	if n.Kind != yaml.SequenceNode {
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			p.Report(key, group+" is empty", emptyGroupHint)
		} else {
			p.Report(n, group+" must be a list of rules", "write each rule as a list item: - rule:")
		}
		return nil, nil, false
	}
	if depth > MaxDepth {
		p.Report(key, fmt.Sprintf("groups are nested more than %d deep", MaxDepth), "flatten the policy")
		return nil, nil, false
	}
	rules := make([]Rule, 0, len(n.Content))
	locs := make([]*yamlLoc, 0, len(n.Content))
	good := true
	for _, item := range n.Content {
		r, loc, ok := p.ruleItem(item, depth)
		rules = append(rules, r)
		locs = append(locs, loc)
		good = good && ok
	}
	return rules, locs, good
}

// ruleItem reads one list item: - rule: {...}, - all: [...] or - any: [...].
func (p *parser) ruleItem(n *yaml.Node, depth int) (Rule, *yamlLoc, bool) {
	var r Rule
	loc := newLoc(p, n)
	pairs, good := p.Mapping(n, "a rule list item", "write - rule: followed by claim: NAME")
	if pairs == nil {
		if good && n.Kind == yaml.MappingNode {
			p.Report(n, "empty list item", "write - rule: followed by claim: NAME")
		}
		return r, loc, false
	}
	var kind *strictyaml.Pair
	for i := range pairs {
		kv := &pairs[i]
		switch {
		case kv.Name == "rule" || kv.Name == "all" || kv.Name == "any":
			if kind != nil {
				p.Report(kv.Key, fmt.Sprintf("a list item holds exactly one of rule, all or any; this one has %s and %s", kind.Name, kv.Name), "start a new list item with -")
				good = false
				continue
			}
			kind = kv
		case isRuleKey(kv.Name):
			p.Report(kv.Key, fmt.Sprintf("%s is not inside rule:", kv.Name), "indent the rule's properties under rule: (two more spaces)")
			good = false
		default:
			p.UnknownKey(kv.Key, "a rule list", []string{"rule", "all", "any"}, "a list item is - rule: {...}, or the Gatehouse extensions - all: [...] and - any: [...]")
			good = false
		}
	}
	if kind == nil {
		return r, loc, false
	}
	loc.node = kind.Key
	loc.keys[kind.Name] = kind.Key
	if kind.Name != "rule" {
		rules, kids, ok := p.rules(kind.Key, kind.Val, kind.Name, depth+1)
		if kind.Name == "all" {
			r.All = rules
		} else {
			r.Any = rules
		}
		loc.kids[kind.Name] = kids
		return r, loc, good && ok
	}
	if kind.Val.Kind == yaml.ScalarNode && kind.Val.Tag == "!!null" {
		p.Report(kind.Key, "rule is empty", "add claim: NAME under rule:, indented")
		return r, loc, false
	}
	fields, ok := p.Mapping(kind.Val, "rule", "write claim: NAME and its constraints under rule:")
	good = good && ok
	for _, kv := range fields {
		loc.keys[kv.Name] = kv.Key
		switch kv.Name {
		case "claim":
			s, ok := p.scalar(kv.Val, "claim", false)
			r.Claim = s
			good = good && ok
		case "in", "not-in":
			vals, ok := p.values(kv.Key, kv.Val, kv.Name)
			if kv.Name == "in" {
				r.In = vals
			} else {
				r.NotIn = vals
			}
			good = good && ok
		case "minValue", "maxValue":
			s, ok := p.scalar(kv.Val, kv.Name, false)
			if kv.Name == "minValue" {
				r.MinValue = &s
			} else {
				r.MaxValue = &s
			}
			good = good && ok
		case "matches":
			s, ok := p.scalar(kv.Val, "matches", true)
			if ok && s == "" {
				p.Report(kv.Key, "matches is empty", "an empty expression matches only the empty string; remove matches or write a pattern")
				ok = false
			}
			r.Matches = s
			good = good && ok
		case "exists":
			s, ok := p.scalar(kv.Val, "exists", false)
			if ok {
				switch strings.ToLower(s) {
				case "true":
					t := true
					r.Exists = &t
				case "false":
					f := false
					r.Exists = &f
				default:
					p.Report(kv.Val, fmt.Sprintf("exists must be true or false, not %q", s), "write exists: false to require that the claim is absent")
					ok = false
				}
			}
			good = good && ok
		case "all", "any", "rule":
			p.Report(kv.Key, fmt.Sprintf("%s cannot appear inside rule:", kv.Name), "a nested group is its own list item: - "+kv.Name+": [...]")
			good = false
		default:
			p.UnknownKey(kv.Key, "a rule", ruleKeys, "a rule has claim, in, not-in, minValue, maxValue, and the Gatehouse extensions matches and exists")
			good = false
		}
	}
	return r, loc, good
}

// values reads the list of an in or not-in constraint.
func (p *parser) values(key, n *yaml.Node, what string) ([]string, bool) {
	if !p.OK(n) {
		return nil, false
	}
	if n.Kind != yaml.SequenceNode {
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			msg, hint := emptyListProblem(what)
			p.Report(key, msg, hint)
		} else {
			p.Report(n, what+" must be a list of values", fmt.Sprintf("write %s: [value] even for one value", what))
		}
		return nil, false
	}
	out := make([]string, 0, len(n.Content))
	good := true
	for _, item := range n.Content {
		s, ok := p.scalar(item, what+" item", false)
		out = append(out, s)
		good = good && ok
	}
	return out, good
}
