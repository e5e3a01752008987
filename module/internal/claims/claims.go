package claims

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/gatehouse-auth/gatehouse/internal/strictyaml"
)

// Modes of a claim map.
const (
	// ModeMerge keeps every incoming claim and applies the listed changes.
	ModeMerge = "merge"
	// ModeFilter imports only what the transformations write.
	ModeFilter = "filter"
)

// Values of Transformation.Unmapped.
const (
	UnmappedKeep = "keep"
	UnmappedDrop = "drop"
)

// Limits that keep parsing and applying bounded on any input.
const (
	// MaxSourceSize is the largest claim map document Parse accepts, in bytes.
	MaxSourceSize = 256 << 10
	// MaxTransformations bounds the transformation list.
	MaxTransformations = 1000
	// MaxValueDepth bounds how deeply a value or map result may nest.
	MaxValueDepth = 32
	// MaxNameLength bounds a source or target, in bytes.
	MaxNameLength = 1024
)

// reserved claims are set by Gatehouse and may not be written or removed.
var reserved = map[string]bool{"iss": true, "sub": true, "aud": true, "exp": true, "nbf": true, "iat": true, "jti": true}

// Map is a claim map: the AST produced by Parse and accepted from Caddy JSON
// configuration. Call Compile before Apply (Parse does).
type Map struct {
	// Mode is "merge" (keep every incoming claim) or "filter" (keep only what
	// the transformations write). Required.
	Mode string `json:"mode"`
	// Transformations run in order. Optional in merge mode; filter mode needs
	// at least one.
	Transformations []Transformation `json:"transformations,omitempty"`

	prog     []step // set by Compile
	compiled bool
}

// Transformation is one entry of a claim map. See the package documentation
// for the combinations that are allowed.
type Transformation struct {
	// Source is the incoming claim to read: a top-level name, or a dotted path
	// into objects.
	Source string `json:"source,omitempty"`
	// Target is the top-level claim to write, taken literally. Defaults to
	// Source.
	Target string `json:"target,omitempty"`
	// Value is a constant JSON value to write. JSON null is not allowed.
	Value json.RawMessage `json:"value,omitempty"`
	// Map (extension) replaces values whose JSON text equals a key.
	Map map[string]json.RawMessage `json:"map,omitempty"`
	// Unmapped (extension) is "keep" (default) or "drop": what Map does with
	// values it has no key for. Only with Map.
	Unmapped string `json:"unmapped,omitempty"`
	// Split (extension) splits a string into a list at this separator.
	Split string `json:"split,omitempty"`
	// Join (extension) joins a list into a string with this separator.
	Join string `json:"join,omitempty"`
	// Remove (extension) deletes Source from the result after the write.
	Remove bool `json:"remove,omitempty"`
}

// step is a compiled transformation.
type step struct {
	source   string
	segments []string // nil when source has no dot
	target   string   // "" when nothing is written
	value    any
	hasValue bool
	mapping  map[string]any
	drop     bool
	split    string
	join     string
	remove   bool
}

// Error is one problem in a claim map. Parse sets File, Line and Col
// (1-based; Col 0 when only the line is known); Compile, without positions,
// sets Path instead ("transformations[2]").
type Error struct {
	File      string
	Line, Col int
	Path      string
	Msg       string
	Hint      string
}

// Error formats the problem as "file:line:col: message (hint: ...)" or
// "transformations[2]: message (hint: ...)".
func (e *Error) Error() string {
	return strictyaml.Format(e.File, e.Line, e.Col, e.Path, e.Msg, e.Hint)
}

// ErrorList holds every problem found, in source order.
type ErrorList []*Error

// Error joins the problems, one per line.
func (l ErrorList) Error() string { return strictyaml.Join(l) }

const maxErrors = strictyaml.MaxErrors

// ErrNotCompiled is returned by Apply on a Map that was not compiled.
var ErrNotCompiled = errors.New("claims: claim map is not compiled")

// reporter locates a problem: field "" is the whole map or transformation.
type reporter func(index int, field, msg, hint string)

// Compile validates m and prepares it for Apply. Errors name the
// transformation index ("transformations[2]: ...") and are an ErrorList.
// Compile is not safe to call concurrently with Apply on the same Map.
func (m *Map) Compile() error {
	var errs ErrorList
	m.compile(func(i int, field, msg, hint string) {
		if len(errs) >= maxErrors {
			return
		}
		path := ""
		if i >= 0 {
			path = fmt.Sprintf("transformations[%d]", i)
		} else if field != "" {
			path = field
		}
		errs = append(errs, &Error{Path: path, Msg: msg, Hint: hint})
	})
	if len(errs) > 0 {
		return errs
	}
	return nil
}

func (m *Map) compile(fail reporter) {
	m.prog, m.compiled = nil, false
	ok := true
	bad := func(i int, field, msg, hint string) {
		fail(i, field, msg, hint)
		ok = false
	}
	switch m.Mode {
	case ModeMerge, ModeFilter:
	case "":
		bad(-1, "mode", "mode is required", "write mode: merge (keep every claim) or mode: filter (keep only what is listed)")
	default:
		bad(-1, "mode", fmt.Sprintf("mode %q is neither merge nor filter", m.Mode), "write mode: merge or mode: filter")
	}
	if m.Mode == ModeFilter && len(m.Transformations) == 0 {
		bad(-1, "transformations", "filter mode without transformations drops every claim", "list the claims to import, e.g. - source: email")
	}
	if len(m.Transformations) > MaxTransformations {
		bad(-1, "transformations", fmt.Sprintf("more than %d transformations", MaxTransformations), "")
		return
	}
	prog := make([]step, 0, len(m.Transformations))
	for i := range m.Transformations {
		s, sok := compileOne(&m.Transformations[i], m.Mode, func(field, msg, hint string) { bad(i, field, msg, hint) })
		if sok {
			prog = append(prog, s)
		}
	}
	if ok {
		m.prog, m.compiled = prog, true
	}
}

func compileOne(t *Transformation, mode string, bad func(field, msg, hint string)) (step, bool) {
	ok := true
	fail := func(field, msg, hint string) {
		bad(field, msg, hint)
		ok = false
	}
	s := step{source: t.Source, target: t.Target, split: t.Split, join: t.Join, remove: t.Remove}
	hasOps := t.Map != nil || t.Split != "" || t.Join != ""
	for _, f := range []struct{ name, v string }{{"source", t.Source}, {"target", t.Target}} {
		if len(f.v) > MaxNameLength {
			fail(f.name, fmt.Sprintf("%s is longer than %d bytes", f.name, MaxNameLength), "")
		}
	}
	if strings.Contains(t.Source, ".") {
		s.segments = strings.Split(t.Source, ".")
	}
	if t.Value != nil {
		v, err := decodeValue(t.Value)
		if err != nil {
			fail("value", "value is not valid: "+err.Error(), "")
		} else if v == nil {
			fail("value", "value is null", `to delete a claim use source: NAME with remove: true; write "" for the empty string`)
		} else {
			s.value, s.hasValue = v, true
		}
	}
	if t.Map != nil {
		if len(t.Map) == 0 {
			fail("map", "map is empty", "list at least one from: to pair")
		}
		s.mapping = make(map[string]any, len(t.Map))
		for k, raw := range t.Map {
			v, err := decodeValue(raw)
			switch {
			case err != nil:
				fail("map", fmt.Sprintf("map value for %q is not valid: %v", k, err), "")
			case v == nil:
				fail("map", fmt.Sprintf("map value for %q is null", k), "use unmapped: drop to remove values")
			default:
				s.mapping[k] = v
			}
		}
	}
	switch t.Unmapped {
	case "", UnmappedKeep:
	case UnmappedDrop:
		s.drop = true
	default:
		fail("unmapped", fmt.Sprintf("unmapped %q is neither keep nor drop", t.Unmapped), "")
	}
	if t.Unmapped != "" && t.Map == nil {
		fail("unmapped", "unmapped needs map", "add map: {from: to} or remove unmapped")
	}
	switch {
	case t.Source == "" && t.Target == "" && t.Value == nil && !hasOps && !t.Remove:
		fail("", "empty transformation", "a transformation needs source, target or value")
		return s, false
	case t.Source == "" && t.Value == nil:
		fail("", "transformation has neither source nor value", "add source: CLAIM to copy a claim, or value: to set a constant")
	case t.Value != nil && hasOps:
		fail("value", "value cannot be combined with map, split or join", "those operate on the source's value; use either value or them")
	case t.Source == "" && t.Remove:
		fail("remove", "remove needs source", "")
	case t.Value != nil && t.Remove:
		fail("remove", "remove cannot be combined with value", "")
	case t.Remove && t.Target == t.Source:
		fail("remove", "remove with target equal to source would delete what was just written", "drop remove, or choose another target")
	}
	if t.Source != "" && t.Target == "" {
		writes := t.Value != nil || hasOps || (mode == ModeFilter && !t.Remove)
		switch {
		case t.Remove && mode == ModeFilter:
			fail("remove", "remove without target has no effect in filter mode", "filter mode imports only the listed claims; delete this transformation")
		case !writes && !t.Remove && mode == ModeMerge:
			fail("", "source alone has no effect in merge mode", "merge mode keeps every claim already; add target to copy it, or remove: true to delete it")
		case writes && s.segments != nil:
			fail("target", fmt.Sprintf("source %q is a dotted path, so target is required", t.Source), "name the claim to write, e.g. target: "+s.segments[len(s.segments)-1])
		}
		if writes {
			s.target = t.Source
		}
	}
	if s.target != "" && reserved[s.target] {
		field := "target"
		if t.Target == "" {
			field = "source"
		}
		fail(field, fmt.Sprintf("claim %q is set by Gatehouse and cannot be written", s.target), "choose another target name")
	}
	if t.Remove && reserved[t.Source] {
		fail("remove", fmt.Sprintf("claim %q is set by Gatehouse and cannot be removed", t.Source), "")
	}
	return s, ok
}

// decodeValue decodes a JSON value with numbers as float64, as
// encoding/json decodes claims, and checks its depth.
func decodeValue(raw json.RawMessage) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data after the value")
	}
	if depth(v) > MaxValueDepth {
		return nil, fmt.Errorf("nested more than %d levels deep", MaxValueDepth)
	}
	return v, nil
}

func depth(v any) int {
	d := 0
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			d = max(d, depth(e))
		}
		return d + 1
	case map[string]any:
		for _, e := range x {
			d = max(d, depth(e))
		}
		return d + 1
	}
	return 0
}

// Apply transforms in and returns the result. It never modifies in, and the
// result shares no maps or slices with in or with m. It is safe for
// concurrent use once m is compiled.
func (m *Map) Apply(in map[string]any) (map[string]any, error) {
	if m == nil || !m.compiled {
		return nil, ErrNotCompiled
	}
	var out map[string]any
	if m.Mode == ModeMerge {
		out = deepCopy(in).(map[string]any)
	} else {
		out = make(map[string]any)
	}
	for i := range m.prog {
		s := &m.prog[i]
		if err := s.apply(in, out); err != nil {
			return nil, fmt.Errorf("claims: transformations[%d] (source %q): %w", i, s.source, err)
		}
	}
	return out, nil
}

func (s *step) apply(in, out map[string]any) error {
	var v any
	if s.source != "" {
		var ok bool
		v, ok = lookup(in, s.source, s.segments)
		if !ok {
			return nil
		}
	}
	if s.target != "" {
		write := true
		var err error
		if s.hasValue {
			v = deepCopy(s.value)
		} else {
			v, write, err = s.pipeline(deepCopy(v))
			if err != nil {
				return err
			}
		}
		if write {
			out[s.target] = v
		}
	}
	if s.remove {
		remove(out, s.source, s.segments)
	}
	return nil
}

// pipeline runs split → map → join. write is false when unmapped: drop
// dropped a scalar.
func (s *step) pipeline(v any) (any, bool, error) {
	if s.split != "" {
		switch x := v.(type) {
		case []any:
		case map[string]any:
			return nil, false, errors.New("cannot split an object")
		default:
			text, _ := scalarText(x)
			parts := strings.Split(text, s.split)
			list := make([]any, 0, len(parts))
			for _, p := range parts {
				if p = strings.TrimSpace(p); p != "" {
					list = append(list, p)
				}
			}
			v = list
		}
	}
	if s.mapping != nil {
		switch x := v.(type) {
		case []any:
			list := make([]any, 0, len(x))
			for _, e := range x {
				text, ok := scalarText(e)
				if !ok {
					return nil, false, fmt.Errorf("cannot map a list element of type %s", typeName(e))
				}
				if to, found := s.mapping[text]; found {
					list = append(list, deepCopy(to))
				} else if !s.drop {
					list = append(list, e)
				}
			}
			v = list
		default:
			text, ok := scalarText(x)
			if !ok {
				return nil, false, fmt.Errorf("cannot map a value of type %s", typeName(x))
			}
			if to, found := s.mapping[text]; found {
				v = deepCopy(to)
			} else if s.drop {
				return nil, false, nil
			}
		}
	}
	if s.join != "" {
		if x, isList := v.([]any); isList {
			parts := make([]string, len(x))
			for i, e := range x {
				text, ok := scalarText(e)
				if !ok {
					return nil, false, fmt.Errorf("cannot join a list element of type %s", typeName(e))
				}
				parts[i] = text
			}
			v = strings.Join(parts, s.join)
		} else if _, ok := scalarText(v); !ok {
			return nil, false, fmt.Errorf("cannot join a value of type %s", typeName(v))
		}
	}
	return v, true, nil
}

// lookup reads a claim: the whole name first, then the dotted path. A null
// value counts as absent.
func lookup(in map[string]any, name string, segments []string) (any, bool) {
	if v, ok := in[name]; ok {
		return v, v != nil
	}
	if segments == nil {
		return nil, false
	}
	m := in
	for i, seg := range segments {
		v, ok := m[seg]
		if !ok || v == nil {
			return nil, false
		}
		if i == len(segments)-1 {
			return v, true
		}
		if m, ok = v.(map[string]any); !ok {
			return nil, false
		}
	}
	return nil, false
}

// remove deletes a claim from out, which Apply owns entirely.
func remove(out map[string]any, name string, segments []string) {
	if _, ok := out[name]; ok || segments == nil {
		delete(out, name)
		return
	}
	m := out
	for i, seg := range segments {
		if i == len(segments)-1 {
			delete(m, seg)
			return
		}
		next, ok := m[seg].(map[string]any)
		if !ok {
			return
		}
		m = next
	}
}

// scalarText is the JSON text of a string, number or boolean.
func scalarText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case json.Number:
		return x.String(), true
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "", false
		}
		b, err := json.Marshal(x)
		return string(b), err == nil
	case float32, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return fmt.Sprint(x), true
	}
	return "", false
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "object"
	case []any, []string:
		return "list"
	}
	return fmt.Sprintf("%T", v)
}

// deepCopy copies maps and slices so the result shares nothing mutable.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		c := make(map[string]any, len(x))
		for k, e := range x {
			c[k] = deepCopy(e)
		}
		return c
	case []any:
		c := make([]any, len(x))
		for i, e := range x {
			c[i] = deepCopy(e)
		}
		return c
	case []string:
		c := make([]any, len(x))
		for i, e := range x {
			c[i] = e
		}
		return c
	case map[string]string:
		c := make(map[string]any, len(x))
		for k, e := range x {
			c[k] = e
		}
		return c
	}
	return v
}
