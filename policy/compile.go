package policy

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on a policy document or AST. They keep parsing, compiling and
// evaluation bounded in time and memory on any input.
const (
	// MaxSourceSize is the largest policy document Parse accepts, in bytes.
	MaxSourceSize = 1 << 20
	// MaxDepth is how deeply groups may nest inside a policy; the policy's
	// own all/any list is depth 1.
	MaxDepth = 16
	// MaxIDLength bounds a policy id, in bytes.
	MaxIDLength = 128
	// MaxClaimLength bounds a claim name or path, in bytes.
	MaxClaimLength = 1024
	// MaxPatternLength bounds a matches expression, in bytes.
	MaxPatternLength = 1024
)

// Set is a compiled, immutable collection of policies, safe for concurrent
// use. Build it with Compile.
type Set struct {
	byID  map[string]*compiled
	order []string
}

type compiled struct {
	id   string
	root node
}

type nodeKind uint8

const (
	leafNode nodeKind = iota
	allNode
	anyNode
)

// node is a compiled rule or group.
type node struct {
	kind     nodeKind
	children []node
	path     string // rule path for explanations, e.g. "all[1].any[0]"

	claim    string
	segments []string // claim split at dots; nil when the claim has no dot
	absent   bool     // exists: false
	in       []constant
	notIn    []constant
	min, max *bound
	re       *regexp.Regexp
	pattern  string
}

// constant is an in / not-in value with its number form pre-parsed.
type constant struct {
	text  string
	isNum bool
	num   decimal[string]
}

// bound is a minValue / maxValue constant: a number or a timestamp.
type bound struct {
	text   string
	isTime bool
	num    decimal[string] // the number, or for a timestamp its epoch seconds
	t      instant
}

const emptyGroupHint = "list at least one rule: - rule: {claim: NAME}"

// emptyListProblem describes an empty in or not-in list.
func emptyListProblem(what string) (msg, hint string) {
	if what == "in" {
		return "in is empty, so the rule can never hold", "list at least one value or remove in"
	}
	return what + " is empty", "list at least one value or remove " + what
}

func newConstant(s string) constant {
	c := constant{text: s}
	c.num, c.isNum = parseDecimal(s)
	return c
}

func newBound(s string) (*bound, bool) {
	b := &bound{text: s}
	if t, ok := parseTimestamp(s); ok {
		b.isTime, b.t = true, t
		b.num, _ = parseDecimal(string(appendEpoch(nil, t)))
		return b, true
	}
	d, ok := parseDecimal(s)
	if !ok {
		return nil, false
	}
	b.num = d
	return b, true
}

// cmpBounds orders two constants; a timestamp against a number compares the
// timestamp's epoch seconds.
func cmpBounds(a, b *bound) int {
	if a.isTime && b.isTime {
		return cmpInstant(a.t, b.t)
	}
	return cmpDecimal(a.num, b.num)
}

// locator reports a problem at a field of the policy or rule being compiled:
// with a YAML position when the AST came from Parse, or with the policy id
// and rule path when it came from code or JSON.
type locator interface {
	fail(field, msg, hint string)
	child(group string, i int) locator
}

// codeLoc locates problems in an AST built in code.
type codeLoc struct {
	errs   *ErrorList
	policy string
	path   string
}

func (l codeLoc) fail(field, msg, hint string) {
	if len(*l.errs) >= maxErrors {
		return
	}
	*l.errs = append(*l.errs, &Error{Policy: l.policy, Rule: l.path, Msg: msg, Hint: hint})
}

func (l codeLoc) child(group string, i int) locator {
	p := fmt.Sprintf("%s[%d]", group, i)
	if l.path != "" {
		p = l.path + "." + p
	}
	return codeLoc{errs: l.errs, policy: l.policy, path: p}
}

// Compile validates policies (the same rules Parse enforces, reported with
// the policy id and rule path instead of a position), compiles regular
// expressions and pre-parses numbers and timestamps. Policy ids must be
// unique across the whole slice, so pass every document's policies together.
// The error is an ErrorList.
func Compile(policies []Policy) (*Set, error) {
	var errs ErrorList
	locs := make([]locator, len(policies))
	for i := range policies {
		if policies[i].ID == "" {
			locs[i] = codeLoc{errs: &errs, path: fmt.Sprintf("policy[%d]", i)}
		} else {
			locs[i] = codeLoc{errs: &errs, policy: policies[i].ID}
		}
	}
	s := compileAll(policies, locs)
	if len(errs) > 0 {
		return nil, errs
	}
	return s, nil
}

func compileAll(policies []Policy, locs []locator) *Set {
	s := &Set{byID: make(map[string]*compiled, len(policies))}
	for i := range policies {
		p := &policies[i]
		c := compilePolicy(p, locs[i])
		if c == nil {
			continue
		}
		if _, dup := s.byID[p.ID]; dup {
			locs[i].fail("id", fmt.Sprintf("duplicate policy id %q", p.ID), "policy ids must be unique across all policy documents; rename one of them")
			continue
		}
		s.byID[p.ID] = c
		s.order = append(s.order, p.ID)
	}
	return s
}

// Merge returns a set holding every policy of base and of over; where both
// hold a policy with the same id, over's wins (a configuration that
// overrides stored policies of the same id). Either may be nil; the result
// is nil when both are. Neither set is changed, and nothing is compiled
// again.
func Merge(base, over *Set) *Set {
	switch {
	case base == nil:
		return over
	case over == nil:
		return base
	}
	s := &Set{byID: make(map[string]*compiled, len(base.byID)+len(over.byID))}
	for _, src := range [2]*Set{base, over} {
		for _, id := range src.order {
			if _, seen := s.byID[id]; !seen {
				s.order = append(s.order, id)
			}
			s.byID[id] = src.byID[id]
		}
	}
	return s
}

// validID reports why id cannot be a policy id, or "".
func validID(id string) string {
	switch {
	case id == "":
		return "policy has no id"
	case len(id) > MaxIDLength:
		return fmt.Sprintf("policy id is longer than %d bytes", MaxIDLength)
	case !utf8.ValidString(id):
		return "policy id is not valid UTF-8"
	}
	for _, r := range id {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Sprintf("policy id %q contains whitespace or a control character", id)
		}
	}
	return ""
}

func compilePolicy(p *Policy, loc locator) *compiled {
	ok := true
	if msg := validID(p.ID); msg != "" {
		field := "id"
		if p.ID == "" {
			field = ""
		}
		loc.fail(field, msg, `give every policy a unique id such as "admins-only" (no spaces)`)
		ok = false
	}
	root, rok := compileGroup(p.All, p.Any, loc, "", 1, "policy")
	if !ok || !rok {
		return nil
	}
	return &compiled{id: p.ID, root: root}
}

// compileGroup compiles the all/any pair of a policy or nested group.
func compileGroup(all, anyOf []Rule, loc locator, path string, depth int, what string) (node, bool) {
	switch {
	case all != nil && anyOf != nil:
		loc.fail("any", what+" has both all and any", "use exactly one; nest a group (- any: [...]) inside all to combine them")
		return node{}, false
	case all == nil && anyOf == nil:
		loc.fail("", what+" has neither all nor any", "add all: (every rule must hold) or any: (at least one rule must hold)")
		return node{}, false
	}
	group, rules, kind := "all", all, allNode
	if anyOf != nil {
		group, rules, kind = "any", anyOf, anyNode
	}
	if len(rules) == 0 {
		loc.fail(group, group+" is empty", emptyGroupHint)
		return node{}, false
	}
	if depth > MaxDepth {
		loc.fail(group, fmt.Sprintf("groups are nested more than %d deep", MaxDepth), "flatten the policy")
		return node{}, false
	}
	n := node{kind: kind, path: path, children: make([]node, len(rules))}
	ok := true
	for i := range rules {
		p := fmt.Sprintf("%s[%d]", group, i)
		if path != "" {
			p = path + "." + p
		}
		c, cok := compileRule(&rules[i], loc.child(group, i), p, depth)
		n.children[i] = c
		ok = ok && cok
	}
	return n, ok
}

func compileRule(r *Rule, loc locator, path string, depth int) (node, bool) {
	if r.IsGroup() {
		if r.Claim != "" || r.In != nil || r.NotIn != nil || r.MinValue != nil || r.MaxValue != nil || r.Matches != "" || r.Exists != nil {
			loc.fail("", "a group cannot also be a claim rule", "move claim and its constraints into a rule inside the group")
			return node{}, false
		}
		return compileGroup(r.All, r.Any, loc, path, depth+1, "group")
	}
	ok := true
	bad := func(field, msg, hint string) {
		loc.fail(field, msg, hint)
		ok = false
	}
	n := node{kind: leafNode, path: path, claim: r.Claim, pattern: r.Matches}
	switch {
	case r.Claim == "":
		bad("", "rule has no claim", "every rule needs claim: NAME")
	case len(r.Claim) > MaxClaimLength:
		bad("claim", fmt.Sprintf("claim is longer than %d bytes", MaxClaimLength), "")
	case !utf8.ValidString(r.Claim):
		bad("claim", "claim is not valid UTF-8", "")
	case strings.Contains(r.Claim, "."):
		n.segments = strings.Split(r.Claim, ".")
	}
	if r.In != nil && len(r.In) == 0 {
		msg, hint := emptyListProblem("in")
		bad("in", msg, hint)
	}
	if r.NotIn != nil && len(r.NotIn) == 0 {
		msg, hint := emptyListProblem("not-in")
		bad("not-in", msg, hint)
	}
	for _, v := range r.In {
		n.in = append(n.in, newConstant(v))
	}
	for _, v := range r.NotIn {
		n.notIn = append(n.notIn, newConstant(v))
	}
	const boundHint = `write a number such as "18" or an RFC 3339 timestamp such as "2025-01-01T00:00:00Z"`
	if r.MinValue != nil {
		if b, bok := newBound(*r.MinValue); bok {
			n.min = b
		} else {
			bad("minValue", fmt.Sprintf("minValue %q is neither a number nor an RFC 3339 timestamp", *r.MinValue), boundHint)
		}
	}
	if r.MaxValue != nil {
		if b, bok := newBound(*r.MaxValue); bok {
			n.max = b
		} else {
			bad("maxValue", fmt.Sprintf("maxValue %q is neither a number nor an RFC 3339 timestamp", *r.MaxValue), boundHint)
		}
	}
	if n.min != nil && n.max != nil && cmpBounds(n.min, n.max) > 0 {
		bad("minValue", fmt.Sprintf("minValue %q is greater than maxValue %q, so the rule can never hold", n.min.text, n.max.text), "swap the two values")
	}
	if r.Matches != "" {
		if len(r.Matches) > MaxPatternLength {
			bad("matches", fmt.Sprintf("matches is longer than %d bytes", MaxPatternLength), "")
		} else if _, err := regexp.Compile(r.Matches); err != nil {
			bad("matches", "invalid regular expression: "+strings.TrimPrefix(err.Error(), "error parsing regexp: "), "matches uses RE2 syntax and must match the whole value")
		} else if re, err := regexp.Compile(`^(?:` + r.Matches + `)$`); err != nil {
			// A pattern that compiles alone but not inside the group, e.g. one
			// ending in an unbalanced ")" that Go accepts: refuse it.
			bad("matches", "invalid regular expression: "+strings.TrimPrefix(err.Error(), "error parsing regexp: "), "matches uses RE2 syntax and must match the whole value")
		} else {
			n.re = re
		}
	}
	if r.Exists != nil && !*r.Exists {
		n.absent = true
		if r.In != nil || r.NotIn != nil || r.MinValue != nil || r.MaxValue != nil || r.Matches != "" {
			bad("exists", "exists: false cannot be combined with in, not-in, minValue, maxValue or matches", "those constraints need the claim to be present; put them in another rule")
		}
	}
	return n, ok
}

// IDs returns the ids of the compiled policies, sorted.
func (s *Set) IDs() []string {
	if s == nil {
		return nil
	}
	ids := append([]string(nil), s.order...)
	sort.Strings(ids)
	return ids
}

// Has reports whether the set holds a policy with this id.
func (s *Set) Has(id string) bool {
	if s == nil {
		return false
	}
	_, ok := s.byID[id]
	return ok
}

// Check returns an error naming every id the set does not hold, so that
// configuration can reject a reference to an unknown policy when it is
// loaded instead of denying every request at run time.
func (s *Set) Check(ids []string) error {
	var missing []string
	for _, id := range ids {
		if !s.Has(id) {
			missing = append(missing, strconv.Quote(id))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	known := "none are defined"
	if s != nil && len(s.order) > 0 {
		q := make([]string, 0, len(s.order))
		for _, id := range s.IDs() {
			q = append(q, strconv.Quote(id))
		}
		known = "defined: " + strings.Join(q, ", ")
	}
	noun := "policy"
	if len(missing) > 1 {
		noun = "policies"
	}
	return fmt.Errorf("unknown %s %s (%s)", noun, strings.Join(missing, ", "), known)
}
