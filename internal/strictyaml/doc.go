// Package strictyaml owns the strict YAML reading that Gatehouse's
// hand-written document formats share (policy documents in package policy,
// claim maps in module/internal/claims): rejecting aliases and explicit tags,
// reading mappings with duplicate-key checks, suggesting the key an unknown
// key most likely means, converting yaml.v3 syntax errors, collecting
// positioned problems up to MaxErrors in source order, and formatting a
// problem as "file:line:col: message (hint: ...)".
//
// It knows nothing of what the documents mean: each format keeps its own
// keys, messages and exported Error and ErrorList types, and converts the
// Problems a Reader collected into them. It imports nothing of Caddy.
package strictyaml
