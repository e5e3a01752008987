package policy

// Policy is one named policy: exactly one of All (every rule must hold) or
// Any (at least one rule must hold). The same struct is produced by Parse and
// accepted from Caddy JSON configuration or code; Compile validates it.
type Policy struct {
	// ID names the policy; clients and routes refer to it. Required, unique
	// across every document compiled together, 1 to 128 characters with no
	// whitespace or control characters.
	ID string `json:"id"`
	// Description is free text for humans. Optional.
	Description string `json:"description,omitempty"`
	// All lists rules that must all hold (AND). Exactly one of All and Any
	// is set and it is not empty.
	All []Rule `json:"all,omitempty"`
	// Any lists rules of which at least one must hold (OR).
	Any []Rule `json:"any,omitempty"`
}

// Rule is either a claim rule (Claim set, with optional constraints) or —
// a Gatehouse extension — a nested group (exactly one of All or Any set, no
// other field). In YAML a claim rule is the list item `- rule: {...}` and a
// group is the list item `- all: [...]` or `- any: [...]`; in JSON the rule is
// written flat: {"claim": "groups", "in": ["admins"]} or {"any": [...]}.
type Rule struct {
	// Claim is the claim name or dotted path ("address.country") the rule
	// tests. Required for a claim rule. The whole name is first looked up as
	// a top-level claim; only when that is absent does each dot step into an
	// object.
	Claim string `json:"claim,omitempty"`
	// In holds when the claim (or, for an array claim, at least one element)
	// equals one of these values. An empty, non-nil list is an error.
	In []string `json:"in,omitempty"`
	// NotIn holds when the claim (or, for an array claim, every element) is a
	// scalar equal to none of these values.
	NotIn []string `json:"not-in,omitempty"`
	// MinValue holds when the claim is at least this number or RFC 3339
	// timestamp (inclusive).
	MinValue *string `json:"minValue,omitempty"`
	// MaxValue holds when the claim is at most this number or RFC 3339
	// timestamp (inclusive).
	MaxValue *string `json:"maxValue,omitempty"`
	// Matches (extension) holds when the claim's text (or, for an array, an
	// element's text) matches this RE2 regular expression in full: the
	// expression is anchored at both ends.
	Matches string `json:"matches,omitempty"`
	// Exists (extension): true requires the claim to be present (the default
	// for every claim rule); false requires it to be absent or null and
	// cannot be combined with other constraints.
	Exists *bool `json:"exists,omitempty"`
	// All (extension) makes this rule a nested group whose rules must all hold.
	All []Rule `json:"all,omitempty"`
	// Any (extension) makes this rule a nested group of which one rule must hold.
	Any []Rule `json:"any,omitempty"`
}

// IsGroup reports whether r is a nested group rather than a claim rule.
func (r *Rule) IsGroup() bool { return r.All != nil || r.Any != nil }
