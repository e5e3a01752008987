package claims

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Parse reads a claim map document (YAML; JSON is YAML too), validates it as
// Compile does and returns it compiled. Every problem is reported as
// "file:line:col: message (hint: ...)" in an ErrorList.
func Parse(filename string, src []byte) (*Map, error) {
	p := &parser{file: filename}
	if len(src) > MaxSourceSize {
		return nil, ErrorList{{File: filename, Line: 1, Col: 1, Msg: fmt.Sprintf("document is larger than %d bytes", MaxSourceSize)}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	err := dec.Decode(&doc)
	switch {
	case errors.Is(err, io.EOF):
		return nil, ErrorList{{File: filename, Line: 1, Col: 1, Msg: "document is empty", Hint: "a claim map starts with mode: merge or mode: filter"}}
	case err != nil:
		p.yamlError(err)
		return nil, p.errs
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		p.errAt(&extra, "a claim map file holds one YAML document", "remove the second document (after ---)")
	} else if !errors.Is(err, io.EOF) {
		p.yamlError(err)
	}
	m, locs, ok := p.document(&doc)
	if ok {
		m.compile(func(i int, field, msg, hint string) {
			n := locs.root
			if i >= 0 {
				n = locs.items[i].node
				if k := locs.items[i].keys[field]; k != nil {
					n = k
				}
			} else if k := locs.rootKeys[field]; k != nil {
				n = k
			}
			p.errAt(n, msg, hint)
		})
	}
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
	return m, nil
}

type parser struct {
	file string
	errs ErrorList
}

func (p *parser) errAt(n *yaml.Node, msg, hint string) {
	if len(p.errs) < maxErrors {
		p.errs = append(p.errs, &Error{File: p.file, Line: n.Line, Col: n.Column, Msg: msg, Hint: hint})
	}
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (p *parser) yamlError(err error) {
	e := &Error{File: p.file, Line: 1, Msg: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: "), Hint: "fix the YAML syntax; check indentation and quoting"}
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Msg = "invalid YAML: " + m[2]
	}
	p.errs = append(p.errs, e)
}

type itemLoc struct {
	node *yaml.Node
	keys map[string]*yaml.Node
}

type locs struct {
	root     *yaml.Node
	rootKeys map[string]*yaml.Node
	items    []itemLoc
}

type pair struct {
	name     string
	key, val *yaml.Node
}

// ok rejects aliases and explicit tags other than !!str.
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

// text reads a scalar as text; unquoted and quoted scalars mean the same.
func (p *parser) text(n *yaml.Node, what string) (string, bool) {
	if !p.ok(n) {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		p.errAt(n, what+" must be a single value", `quote the value if it contains ": " or starts with "[" or "{"`)
		return "", false
	}
	if n.Value == "" && n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 {
		p.errAt(n, what+" is empty", "give it a value")
		return "", false
	}
	return n.Value, true
}

func unknownKey(p *parser, k *yaml.Node, where string, known []string, hint string) {
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

func (p *parser) document(doc *yaml.Node) (*Map, *locs, bool) {
	m := &Map{}
	l := &locs{rootKeys: map[string]*yaml.Node{}}
	if len(doc.Content) == 0 {
		p.errAt(doc, "document is empty", "a claim map starts with mode: merge or mode: filter")
		return nil, nil, false
	}
	root := doc.Content[0]
	l.root = root
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		p.errAt(root, "document is empty", "a claim map starts with mode: merge or mode: filter")
		return nil, nil, false
	}
	pairs, good := p.mapping(root, "a claim map", "a claim map has mode: and transformations:")
	if pairs == nil {
		return nil, nil, false
	}
	for _, kv := range pairs {
		l.rootKeys[kv.name] = kv.key
		switch kv.name {
		case "mode":
			s, ok := p.text(kv.val, "mode")
			m.Mode = s
			good = good && ok
		case "transformations":
			ok := p.ok(kv.val)
			switch {
			case !ok:
			case kv.val.Kind == yaml.ScalarNode && kv.val.Tag == "!!null":
				m.Transformations = []Transformation{}
			case kv.val.Kind != yaml.SequenceNode:
				p.errAt(kv.val, "transformations must be a list", "start each transformation with - source: or - target:")
				ok = false
			default:
				for _, item := range kv.val.Content {
					t, il, iok := p.transformation(item)
					m.Transformations = append(m.Transformations, t)
					l.items = append(l.items, il)
					ok = ok && iok
				}
			}
			good = good && ok
		case "claims":
			p.errAt(kv.key, `unknown key "claims" in a claim map`, `Gatehouse names the list "transformations"`)
			good = false
		default:
			unknownKey(p, kv.key, "a claim map", []string{"mode", "transformations"}, "a claim map has mode: and transformations:")
			good = false
		}
	}
	return m, l, good
}

var transformationKeys = []string{"source", "target", "value", "map", "unmapped", "split", "join", "remove"}

func (p *parser) transformation(n *yaml.Node) (Transformation, itemLoc, bool) {
	var t Transformation
	il := itemLoc{node: n, keys: map[string]*yaml.Node{}}
	pairs, good := p.mapping(n, "a transformation", "write - source: CLAIM, - target: CLAIM with value:, and so on")
	if pairs == nil {
		if good && n.Kind == yaml.MappingNode {
			p.errAt(n, "empty transformation", "a transformation needs source, target or value")
		}
		return t, il, false
	}
	for _, kv := range pairs {
		il.keys[kv.name] = kv.key
		var ok bool
		switch kv.name {
		case "source":
			t.Source, ok = p.text(kv.val, "source")
		case "target":
			t.Target, ok = p.text(kv.val, "target")
		case "unmapped":
			t.Unmapped, ok = p.text(kv.val, "unmapped")
		case "split", "join":
			var s string
			if s, ok = p.text(kv.val, kv.name); ok && s == "" {
				p.errAt(kv.val, kv.name+` separator is empty`, `write a separator such as ","`)
				ok = false
			}
			if kv.name == "split" {
				t.Split = s
			} else {
				t.Join = s
			}
		case "remove":
			var s string
			if s, ok = p.text(kv.val, "remove"); ok {
				switch strings.ToLower(s) {
				case "true":
					t.Remove = true
				case "false":
				default:
					p.errAt(kv.val, fmt.Sprintf("remove must be true or false, not %q", s), "")
					ok = false
				}
			}
		case "value":
			var v any
			if v, ok = p.value(kv.val, 1); ok {
				if v == nil {
					p.errAt(kv.key, "value is empty", `write "" for the empty string; to delete a claim use remove: true`)
					ok = false
				} else {
					t.Value = mustJSON(v)
				}
			}
		case "map":
			var pairs []pair
			if pairs, ok = p.mapping(kv.val, "map", "write map: {from: to, ...}"); ok || pairs != nil {
				t.Map = make(map[string]json.RawMessage, len(pairs))
				for _, e := range pairs {
					v, vok := p.value(e.val, 1)
					if vok && v == nil {
						p.errAt(e.key, fmt.Sprintf("map value for %q is empty", e.name), "use unmapped: drop to remove values that are not listed")
						vok = false
					}
					if vok {
						t.Map[e.name] = mustJSON(v)
					}
					ok = ok && vok
				}
			}
		default:
			unknownKey(p, kv.key, "a transformation", transformationKeys, "a transformation has source, target, value, and the Gatehouse extensions map, unmapped, split, join and remove")
		}
		good = good && ok
	}
	return t, il, good
}

// value converts a YAML value to a JSON value: plain scalars are typed
// (booleans, numbers, null), quoted ones are strings, timestamps stay text.
func (p *parser) value(n *yaml.Node, depth int) (any, bool) {
	if !p.ok(n) {
		return nil, false
	}
	if depth > MaxValueDepth {
		p.errAt(n, fmt.Sprintf("value is nested more than %d levels deep", MaxValueDepth), "")
		return nil, false
	}
	switch n.Kind {
	case yaml.SequenceNode:
		list := make([]any, 0, len(n.Content))
		for _, e := range n.Content {
			v, ok := p.value(e, depth+1)
			if !ok {
				return nil, false
			}
			if v == nil {
				p.errAt(e, "list element is empty", `write "" for the empty string`)
				return nil, false
			}
			list = append(list, v)
		}
		return list, true
	case yaml.MappingNode:
		pairs, ok := p.mapping(n, "value", "")
		if !ok {
			return nil, false
		}
		obj := make(map[string]any, len(pairs))
		for _, kv := range pairs {
			v, ok := p.value(kv.val, depth+1)
			if !ok {
				return nil, false
			}
			if v == nil {
				p.errAt(kv.key, fmt.Sprintf("value of %q is empty", kv.name), `write "" for the empty string`)
				return nil, false
			}
			obj[kv.name] = v
		}
		return obj, true
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, true
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				p.errAt(n, "invalid boolean: "+err.Error(), "")
				return nil, false
			}
			return b, true
		case "!!int", "!!float":
			var f float64
			if err := n.Decode(&f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				p.errAt(n, fmt.Sprintf("%s is not a JSON number", n.Value), `quote it to make it text`)
				return nil, false
			}
			return f, true
		}
		return n.Value, true
	}
	p.errAt(n, "unsupported value", "")
	return nil, false
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // values come from value(), which yields only JSON types
	}
	return b
}
