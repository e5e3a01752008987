package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Parse reads a policy document — YAML, or JSON, which is YAML too — and
// returns its policies, validated as Compile validates them. A file may hold
// several YAML documents separated by "---"; ids must be unique across all
// of them. Every problem is reported as "file:line:col: message (hint: ...)"
// in an ErrorList; on error the policies are nil.
func Parse(filename string, src []byte) ([]Policy, error) {
	p := &parser{file: filename}
	if len(src) > MaxSourceSize {
		p.errs = append(p.errs, &Error{File: filename, Line: 1, Col: 1,
			Msg:  fmt.Sprintf("document is larger than %d bytes", MaxSourceSize),
			Hint: "split the policies into several files"})
		return nil, p.errs
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
			p.yamlError(err)
			break
		}
		docs++
		p.document(&doc, &policies, &locs)
	}
	if docs == 0 && len(p.errs) == 0 {
		p.errs = append(p.errs, &Error{File: filename, Line: 1, Col: 1, Msg: "document is empty", Hint: "a policy document starts with policy: and a list of policies"})
	}
	// Policies with structural errors were left out; compile the rest so
	// their semantic errors are reported too.
	compileAll(policies, locs)
	if len(p.errs) > 0 {
		sort.SliceStable(p.errs, func(i, j int) bool {
			a, b := p.errs[i], p.errs[j]
			if a.Line != b.Line {
				return a.Line < b.Line
			}
			return a.Col < b.Col
		})
		return nil, p.errs
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
	file string
	errs ErrorList
}

func (p *parser) errAt(n *yaml.Node, msg, hint string) {
	if len(p.errs) >= maxErrors {
		return
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: n.Line, Col: n.Column, Msg: msg, Hint: hint})
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError converts a YAML syntax error, which carries a line but no column.
func (p *parser) yamlError(err error) {
	e := &Error{File: p.file, Line: 1, Msg: err.Error(), Hint: "fix the YAML syntax; check indentation and quoting"}
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Msg = "invalid YAML: " + m[2]
	} else {
		e.Msg = "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")
	}
	p.errs = append(p.errs, e)
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
	l.p.errAt(n, msg, hint)
}

func (l *yamlLoc) child(group string, i int) locator { return l.kids[group][i] }

type pair struct {
	name     string
	key, val *yaml.Node
}

// ok rejects YAML features the language does not use: aliases and explicit
// tags other than !!str.
func (p *parser) ok(n *yaml.Node) bool {
	if n.Kind == yaml.AliasNode {
		p.errAt(n, "aliases are not supported", "write the value out instead of *"+n.Value)
		return false
	}
	if n.Style&yaml.TaggedStyle != 0 && n.Tag != "!!str" {
		p.errAt(n, fmt.Sprintf("YAML tag %s is not supported", n.Tag), "remove the tag; quote the value if it must be text")
		return false
	}
	return true
}

// mapping returns the key/value pairs of a mapping node, rejecting duplicate
// and non-scalar keys.
func (p *parser) mapping(n *yaml.Node, what, hint string) ([]pair, bool) {
	if !p.ok(n) {
		return nil, false
	}
	if n.Kind != yaml.MappingNode {
		p.errAt(n, what+" must be a mapping", hint)
		return nil, false
	}
	good := true
	seen := map[string]bool{}
	var out []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !p.ok(k) {
			good = false
			continue
		}
		if k.Kind != yaml.ScalarNode {
			p.errAt(k, "keys must be plain names", "")
			good = false
			continue
		}
		if seen[k.Value] {
			p.errAt(k, fmt.Sprintf("duplicate key %q", k.Value), "each key may appear once; remove one of them")
			good = false
			continue
		}
		seen[k.Value] = true
		out = append(out, pair{name: k.Value, key: k, val: v})
	}
	return out, good
}

// scalar returns the text of a scalar node. Unquoted and quoted scalars mean
// the same. An empty unquoted value (YAML null) is rejected unless allowEmpty.
func (p *parser) scalar(n *yaml.Node, what string, allowEmpty bool) (string, bool) {
	if !p.ok(n) {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		p.errAt(n, what+" must be a single value, not a "+kindName(n), `quote the value if it contains ": " or starts with "[" or "{"`)
		return "", false
	}
	if !allowEmpty && n.Value == "" && n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 {
		p.errAt(n, what+" is empty", `give it a value; write "" for the empty string`)
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

// unknownKey reports a key that is not part of the language, suggesting the
// known key it most likely means.
func (p *parser) unknownKey(k *yaml.Node, where string, known []string, hint string) {
	norm := func(s string) string {
		return strings.NewReplacer("-", "", "_", "", " ", "").Replace(strings.ToLower(s))
	}
	for _, kn := range known {
		if norm(kn) == norm(k.Value) {
			hint = fmt.Sprintf("did you mean %q?", kn)
			break
		}
	}
	p.errAt(k, fmt.Sprintf("unknown key %q in %s", k.Value, where), hint)
}

func (p *parser) document(doc *yaml.Node, policies *[]Policy, locs *[]locator) {
	if len(doc.Content) == 0 {
		return
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		p.errAt(root, "document is empty", "a policy document starts with policy: and a list of policies")
		return
	}
	pairs, _ := p.mapping(root, "a policy document", "a policy document starts with policy: and a list of policies")
	var list *yaml.Node
	unknown := false
	for _, kv := range pairs {
		switch kv.name {
		case "policy":
			list = kv.val
		case "policies":
			p.errAt(kv.key, `unknown key "policies" in the document`, `the key is "policy" (singular)`)
			unknown = true
		default:
			p.unknownKey(kv.key, "the document", []string{"policy"}, "a policy document has the single key policy:")
			unknown = true
		}
	}
	if list == nil {
		if root.Kind == yaml.MappingNode && !unknown {
			p.errAt(root, "document has no policy: list", "a policy document starts with policy: and a list of policies")
		}
		return
	}
	if !p.ok(list) {
		return
	}
	if list.Kind != yaml.SequenceNode {
		p.errAt(list, "policy must be a list of policies", "start each policy with - id: NAME")
		return
	}
	if len(list.Content) == 0 {
		p.errAt(list, "policy list is empty", "add a policy: - id: NAME with all: or any: rules")
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
	pairs, good := p.mapping(n, "a policy", "write - id: NAME followed by all: or any:")
	if pairs == nil {
		return pol, loc, false
	}
	for _, kv := range pairs {
		loc.keys[kv.name] = kv.key
		switch kv.name {
		case "id":
			s, ok := p.scalar(kv.val, "id", false)
			pol.ID = s
			good = good && ok
		case "description":
			s, ok := p.scalar(kv.val, "description", true)
			pol.Description = s
			good = good && ok
		case "all", "any":
			rules, kids, ok := p.rules(kv.key, kv.val, kv.name, 1)
			if kv.name == "all" {
				pol.All = rules
			} else {
				pol.Any = rules
			}
			loc.kids[kv.name] = kids
			good = good && ok
		case "rule", "rules":
			p.errAt(kv.key, fmt.Sprintf("unknown key %q in a policy", kv.name), "rules go in a list under all: or any:")
			good = false
		default:
			p.unknownKey(kv.key, "a policy", policyKeys, "a policy has id, description, and all or any")
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
	if !p.ok(n) {
		return nil, nil, false
	}
	if n.Kind != yaml.SequenceNode {
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			p.errAt(key, group+" is empty", emptyGroupHint)
		} else {
			p.errAt(n, group+" must be a list of rules", "write each rule as a list item: - rule:")
		}
		return nil, nil, false
	}
	if depth > MaxDepth {
		p.errAt(key, fmt.Sprintf("groups are nested more than %d deep", MaxDepth), "flatten the policy")
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
	pairs, good := p.mapping(n, "a rule list item", "write - rule: followed by claim: NAME")
	if pairs == nil {
		if good && n.Kind == yaml.MappingNode {
			p.errAt(n, "empty list item", "write - rule: followed by claim: NAME")
		}
		return r, loc, false
	}
	var kind *pair
	for i := range pairs {
		kv := &pairs[i]
		switch {
		case kv.name == "rule" || kv.name == "all" || kv.name == "any":
			if kind != nil {
				p.errAt(kv.key, fmt.Sprintf("a list item holds exactly one of rule, all or any; this one has %s and %s", kind.name, kv.name), "start a new list item with -")
				good = false
				continue
			}
			kind = kv
		case isRuleKey(kv.name):
			p.errAt(kv.key, fmt.Sprintf("%s is not inside rule:", kv.name), "indent the rule's properties under rule: (two more spaces)")
			good = false
		default:
			p.unknownKey(kv.key, "a rule list", []string{"rule", "all", "any"}, "a list item is - rule: {...}, or the Gatehouse extensions - all: [...] and - any: [...]")
			good = false
		}
	}
	if kind == nil {
		return r, loc, false
	}
	loc.node = kind.key
	loc.keys[kind.name] = kind.key
	if kind.name != "rule" {
		rules, kids, ok := p.rules(kind.key, kind.val, kind.name, depth+1)
		if kind.name == "all" {
			r.All = rules
		} else {
			r.Any = rules
		}
		loc.kids[kind.name] = kids
		return r, loc, good && ok
	}
	if kind.val.Kind == yaml.ScalarNode && kind.val.Tag == "!!null" {
		p.errAt(kind.key, "rule is empty", "add claim: NAME under rule:, indented")
		return r, loc, false
	}
	fields, ok := p.mapping(kind.val, "rule", "write claim: NAME and its constraints under rule:")
	good = good && ok
	for _, kv := range fields {
		loc.keys[kv.name] = kv.key
		switch kv.name {
		case "claim":
			s, ok := p.scalar(kv.val, "claim", false)
			r.Claim = s
			good = good && ok
		case "in", "not-in":
			vals, ok := p.values(kv.key, kv.val, kv.name)
			if kv.name == "in" {
				r.In = vals
			} else {
				r.NotIn = vals
			}
			good = good && ok
		case "minValue", "maxValue":
			s, ok := p.scalar(kv.val, kv.name, false)
			if kv.name == "minValue" {
				r.MinValue = &s
			} else {
				r.MaxValue = &s
			}
			good = good && ok
		case "matches":
			s, ok := p.scalar(kv.val, "matches", true)
			if ok && s == "" {
				p.errAt(kv.key, "matches is empty", "an empty expression matches only the empty string; remove matches or write a pattern")
				ok = false
			}
			r.Matches = s
			good = good && ok
		case "exists":
			s, ok := p.scalar(kv.val, "exists", false)
			if ok {
				switch strings.ToLower(s) {
				case "true":
					t := true
					r.Exists = &t
				case "false":
					f := false
					r.Exists = &f
				default:
					p.errAt(kv.val, fmt.Sprintf("exists must be true or false, not %q", s), "write exists: false to require that the claim is absent")
					ok = false
				}
			}
			good = good && ok
		case "all", "any", "rule":
			p.errAt(kv.key, fmt.Sprintf("%s cannot appear inside rule:", kv.name), "a nested group is its own list item: - "+kv.name+": [...]")
			good = false
		default:
			p.unknownKey(kv.key, "a rule", ruleKeys, "a rule has claim, in, not-in, minValue, maxValue, and the Gatehouse extensions matches and exists")
			good = false
		}
	}
	return r, loc, good
}

// values reads the list of an in or not-in constraint.
func (p *parser) values(key, n *yaml.Node, what string) ([]string, bool) {
	if !p.ok(n) {
		return nil, false
	}
	if n.Kind != yaml.SequenceNode {
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			msg, hint := emptyListProblem(what)
			p.errAt(key, msg, hint)
		} else {
			p.errAt(n, what+" must be a list of values", fmt.Sprintf("write %s: [value] even for one value", what))
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
