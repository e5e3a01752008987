// Package policy owns Gatehouse's policy language: the Entrypage-compatible
// YAML format, its AST (shared with Caddy JSON configuration and the
// management API), the compiler, the evaluator with its explanations, and the
// logic of the `caddy gatehouse policy check|eval` commands. It imports
// nothing of Caddy.
//
// # Documents
//
// A document has one key, policy, holding a list of policies:
//
//	policy:
//	  - id: admins-only              # required, unique, no whitespace, ≤ 128 bytes
//	    description: "Admins only"   # optional
//	    all:                         # or any: — exactly one, not empty
//	      - rule:
//	          claim: groups          # required
//	          in: [admins]           # optional constraints; all present must hold
//	          not-in: [suspended]
//	          minValue: "1"
//	          maxValue: "10"
//
// all holds when every listed rule holds; any when at least one does. A rule
// with only claim requires the claim to be present. A file may hold several
// YAML documents ("---"); JSON documents are YAML too. The AST from Caddy
// JSON writes rules flat ({"claim": "groups", "in": ["admins"]}).
//
// Gatehouse extensions (not in Entrypage):
//
//   - Nested groups: a list item may be `- all: [...]` or `- any: [...]`
//     instead of `- rule:`, nesting at most MaxDepth levels.
//   - matches: an RE2 regular expression that must match the whole text of
//     the claim (it is anchored at both ends: "admin" does not match
//     "sysadmin"). Compiled once.
//   - exists: true (the default for every rule) or false, which requires the
//     claim to be absent or null and admits no other constraint.
//
// Any other key is an error.
//
// # Values
//
// Every constant is text: Entrypage documents quote all values, and an
// unquoted YAML scalar means exactly the same as the quoted one (42 is "42",
// true is "true", null is "null"). Claims are JSON values. A claim's scalar
// forms compare as follows:
//
//   - string: equal when the texts are identical (case-sensitive) or when
//     both are numbers of equal value ("42.0" equals "42"). A number is text
//     in JSON number syntax, so "042", "0x10", "+1" and " 1" are plain text.
//   - number (float64, json.Number, Go integer and float types): equal to a
//     constant that is a number of equal value. Numbers compare exactly, as
//     decimals: "12345678901234567890" and "12345678901234567891" differ.
//     A float64 claim is taken at its shortest round-tripping decimal value.
//   - boolean: equal to the constant "true" or "false" (lowercase).
//
// in holds when the claim equals one of the listed values; for an array claim
// when at least one element does (non-scalar elements never match). not-in
// holds when the claim is a scalar equal to none of the values; for an array
// claim when every element is a scalar equal to none (so an empty array
// satisfies not-in, and an array containing an object or null fails it).
//
// minValue and maxValue are inclusive bounds, each a number or an RFC 3339
// date-time ("2024-01-01T00:00:00Z", fractional seconds and offsets allowed,
// leap seconds not). The claim must be a number, a numeric string or an RFC
// 3339 string; a timestamp compared with a number treats the number as epoch
// seconds (so auth_time: 1717200000 against minValue "2024-01-01T00:00:00Z"
// compares instants). Booleans, other strings, arrays and objects are not
// comparable. minValue greater than maxValue is an error.
//
// matches tests a string's text, a number's JSON text (42, 2.5, 1e+21) or a
// boolean's ("true"); for an array, any element's.
//
// # Missing claims and paths
//
// A claim that is absent or JSON null is missing. Every rule on a missing
// claim fails, except exists: false, which holds. A constraint that cannot
// compare the claim's type fails too. The language fails closed, and the
// explanation says why.
//
// A claim name is looked up as a whole top-level key first (so namespaced
// claims such as "https://example.com/roles" work); only if that key is absent
// does each dot step into an object: address.country reads
// {"address": {"country": ...}}. A step through a non-object makes the claim
// missing. Paths do not index arrays.
//
// # Evaluation
//
// Set.Evaluate grants access when at least one of the given policy ids is
// satisfied (OR across policies, as Entrypage does); with no ids at all it
// allows, because no policy applies. An unknown id is never satisfied; use
// Set.Check to reject it when configuration loads. Evaluate allocates
// nothing; Decision.Explanation and Decision.Failures (for audit logs, with
// claim values) and Decision.Public (policy ids only, for the access-denied
// page) build their text on demand.
//
// # Errors and limits
//
// Parse reports each problem as "file:line:col: message (hint: ...)" in an
// ErrorList: unknown keys (with a suggestion), all and any together or
// neither, empty lists, duplicate ids (across documents too), rules without
// claim, minValue above maxValue, non-scalar list items, invalid regular
// expressions, YAML aliases and tags, documents over MaxSourceSize and groups
// nested deeper than MaxDepth. Compile checks the same rules on an AST built
// in code and names the policy id and rule path instead of a position.
package policy
