// Package claims owns claims transformation ("claim maps"): the YAML (and
// Caddy JSON) format that says how a federated provider's claims — or a local
// user's — become Gatehouse claims before tokens are minted and policies run,
// its strict parser with positioned errors, and Apply. It imports nothing of
// Caddy.
//
// # Format
//
//	mode: filter              # required: merge | filter
//	transformations:
//	  - source: login         # copy (rename) a claim
//	    target: preferred_username
//	  - source: email         # filter mode: keep a claim as it is
//	  - source: address.country   # copy a nested value (dotted path)
//	    target: country
//	  - target: idp           # add a static claim
//	    value: github
//	  - source: email_verified    # overwrite a claim that is present
//	    value: true
//	  - source: hd            # set a claim only when another is present
//	    target: workspace_user
//	    value: true
//	  - source: teams         # (ext) map values, split and join lists
//	    target: roles
//	    split: ","
//	    map: {core: admin, web: developer}
//	    unmapped: drop
//	  - source: roles         # (ext) merge mode: a rename drops the source
//	    target: role
//	    remove: true
//
// The Entrypage keys are mode, source, target and value; Gatehouse extends a
// transformation with map, unmapped, split, join and remove. Any other key is
// an error.
//
// # Semantics
//
// In merge mode the result starts as a copy of every incoming claim; in
// filter mode it starts empty and holds only what the transformations write.
// Transformations run in order and later writes win. A source is always read
// from the incoming claims, never from the result of an earlier
// transformation, so order matters only when two transformations write the
// same target. A source is looked up as a whole top-level name first and
// otherwise as a dotted path through objects; an absent or null source makes
// its transformation do nothing. A target is always a top-level claim name,
// taken literally; it defaults to the source, which then must be a top-level
// name (no dot).
//
//   - target + value: set the target to value (a JSON value: YAML scalars
//     are typed, so true is a boolean and "true" a string).
//   - source + value: if the source is present, set it (or target) to value.
//   - source + target: copy the source's value to the target, through the
//     optional pipeline split → map → join.
//   - source alone: keep the claim as it is (filter mode only; in merge mode
//     it would do nothing and is an error).
//   - split: SEP turns a string into a list of strings, trimming whitespace
//     around each element and dropping empty ones; a list stays a list, a
//     number or boolean is split as its JSON text.
//   - map: {from: to} replaces each scalar (or each list element) whose JSON
//     text equals a key; unmapped: keep (default) leaves other values as
//     they are, unmapped: drop removes them (a scalar is then not written).
//   - join: SEP turns a list into one string of its elements' texts.
//   - remove: true deletes the source from the result after the write: a
//     rename in merge mode. With source alone (merge mode) it deletes a claim.
//
// Values that an operation cannot handle (splitting an object, joining a
// list of objects, mapping an object) make Apply fail with an error naming
// the transformation; the caller should fail the sign-in. The registered JWT
// claims iss, sub, aud, exp, nbf, iat and jti are set by Gatehouse and
// cannot be written or removed. Apply never modifies its input, and its
// result shares no maps or slices with the input or with the Map.
package claims
