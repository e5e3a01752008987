package claims

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse-auth/gatehouse/internal/strictyaml"
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
		p.YAMLError(err)
		return nil, p.errs()
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		p.Report(&extra, "a claim map file holds one YAML document", "remove the second document (after ---)")
	} else if !errors.Is(err, io.EOF) {
		p.YAMLError(err)
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
			p.Report(n, msg, hint)
		})
	}
	if len(p.Problems) > 0 {
		return nil, p.errs()
	}
	return m, nil
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

type itemLoc struct {
	node *yaml.Node
	keys map[string]*yaml.Node
}

type locs struct {
	root     *yaml.Node
	rootKeys map[string]*yaml.Node
	items    []itemLoc
}

// text reads a scalar as text; unquoted and quoted scalars mean the same.
func (p *parser) text(n *yaml.Node, what string) (string, bool) {
	if !p.OK(n) {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		p.Report(n, what+" must be a single value", `quote the value if it contains ": " or starts with "[" or "{"`)
		return "", false
	}
	if n.Value == "" && n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 {
		p.Report(n, what+" is empty", "give it a value")
		return "", false
	}
	return n.Value, true
}

func (p *parser) document(doc *yaml.Node) (*Map, *locs, bool) {
	m := &Map{}
	l := &locs{rootKeys: map[string]*yaml.Node{}}
	if len(doc.Content) == 0 {
		p.Report(doc, "document is empty", "a claim map starts with mode: merge or mode: filter")
		return nil, nil, false
	}
	root := doc.Content[0]
	l.root = root
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		p.Report(root, "document is empty", "a claim map starts with mode: merge or mode: filter")
		return nil, nil, false
	}
	pairs, good := p.Mapping(root, "a claim map", "a claim map has mode: and transformations:")
	if pairs == nil {
		return nil, nil, false
	}
	for _, kv := range pairs {
		l.rootKeys[kv.Name] = kv.Key
		switch kv.Name {
		case "mode":
			s, ok := p.text(kv.Val, "mode")
			m.Mode = s
			good = good && ok
		case "transformations":
			ok := p.OK(kv.Val)
			switch {
			case !ok:
			case kv.Val.Kind == yaml.ScalarNode && kv.Val.Tag == "!!null":
				m.Transformations = []Transformation{}
			case kv.Val.Kind != yaml.SequenceNode:
				p.Report(kv.Val, "transformations must be a list", "start each transformation with - source: or - target:")
				ok = false
			default:
				for _, item := range kv.Val.Content {
					t, il, iok := p.transformation(item)
					m.Transformations = append(m.Transformations, t)
					l.items = append(l.items, il)
					ok = ok && iok
				}
			}
			good = good && ok
		case "claims":
			p.Report(kv.Key, `unknown key "claims" in a claim map`, `Gatehouse names the list "transformations"`)
			good = false
		default:
			p.UnknownKey(kv.Key, "a claim map", []string{"mode", "transformations"}, "a claim map has mode: and transformations:")
			good = false
		}
	}
	return m, l, good
}

var transformationKeys = []string{"source", "target", "value", "map", "unmapped", "split", "join", "remove"}

func (p *parser) transformation(n *yaml.Node) (Transformation, itemLoc, bool) {
	var t Transformation
	il := itemLoc{node: n, keys: map[string]*yaml.Node{}}
	pairs, good := p.Mapping(n, "a transformation", "write - source: CLAIM, - target: CLAIM with value:, and so on")
	if pairs == nil {
		if good && n.Kind == yaml.MappingNode {
			p.Report(n, "empty transformation", "a transformation needs source, target or value")
		}
		return t, il, false
	}
	for _, kv := range pairs {
		il.keys[kv.Name] = kv.Key
		var ok bool
		switch kv.Name {
		case "source":
			t.Source, ok = p.text(kv.Val, "source")
		case "target":
			t.Target, ok = p.text(kv.Val, "target")
		case "unmapped":
			t.Unmapped, ok = p.text(kv.Val, "unmapped")
		case "split", "join":
			var s string
			if s, ok = p.text(kv.Val, kv.Name); ok && s == "" {
				p.Report(kv.Val, kv.Name+` separator is empty`, `write a separator such as ","`)
				ok = false
			}
			if kv.Name == "split" {
				t.Split = s
			} else {
				t.Join = s
			}
		case "remove":
			var s string
			if s, ok = p.text(kv.Val, "remove"); ok {
				switch strings.ToLower(s) {
				case "true":
					t.Remove = true
				case "false":
				default:
					p.Report(kv.Val, fmt.Sprintf("remove must be true or false, not %q", s), "")
					ok = false
				}
			}
		case "value":
			var v any
			if v, ok = p.value(kv.Val, 1); ok {
				if v == nil {
					p.Report(kv.Key, "value is empty", `write "" for the empty string; to delete a claim use remove: true`)
					ok = false
				} else {
					t.Value = mustJSON(v)
				}
			}
		case "map":
			var pairs []strictyaml.Pair
			if pairs, ok = p.Mapping(kv.Val, "map", "write map: {from: to, ...}"); ok || pairs != nil {
				t.Map = make(map[string]json.RawMessage, len(pairs))
				for _, e := range pairs {
					v, vok := p.value(e.Val, 1)
					if vok && v == nil {
						p.Report(e.Key, fmt.Sprintf("map value for %q is empty", e.Name), "use unmapped: drop to remove values that are not listed")
						vok = false
					}
					if vok {
						t.Map[e.Name] = mustJSON(v)
					}
					ok = ok && vok
				}
			}
		default:
			p.UnknownKey(kv.Key, "a transformation", transformationKeys, "a transformation has source, target, value, and the Gatehouse extensions map, unmapped, split, join and remove")
		}
		good = good && ok
	}
	return t, il, good
}

// value converts a YAML value to a JSON value: plain scalars are typed
// (booleans, numbers, null), quoted ones are strings, timestamps stay text.
func (p *parser) value(n *yaml.Node, depth int) (any, bool) {
	if !p.OK(n) {
		return nil, false
	}
	if depth > MaxValueDepth {
		p.Report(n, fmt.Sprintf("value is nested more than %d levels deep", MaxValueDepth), "")
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
				p.Report(e, "list element is empty", `write "" for the empty string`)
				return nil, false
			}
			list = append(list, v)
		}
		return list, true
	case yaml.MappingNode:
		pairs, ok := p.Mapping(n, "value", "")
		if !ok {
			return nil, false
		}
		obj := make(map[string]any, len(pairs))
		for _, kv := range pairs {
			v, ok := p.value(kv.Val, depth+1)
			if !ok {
				return nil, false
			}
			if v == nil {
				p.Report(kv.Key, fmt.Sprintf("value of %q is empty", kv.Name), `write "" for the empty string`)
				return nil, false
			}
			obj[kv.Name] = v
		}
		return obj, true
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, true
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				p.Report(n, "invalid boolean: "+err.Error(), "")
				return nil, false
			}
			return b, true
		case "!!int", "!!float":
			var f float64
			if err := n.Decode(&f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				p.Report(n, fmt.Sprintf("%s is not a JSON number", n.Value), `quote it to make it text`)
				return nil, false
			}
			return f, true
		}
		return n.Value, true
	}
	p.Report(n, "unsupported value", "")
	return nil, false
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // values come from value(), which yields only JSON types
	}
	return b
}
