package policy

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Decision is the outcome of Evaluate. Evaluate builds it without
// allocating; Explanation, Failures and Public compute their text on demand
// by evaluating again, so the claims map and ids slice passed to Evaluate
// must not change until they have been called.
type Decision struct {
	// Allow is true when at least one of the policies is satisfied, or when
	// no policy id was given.
	Allow bool
	// Policy is the id of the first satisfied policy, in the order the ids
	// were given; empty on denial or when no policy applied.
	Policy string

	set    *Set
	claims map[string]any
	ids    []string
}

// Failure says why one policy was not satisfied: the rule that failed (its
// path such as "all[0]" or "any[1].all[0]"; empty for an unknown policy) and
// the reason, which quotes claim values.
type Failure struct {
	Policy string
	Rule   string
	Reason string
}

// Evaluate decides whether claims satisfy at least one of the policies named
// by ids (OR across policies, as Entrypage does). Each policy's own all/any
// decides within it. An id the set does not hold is never satisfied (fail
// closed; use Check at configuration time to reject it early). With no ids at
// all there is no policy to apply and the decision allows: callers that
// require a policy must check that ids is not empty themselves.
//
// claims are JSON values as encoding/json produces them (map[string]any,
// []any, string, float64, bool, nil, or json.Number), plus []string and Go
// integer and float types. Evaluate allocates nothing.
func (s *Set) Evaluate(claims map[string]any, ids []string) Decision {
	d := Decision{set: s, claims: claims, ids: ids}
	if len(ids) == 0 {
		d.Allow = true
		return d
	}
	if s == nil {
		return d
	}
	for _, id := range ids {
		c := s.byID[id]
		if c != nil && c.root.eval(claims) {
			d.Allow, d.Policy = true, id
			return d
		}
	}
	return d
}

// Failures lists, for each policy that was not satisfied, the first rule of
// an all group that failed and why, and for an any group every alternative's
// failure. It is empty when the decision allows.
func (d Decision) Failures() []Failure {
	if d.Allow {
		return nil
	}
	var out []Failure
	for _, id := range d.ids {
		var c *compiled
		if d.set != nil {
			c = d.set.byID[id]
		}
		if c == nil {
			out = append(out, Failure{Policy: id, Reason: "unknown policy"})
			continue
		}
		c.root.explain(d.claims, func(path, reason string) {
			out = append(out, Failure{Policy: id, Rule: path, Reason: reason})
		})
	}
	return out
}

// Explanation describes the decision for logs: which policy allowed, or for
// every policy why it failed, e.g.
// `denied: policy "admins-only" all[0]: claim "groups" = ["dev"], not in [admins]`.
// It quotes claim values (shortened), so show it only to operators.
func (d Decision) Explanation() string {
	if d.Allow {
		if d.Policy == "" {
			return "allowed: no policy applies"
		}
		return fmt.Sprintf("allowed by policy %q", d.Policy)
	}
	fs := d.Failures()
	parts := make([]string, len(fs))
	for i, f := range fs {
		if f.Rule == "" {
			parts[i] = fmt.Sprintf("policy %q: %s", f.Policy, f.Reason)
		} else {
			parts[i] = fmt.Sprintf("policy %q %s: %s", f.Policy, f.Rule, f.Reason)
		}
	}
	return "denied: " + strings.Join(parts, "; ")
}

// Public describes the decision naming only policy ids, never claim values:
// safe for the access-denied page shown to the user.
func (d Decision) Public() string {
	if d.Allow {
		if d.Policy == "" {
			return "access allowed: no policy applies"
		}
		return fmt.Sprintf("access allowed by policy %q", d.Policy)
	}
	if len(d.ids) == 1 {
		return fmt.Sprintf("access denied by policy %q", d.ids[0])
	}
	q := make([]string, len(d.ids))
	for i, id := range d.ids {
		q[i] = strconv.Quote(id)
	}
	return "access denied: none of the policies " + strings.Join(q, ", ") + " is satisfied"
}

func (n *node) eval(claims map[string]any) bool {
	switch n.kind {
	case allNode:
		for i := range n.children {
			if !n.children[i].eval(claims) {
				return false
			}
		}
		return true
	case anyNode:
		for i := range n.children {
			if n.children[i].eval(claims) {
				return true
			}
		}
		return false
	}
	o := n.test(claims)
	return o.why == whyOK
}

// explain reports the failures under n through emit and returns whether n holds.
func (n *node) explain(claims map[string]any, emit func(path, reason string)) bool {
	switch n.kind {
	case allNode:
		for i := range n.children {
			if !n.children[i].eval(claims) {
				n.children[i].explain(claims, emit)
				return false
			}
		}
		return true
	case anyNode:
		if n.eval(claims) {
			return true
		}
		for i := range n.children {
			n.children[i].explain(claims, emit)
		}
		return false
	}
	o := n.test(claims)
	if o.why != whyOK {
		emit(n.path, n.reason(o))
	}
	return o.why == whyOK
}

type why uint8

const (
	whyOK why = iota
	whyMissing
	whyNull
	whyNotObject
	whyPresent
	whyNotIn
	whyInIncomparable
	whyExcluded
	whyNotInIncomparable
	whyBelowMin
	whyAboveMax
	whyMinIncomparable
	whyMaxIncomparable
	whyNoMatch
	whyMatchIncomparable
)

// outcome is the result of one claim rule: why it failed, the claim value,
// and an index (the path segment or array element concerned, or -1).
type outcome struct {
	why   why
	value any
	index int
}

// lookup finds the claim: the whole name as a top-level key first, then the
// dotted path through objects.
func (n *node) lookup(claims map[string]any) outcome {
	if v, ok := claims[n.claim]; ok {
		if v == nil {
			return outcome{why: whyNull, index: -1}
		}
		return outcome{value: v, index: -1}
	}
	if n.segments == nil {
		return outcome{why: whyMissing, index: -1}
	}
	m := claims
	last := len(n.segments) - 1
	for i, seg := range n.segments {
		v, ok := m[seg]
		if !ok {
			return outcome{why: whyMissing, index: -1}
		}
		if i == last {
			if v == nil {
				return outcome{why: whyNull, index: -1}
			}
			return outcome{value: v, index: -1}
		}
		if v == nil {
			return outcome{why: whyMissing, index: -1}
		}
		next, ok := v.(map[string]any)
		if !ok {
			return outcome{why: whyNotObject, index: i}
		}
		m = next
	}
	return outcome{why: whyMissing, index: -1} // unreachable: segments is never empty
}

// test evaluates a claim rule.
func (n *node) test(claims map[string]any) outcome {
	o := n.lookup(claims)
	if n.absent {
		switch o.why {
		case whyMissing, whyNull, whyNotObject:
			return outcome{index: -1}
		}
		o.why = whyPresent
		return o
	}
	if o.why != whyOK {
		return o
	}
	v := o.value
	if len(n.in) > 0 {
		hit, ok := matchIn(v, n.in)
		if !ok {
			o.why = whyInIncomparable
			return o
		}
		if !hit {
			o.why = whyNotIn
			return o
		}
	}
	if len(n.notIn) > 0 {
		idx, w := matchNotIn(v, n.notIn)
		if w != whyOK {
			o.why, o.index = w, idx
			return o
		}
	}
	if n.min != nil {
		c, ok := cmpBound(v, n.min)
		if !ok {
			o.why = whyMinIncomparable
			return o
		}
		if c < 0 {
			o.why = whyBelowMin
			return o
		}
	}
	if n.max != nil {
		c, ok := cmpBound(v, n.max)
		if !ok {
			o.why = whyMaxIncomparable
			return o
		}
		if c > 0 {
			o.why = whyAboveMax
			return o
		}
	}
	if n.re != nil {
		hit, ok := matchRe(v, n.re)
		if !ok {
			o.why = whyMatchIncomparable
			return o
		}
		if !hit {
			o.why = whyNoMatch
			return o
		}
	}
	return o
}

// isScalar reports whether v is a string, boolean or number.
func isScalar(v any) bool {
	switch v.(type) {
	case string, bool:
		return true
	}
	return isNumber(v)
}

// matchIn reports whether v (or an element of array v) equals a constant;
// ok is false when v is neither a scalar nor an array.
func matchIn(v any, cs []constant) (hit, ok bool) {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if eqAny(e, cs) >= 0 {
				return true, true
			}
		}
		return false, true
	case []string:
		for _, e := range x {
			if eqString(e, cs) >= 0 {
				return true, true
			}
		}
		return false, true
	}
	if !isScalar(v) {
		return false, false
	}
	return eqAny(v, cs) >= 0, true
}

// matchNotIn checks not-in: whyOK, whyExcluded with the element index (-1 for
// a scalar claim), or whyNotInIncomparable with the offending element index.
func matchNotIn(v any, cs []constant) (int, why) {
	switch x := v.(type) {
	case []any:
		for i, e := range x {
			if !isScalar(e) {
				return i, whyNotInIncomparable
			}
			if eqAny(e, cs) >= 0 {
				return i, whyExcluded
			}
		}
		return -1, whyOK
	case []string:
		for i, e := range x {
			if eqString(e, cs) >= 0 {
				return i, whyExcluded
			}
		}
		return -1, whyOK
	}
	if !isScalar(v) {
		return -1, whyNotInIncomparable
	}
	if eqAny(v, cs) >= 0 {
		return -1, whyExcluded
	}
	return -1, whyOK
}

// eqString returns the index of the first constant equal to the string s:
// equal text, or both numbers (JSON number syntax) of equal value.
func eqString(s string, cs []constant) int {
	var d decimal[string]
	parsed, isNum := false, false
	for i := range cs {
		c := &cs[i]
		if s == c.text {
			return i
		}
		if !c.isNum {
			continue
		}
		if !parsed {
			d, isNum = parseDecimal(s)
			parsed = true
		}
		if isNum && cmpDecimal(d, c.num) == 0 {
			return i
		}
	}
	return -1
}

// eqAny returns the index of the first constant equal to the scalar v, or -1.
func eqAny(v any, cs []constant) int {
	switch x := v.(type) {
	case string:
		return eqString(x, cs)
	case json.Number:
		d, ok := parseDecimal(string(x))
		if !ok {
			return -1
		}
		for i := range cs {
			if cs[i].isNum && cmpDecimal(d, cs[i].num) == 0 {
				return i
			}
		}
		return -1
	case bool:
		t := "false"
		if x {
			t = "true"
		}
		for i := range cs {
			if cs[i].text == t {
				return i
			}
		}
		return -1
	}
	var buf numBuf
	b, ok := appendNumber(buf[:0], v)
	if !ok {
		return -1
	}
	d, _ := parseDecimal(b)
	for i := range cs {
		if cs[i].isNum && cmpDecimal(d, cs[i].num) == 0 {
			return i
		}
	}
	return -1
}

// cmpBound orders the claim v against a minValue/maxValue constant. Numbers
// and numeric strings compare as numbers; RFC 3339 strings as instants; a
// timestamp on one side and a number on the other compares the number as
// epoch seconds. ok is false when v is not comparable.
func cmpBound(v any, b *bound) (int, bool) {
	switch x := v.(type) {
	case string:
		if t, ok := parseTimestamp(x); ok {
			if b.isTime {
				return cmpInstant(t, b.t), true
			}
			var buf numBuf
			d, _ := parseDecimal(appendEpoch(buf[:0], t))
			return cmpDecimal(d, b.num), true
		}
		d, ok := parseDecimal(x)
		if !ok {
			return 0, false
		}
		return cmpDecimal(d, b.num), true
	case json.Number:
		d, ok := parseDecimal(string(x))
		if !ok {
			return 0, false
		}
		return cmpDecimal(d, b.num), true
	}
	var buf numBuf
	t, ok := appendNumber(buf[:0], v)
	if !ok {
		return 0, false
	}
	d, _ := parseDecimal(t)
	return cmpDecimal(d, b.num), true
}

// matchRe matches the claim's text (or any element's) against re.
func matchRe(v any, re *regexp.Regexp) (hit, ok bool) {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if h, _ := matchRe1(e, re); h {
				return true, true
			}
		}
		return false, true
	case []string:
		for _, e := range x {
			if re.MatchString(e) {
				return true, true
			}
		}
		return false, true
	}
	return matchRe1(v, re)
}

func matchRe1(v any, re *regexp.Regexp) (hit, ok bool) {
	switch x := v.(type) {
	case string:
		return re.MatchString(x), true
	case json.Number:
		// Match the same text a float64 would produce, so the decision does
		// not depend on how the claims were decoded.
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return re.MatchString(string(x)), true
		}
		var buf numBuf
		b, ok := appendFloat(buf[:0], f, 64)
		if !ok {
			return re.MatchString(string(x)), true
		}
		return re.Match(b), true
	case bool:
		if x {
			return re.MatchString("true"), true
		}
		return re.MatchString("false"), true
	}
	var buf numBuf
	b, ok := appendNumber(buf[:0], v)
	if !ok {
		return false, false
	}
	return re.Match(b), true
}

// reason renders an outcome as text.
func (n *node) reason(o outcome) string {
	claim := fmt.Sprintf("claim %q", n.claim)
	val := func() string { return renderValue(o.value) }
	switch o.why {
	case whyMissing:
		return claim + " is missing"
	case whyNull:
		return claim + " is null, which counts as missing"
	case whyNotObject:
		return fmt.Sprintf("%s is missing: %q is not an object", claim, strings.Join(n.segments[:o.index+1], "."))
	case whyPresent:
		return fmt.Sprintf("%s = %s, but exists: false requires it to be absent", claim, val())
	case whyNotIn:
		return fmt.Sprintf("%s = %s, not in %s", claim, val(), renderConstants(n.in))
	case whyInIncomparable:
		return fmt.Sprintf("%s = %s is not comparable with in %s (in needs a string, number, boolean or an array of them)", claim, val(), renderConstants(n.in))
	case whyExcluded:
		if o.index >= 0 {
			return fmt.Sprintf("%s = %s, element %s is excluded by not-in %s", claim, val(), renderValue(element(o.value, o.index)), renderConstants(n.notIn))
		}
		return fmt.Sprintf("%s = %s, excluded by not-in %s", claim, val(), renderConstants(n.notIn))
	case whyNotInIncomparable:
		if o.index >= 0 {
			return fmt.Sprintf("%s = %s, element %s is not comparable with not-in %s (elements must be strings, numbers or booleans)", claim, val(), renderValue(element(o.value, o.index)), renderConstants(n.notIn))
		}
		return fmt.Sprintf("%s = %s is not comparable with not-in %s (not-in needs a string, number, boolean or an array of them)", claim, val(), renderConstants(n.notIn))
	case whyBelowMin:
		return fmt.Sprintf("%s = %s, less than minValue %s", claim, val(), n.min.text)
	case whyAboveMax:
		return fmt.Sprintf("%s = %s, greater than maxValue %s", claim, val(), n.max.text)
	case whyMinIncomparable:
		return fmt.Sprintf("%s = %s is not comparable with minValue %s (needs a number, a numeric string or an RFC 3339 timestamp)", claim, val(), n.min.text)
	case whyMaxIncomparable:
		return fmt.Sprintf("%s = %s is not comparable with maxValue %s (needs a number, a numeric string or an RFC 3339 timestamp)", claim, val(), n.max.text)
	case whyNoMatch:
		return fmt.Sprintf("%s = %s, does not match `%s`", claim, val(), n.pattern)
	case whyMatchIncomparable:
		return fmt.Sprintf("%s = %s is not comparable with matches (needs a string, number, boolean or an array of them)", claim, val())
	}
	return "holds"
}

func element(v any, i int) any {
	switch x := v.(type) {
	case []any:
		return x[i]
	case []string:
		return x[i]
	}
	return nil
}

// Limits on how much of a claim value an explanation quotes.
const (
	maxRenderString = 80
	maxRenderItems  = 10
	maxRenderDepth  = 3
)

// renderValue writes v as compact, shortened JSON.
func renderValue(v any) string {
	var b strings.Builder
	writeValue(&b, v, 0)
	return b.String()
}

func writeValue(b *strings.Builder, v any, depth int) {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case string:
		writeString(b, x)
	case json.Number:
		b.WriteString(string(x))
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case []any:
		if depth >= maxRenderDepth {
			b.WriteString("[…]")
			return
		}
		b.WriteByte('[')
		for i, e := range x {
			if i == maxRenderItems {
				fmt.Fprintf(b, ",…(%d more)", len(x)-i)
				break
			}
			if i > 0 {
				b.WriteByte(',')
			}
			writeValue(b, e, depth+1)
		}
		b.WriteByte(']')
	case []string:
		a := make([]any, len(x))
		for i, s := range x {
			a[i] = s
		}
		writeValue(b, a, depth)
	case map[string]any:
		if depth >= maxRenderDepth {
			b.WriteString("{…}")
			return
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i == maxRenderItems {
				fmt.Fprintf(b, ",…(%d more)", len(keys)-i)
				break
			}
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, k)
			b.WriteByte(':')
			writeValue(b, x[k], depth+1)
		}
		b.WriteByte('}')
	default:
		var buf numBuf
		if t, ok := appendNumber(buf[:0], v); ok {
			b.Write(t)
			return
		}
		fmt.Fprintf(b, "(%T)", v)
	}
}

func writeString(b *strings.Builder, s string) {
	if utf8.RuneCountInString(s) > maxRenderString {
		r := []rune(s)
		b.WriteString(strconv.Quote(string(r[:maxRenderString])))
		b.WriteString("…")
		return
	}
	b.WriteString(strconv.Quote(s))
}

// renderConstants writes a constant list as [a, b], quoting values that
// would otherwise be ambiguous.
func renderConstants(cs []constant) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, c := range cs {
		if i == maxRenderItems {
			fmt.Fprintf(&b, ", …(%d more)", len(cs)-i)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		if c.text == "" || strings.ContainsAny(c.text, " ,[]\"'`\\\t\n\r") || utf8.RuneCountInString(c.text) > maxRenderString || strings.IndexFunc(c.text, notPrint) >= 0 {
			writeString(&b, c.text)
		} else {
			b.WriteString(c.text)
		}
	}
	b.WriteByte(']')
	return b.String()
}

func notPrint(r rune) bool { return !strconv.IsPrint(r) || r == utf8.RuneError }
