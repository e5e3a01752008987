package claims

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func mustParse(t testing.TB, src string) *Map {
	t.Helper()
	m, err := Parse("map.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return m
}

func decode(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

const github = `{"login":"octo","id":583231,"email":"octo@example.com","email_verified":true,
"teams":"core, web ,,ops","roles":["a","b"],"address":{"country":"NL","city":"Delft"},"hd":"example.com","nothing":null}`

func TestApply(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"merge mode with no transformations keeps every claim",
			"mode: merge\n",
			github},
		{"filter mode keeps only what is listed",
			"mode: filter\ntransformations:\n  - source: email\n  - source: login\n",
			`{"email":"octo@example.com","login":"octo"}`},
		{"source and target copy a claim (rename in filter mode)",
			"mode: filter\ntransformations:\n  - source: login\n    target: preferred_username\n",
			`{"preferred_username":"octo"}`},
		{"source and target copy a claim and keep the source in merge mode",
			"mode: merge\ntransformations:\n  - source: login\n    target: preferred_username\n",
			strings.Replace(github, `"login":"octo"`, `"login":"octo","preferred_username":"octo"`, 1)},
		{"remove turns a copy into a rename in merge mode",
			"mode: filter\ntransformations:\n  - source: email\n  - source: email\n    target: mail\n    remove: true\n",
			`{"mail":"octo@example.com"}`},
		{"remove alone deletes a claim in merge mode",
			"mode: merge\ntransformations:\n  - source: address\n    remove: true\n  - source: teams\n    remove: true\n  - source: roles\n    remove: true\n  - source: hd\n    remove: true\n  - source: nothing\n    remove: true\n",
			`{"login":"octo","id":583231,"email":"octo@example.com","email_verified":true,"nothing":null}`},
		{"a dotted source copies a nested value",
			"mode: filter\ntransformations:\n  - source: address.country\n    target: country\n",
			`{"country":"NL"}`},
		{"removing a dotted source deletes only the nested key",
			"mode: merge\ntransformations:\n  - source: address.country\n    target: country\n    remove: true\n  - source: teams\n    remove: true\n  - source: roles\n    remove: true\n",
			`{"login":"octo","id":583231,"email":"octo@example.com","email_verified":true,"country":"NL","address":{"city":"Delft"},"hd":"example.com","nothing":null}`},
		{"target and value add a static claim",
			"mode: filter\ntransformations:\n  - target: idp\n    value: github\n  - target: n\n    value: 42\n  - target: b\n    value: true\n  - target: s\n    value: \"true\"\n  - target: l\n    value: [a, 1]\n  - target: o\n    value: {k: v}\n  - target: e\n    value: \"\"\n  - target: t\n    value: 2024-01-01T00:00:00Z\n",
			`{"idp":"github","n":42,"b":true,"s":"true","l":["a",1],"o":{"k":"v"},"e":"","t":"2024-01-01T00:00:00Z"}`},
		{"source and value overwrite a present claim",
			"mode: filter\ntransformations:\n  - source: email\n  - source: email\n    value: hidden\n  - source: absent\n    value: x\n",
			`{"email":"hidden"}`},
		{"source, target and value set the target only when the source is present",
			"mode: filter\ntransformations:\n  - source: hd\n    target: workspace\n    value: true\n  - source: absent\n    target: never\n    value: true\n",
			`{"workspace":true}`},
		{"a missing or null source writes nothing",
			"mode: filter\ntransformations:\n  - source: absent\n    target: a\n  - source: nothing\n    target: b\n  - source: address.zip\n    target: c\n  - source: login.x\n    target: d\n",
			`{}`},
		{"later writes win",
			"mode: filter\ntransformations:\n  - target: x\n    value: 1\n  - target: x\n    value: 2\n",
			`{"x":2}`},
		{"sources read the incoming claims, not earlier results",
			"mode: merge\ntransformations:\n  - target: login\n    value: changed\n  - source: login\n    target: copy\n  - source: teams\n    remove: true\n  - source: roles\n    remove: true\n  - source: address\n    remove: true\n",
			`{"login":"changed","copy":"octo","id":583231,"email":"octo@example.com","email_verified":true,"hd":"example.com","nothing":null}`},
		{"split turns a string into a trimmed list",
			"mode: filter\ntransformations:\n  - source: teams\n    split: \",\"\n",
			`{"teams":["core","web","ops"]}`},
		{"split keeps a list and splits a number's text",
			"mode: filter\ntransformations:\n  - source: roles\n    split: \",\"\n  - source: id\n    target: digits\n    split: \"3\"\n",
			`{"roles":["a","b"],"digits":["58","2","1"]}`},
		{"map replaces scalars and list elements",
			"mode: filter\ntransformations:\n  - source: teams\n    target: roles\n    split: \",\"\n    map: {core: admin, web: developer}\n  - source: email_verified\n    target: verified\n    map: {true: yes}\n  - source: id\n    target: tier\n    map: {583231: 2}\n",
			`{"roles":["admin","developer","ops"],"verified":"yes","tier":2}`},
		{"unmapped drop removes values without a mapping",
			"mode: filter\ntransformations:\n  - source: teams\n    target: roles\n    split: \",\"\n    map: {core: admin}\n    unmapped: drop\n  - source: login\n    target: role\n    map: {nobody: x}\n    unmapped: drop\n  - source: hd\n    target: org\n    map: {example.com: Example}\n    unmapped: drop\n",
			`{"roles":["admin"],"org":"Example"}`},
		{"join turns a list into a string",
			"mode: filter\ntransformations:\n  - source: roles\n    join: \" \"\n  - source: login\n    target: same\n    join: \",\"\n",
			`{"roles":"a b","same":"octo"}`},
		{"split, map and join re-delimit a list",
			"mode: filter\ntransformations:\n  - source: teams\n    target: scope\n    split: \",\"\n    map: {core: \"admin:all\"}\n    join: \" \"\n",
			`{"scope":"admin:all web ops"}`},
		{"a namespaced claim name with dots is read literally first",
			"mode: filter\ntransformations:\n  - source: https://example.com/roles\n    target: roles\n",
			`{"roles":["x"]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustParse(t, tt.yaml)
			inText := github
			if strings.Contains(tt.name, "namespaced") {
				inText = `{"https://example.com/roles":["x"],"https://example":{"com/roles":["y"]}}`
			}
			in := decode(t, inText)
			before := decode(t, inText)
			got, err := m.Apply(in)
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if want := decode(t, tt.want); !reflect.DeepEqual(got, want) {
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(want)
				t.Errorf("got  %s\nwant %s", g, w)
			}
			if !reflect.DeepEqual(in, before) {
				t.Error("Apply modified its input")
			}
			// The same map from JSON configuration behaves the same.
			js, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			var again Map
			if err := json.Unmarshal(js, &again); err != nil {
				t.Fatal(err)
			}
			if err := again.Compile(); err != nil {
				t.Fatalf("JSON form %s does not compile: %v", js, err)
			}
			got2, err := again.Apply(in)
			if err != nil || !reflect.DeepEqual(got2, got) {
				t.Errorf("JSON form %s gives %v, %v", js, got2, err)
			}
		})
	}
}

func TestApplySharesNothingWithInputOrMap(t *testing.T) {
	m := mustParse(t, "mode: merge\ntransformations:\n  - target: list\n    value: [a]\n  - source: address\n    target: copy\n")
	in := decode(t, `{"address":{"country":"NL"},"groups":["x"]}`)
	in["strs"] = []string{"s"}
	out, err := m.Apply(in)
	if err != nil {
		t.Fatal(err)
	}
	out["address"].(map[string]any)["country"] = "DE"
	out["copy"].(map[string]any)["country"] = "BE"
	out["groups"].([]any)[0] = "y"
	out["list"].([]any)[0] = "z"
	out["strs"].([]any)[0] = "t"
	if in["address"].(map[string]any)["country"] != "NL" || in["groups"].([]any)[0] != "x" || in["strs"].([]string)[0] != "s" {
		t.Errorf("changing the result changed the input: %v", in)
	}
	again, _ := m.Apply(in)
	if again["list"].([]any)[0] != "a" {
		t.Error("changing the result changed the compiled constant")
	}
}

func TestApplyRejectsValuesAnOperationCannotHandle(t *testing.T) {
	tests := []struct {
		name, yaml, in, want string
	}{
		{"splitting an object", "mode: filter\ntransformations:\n  - source: o\n    split: \",\"\n", `{"o":{"a":1}}`,
			`claims: transformations[0] (source "o"): cannot split an object`},
		{"mapping an object", "mode: filter\ntransformations:\n  - source: o\n    map: {a: b}\n", `{"o":{"a":1}}`,
			`claims: transformations[0] (source "o"): cannot map a value of type object`},
		{"mapping a list of lists", "mode: filter\ntransformations:\n  - source: o\n    map: {a: b}\n", `{"o":[["a"]]}`,
			`claims: transformations[0] (source "o"): cannot map a list element of type list`},
		{"joining a list of objects", "mode: filter\ntransformations:\n  - source: o\n    join: \",\"\n", `{"o":[{"a":1}]}`,
			`claims: transformations[0] (source "o"): cannot join a list element of type object`},
		{"joining an object", "mode: filter\ntransformations:\n  - target: x\n  - source: o\n    target: x\n    join: \",\"\n", `{"o":{"a":1}}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse("map.yaml", []byte(tt.yaml))
			if tt.want == "" {
				if err == nil {
					t.Fatal("a transformation with only target was accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			out, err := m.Apply(decode(t, tt.in))
			if err == nil || err.Error() != tt.want {
				t.Errorf("got %v, %v; want error %s", out, err, tt.want)
			}
			if out != nil {
				t.Error("a failed Apply returned claims")
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"empty document", "# nothing\n", `map.yaml:1:1: document is empty (hint: a claim map starts with mode: merge or mode: filter)`},
		{"missing mode", "transformations:\n  - source: a\n    target: b\n", `map.yaml:1:1: mode is required (hint: write mode: merge (keep every claim) or mode: filter (keep only what is listed))`},
		{"unknown mode", "mode: replace\n", `map.yaml:1:1: mode "replace" is neither merge nor filter (hint: write mode: merge or mode: filter)`},
		{"filter without transformations", "mode: filter\n", `map.yaml:1:1: filter mode without transformations drops every claim (hint: list the claims to import, e.g. - source: email)`},
		{"claims instead of transformations", "mode: merge\nclaims: []\n", `map.yaml:2:1: unknown key "claims" in a claim map (hint: Gatehouse names the list "transformations")`},
		{"unknown top-level key with suggestion", "Mode: merge\n", `map.yaml:1:1: unknown key "Mode" in a claim map (hint: did you mean "mode"?)`},
		{"unknown transformation key", "mode: merge\ntransformations:\n  - source: a\n    targte: b\n", `map.yaml:4:5: unknown key "targte" in a transformation (hint: a transformation has source, target, value, and the Gatehouse extensions map, unmapped, split, join and remove)`},
		{"transformations not a list", "mode: merge\ntransformations: {source: a}\n", `map.yaml:2:18: transformations must be a list (hint: start each transformation with - source: or - target:)`},
		{"transformation not a mapping", "mode: merge\ntransformations:\n  - a\n", `map.yaml:3:5: a transformation must be a mapping (hint: write - source: CLAIM, - target: CLAIM with value:, and so on)`},
		{"empty transformation", "mode: merge\ntransformations:\n  - {}\n", `map.yaml:3:5: empty transformation (hint: a transformation needs source, target or value)`},
		{"target alone", "mode: merge\ntransformations:\n  - target: x\n", `map.yaml:3:5: transformation has neither source nor value (hint: add source: CLAIM to copy a claim, or value: to set a constant)`},
		{"source alone in merge mode", "mode: merge\ntransformations:\n  - source: x\n", `map.yaml:3:5: source alone has no effect in merge mode (hint: merge mode keeps every claim already; add target to copy it, or remove: true to delete it)`},
		{"remove alone in filter mode", "mode: filter\ntransformations:\n  - source: x\n    remove: true\n", `map.yaml:4:5: remove without target has no effect in filter mode (hint: filter mode imports only the listed claims; delete this transformation)`},
		{"remove onto itself", "mode: merge\ntransformations:\n  - source: x\n    target: x\n    remove: true\n", `map.yaml:5:5: remove with target equal to source would delete what was just written (hint: drop remove, or choose another target)`},
		{"remove with value", "mode: merge\ntransformations:\n  - source: x\n    value: 1\n    remove: true\n", `map.yaml:5:5: remove cannot be combined with value`},
		{"remove without source", "mode: merge\ntransformations:\n  - target: x\n    value: 1\n    remove: true\n", `map.yaml:5:5: remove needs source`},
		{"remove not a boolean", "mode: merge\ntransformations:\n  - source: x\n    remove: yes please\n", `map.yaml:4:13: remove must be true or false, not "yes please"`},
		{"value with map", "mode: merge\ntransformations:\n  - source: x\n    value: 1\n    map: {a: b}\n", `map.yaml:4:5: value cannot be combined with map, split or join (hint: those operate on the source's value; use either value or them)`},
		{"empty value", "mode: merge\ntransformations:\n  - target: x\n    value:\n", `map.yaml:4:5: value is empty (hint: write "" for the empty string; to delete a claim use remove: true)`},
		{"null value", "mode: merge\ntransformations:\n  - target: x\n    value: null\n", `map.yaml:4:5: value is empty (hint: write "" for the empty string; to delete a claim use remove: true)`},
		{"infinite number", "mode: merge\ntransformations:\n  - target: x\n    value: .inf\n", `map.yaml:4:12: .inf is not a JSON number (hint: quote it to make it text)`},
		{"value nested too deep", "mode: merge\ntransformations:\n  - target: x\n    value: " + strings.Repeat("[", 40) + strings.Repeat("]", 40) + "\n", `map.yaml:4:44: value is nested more than 32 levels deep`},
		{"dotted source without target", "mode: merge\ntransformations:\n  - source: a.b\n    map: {x: y}\n", `map.yaml:3:5: source "a.b" is a dotted path, so target is required (hint: name the claim to write, e.g. target: b)`},
		{"empty map", "mode: merge\ntransformations:\n  - source: a\n    map: {}\n", `map.yaml:4:5: map is empty (hint: list at least one from: to pair)`},
		{"map with empty value", "mode: merge\ntransformations:\n  - source: a\n    map: {x: }\n", `map.yaml:4:11: map value for "x" is empty (hint: use unmapped: drop to remove values that are not listed)`},
		{"map with duplicate key", "mode: merge\ntransformations:\n  - source: a\n    map: {x: 1, x: 2}\n", `map.yaml:4:17: duplicate key "x" (hint: each key may appear once; remove one of them)`},
		{"unmapped without map", "mode: merge\ntransformations:\n  - source: a\n    target: b\n    unmapped: drop\n", `map.yaml:5:5: unmapped needs map (hint: add map: {from: to} or remove unmapped)`},
		{"unmapped with a bad word", "mode: merge\ntransformations:\n  - source: a\n    map: {x: y}\n    unmapped: discard\n", `map.yaml:5:5: unmapped "discard" is neither keep nor drop`},
		{"empty split separator", "mode: merge\ntransformations:\n  - source: a\n    split: \"\"\n", `map.yaml:4:12: split separator is empty (hint: write a separator such as ",")`},
		{"writing sub", "mode: merge\ntransformations:\n  - source: login\n    target: sub\n", `map.yaml:4:5: claim "sub" is set by Gatehouse and cannot be written (hint: choose another target name)`},
		{"overwriting iss in place", "mode: merge\ntransformations:\n  - source: iss\n    value: x\n", `map.yaml:3:5: claim "iss" is set by Gatehouse and cannot be written (hint: choose another target name)`},
		{"removing exp", "mode: merge\ntransformations:\n  - source: exp\n    remove: true\n", `map.yaml:4:5: claim "exp" is set by Gatehouse and cannot be removed`},
		{"source not a scalar", "mode: merge\ntransformations:\n  - source: [a]\n    target: b\n", `map.yaml:3:13: source must be a single value (hint: quote the value if it contains ": " or starts with "[" or "{")`},
		{"duplicate key", "mode: merge\nmode: filter\n", `map.yaml:2:1: duplicate key "mode" (hint: each key may appear once; remove one of them)`},
		{"alias", "mode: merge\ntransformations:\n  - &t {target: x, value: 1}\n  - *t\n", `map.yaml:4:5: aliases are not supported (hint: write the value out instead of *t)`},
		{"tag", "mode: merge\ntransformations:\n  - target: x\n    value: !!binary aGk=\n", `map.yaml:4:12: YAML tag !!binary is not supported (hint: remove the tag; quote the value if it must be text)`},
		{"two documents", "mode: merge\n---\nmode: filter\n", `map.yaml:2:1: a claim map file holds one YAML document (hint: remove the second document (after ---))`},
		{"YAML syntax", "mode: [merge\n", `map.yaml:1: invalid YAML: did not find expected ',' or ']' (hint: fix the YAML syntax; check indentation and quoting)`},
		{"several errors in order", "mode: merge\ntransformations:\n  - source: a\n    bogus: 1\n  - source: [a]\n", "map.yaml:4:5: unknown key \"bogus\" in a transformation (hint: a transformation has source, target, value, and the Gatehouse extensions map, unmapped, split, join and remove)\nmap.yaml:5:13: source must be a single value (hint: quote the value if it contains \": \" or starts with \"[\" or \"{\")"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse("map.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("accepted: %+v", m)
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error is %T, want ErrorList", err)
			}
			if err.Error() != tt.want {
				t.Errorf("got  %s\nwant %s", err, tt.want)
			}
		})
	}
}

func TestOversizedDocumentIsRejected(t *testing.T) {
	_, err := Parse("big.yaml", make([]byte, MaxSourceSize+1))
	if err == nil || err.Error() != "big.yaml:1:1: document is larger than 262144 bytes" {
		t.Fatalf("got %v", err)
	}
}

func TestCompileErrorsFromCodeNameTheTransformation(t *testing.T) {
	tests := []struct {
		name string
		m    Map
		want string
	}{
		{"missing mode", Map{}, `mode: mode is required (hint: write mode: merge (keep every claim) or mode: filter (keep only what is listed))`},
		{"null JSON value", Map{Mode: ModeMerge, Transformations: []Transformation{{Target: "x", Value: json.RawMessage(`null`)}}},
			`transformations[0]: value is null (hint: to delete a claim use source: NAME with remove: true; write "" for the empty string)`},
		{"invalid JSON value", Map{Mode: ModeMerge, Transformations: []Transformation{{Target: "x", Value: json.RawMessage(`{`)}}},
			`transformations[0]: value is not valid: unexpected EOF`},
		{"null map value", Map{Mode: ModeMerge, Transformations: []Transformation{{Source: "a", Map: map[string]json.RawMessage{"k": json.RawMessage(`null`)}}}},
			`transformations[0]: map value for "k" is null (hint: use unmapped: drop to remove values)`},
		{"overlong target", Map{Mode: ModeMerge, Transformations: []Transformation{{Source: "a", Target: strings.Repeat("t", MaxNameLength+1)}}},
			`transformations[0]: target is longer than 1024 bytes`},
		{"too many transformations", Map{Mode: ModeMerge, Transformations: make([]Transformation, MaxTransformations+1)},
			`transformations: more than 1000 transformations`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.m.Compile()
			if err == nil || err.Error() != tt.want {
				t.Errorf("got  %v\nwant %s", err, tt.want)
			}
			if _, err := tt.m.Apply(map[string]any{}); !errors.Is(err, ErrNotCompiled) {
				t.Errorf("Apply on a map that failed to compile: %v", err)
			}
		})
	}
}

func TestApplyNeedsCompile(t *testing.T) {
	m := &Map{Mode: ModeMerge}
	if _, err := m.Apply(map[string]any{"a": 1}); !errors.Is(err, ErrNotCompiled) {
		t.Fatalf("got %v, want ErrNotCompiled", err)
	}
	if err := m.Compile(); err != nil {
		t.Fatal(err)
	}
	out, err := m.Apply(nil)
	if err != nil || out == nil || len(out) != 0 {
		t.Fatalf("merge of nil claims: %v, %v", out, err)
	}
	var nilMap *Map
	if _, err := nilMap.Apply(nil); !errors.Is(err, ErrNotCompiled) {
		t.Fatalf("nil map: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	seeds := []string{
		"mode: merge\n",
		"mode: filter\ntransformations:\n  - source: teams\n    target: roles\n    split: \",\"\n    map: {core: admin}\n    unmapped: drop\n    join: \" \"\n",
		"mode: merge\ntransformations:\n  - source: a.b\n    target: c\n    remove: true\n  - target: x\n    value: {k: [1, true, \"s\"]}\n",
		"{\"mode\": \"filter\", \"transformations\": [{\"source\": \"email\"}]}",
		"mode: merge\ntransformations:\n  - &t {target: x, value: 1}\n  - *t\n",
		strings.Repeat("[", 200),
	}
	for _, s := range seeds {
		f.Add([]byte(s), `{"teams":"core,web","a":{"b":1},"email":"e"}`)
	}
	f.Fuzz(func(t *testing.T, src []byte, claimsJSON string) {
		m, err := Parse("fuzz.yaml", src)
		if err != nil {
			if m != nil {
				t.Fatal("map returned along with an error")
			}
			for _, e := range err.(ErrorList) {
				if e.Line < 1 {
					t.Fatalf("error without a position: %#v", e)
				}
			}
			return
		}
		js, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var again Map
		if err := json.Unmarshal(js, &again); err != nil {
			t.Fatal(err)
		}
		if err := again.Compile(); err != nil {
			t.Fatalf("Parse accepted what Compile rejects: %v\n%s", err, js)
		}
		var in map[string]any
		if json.Unmarshal([]byte(claimsJSON), &in) != nil {
			return
		}
		before, _ := json.Marshal(in)
		out1, err1 := m.Apply(in)
		out2, err2 := again.Apply(in)
		if (err1 == nil) != (err2 == nil) || !reflect.DeepEqual(out1, out2) {
			t.Fatalf("YAML and JSON forms disagree: %v %v / %v %v", out1, err1, out2, err2)
		}
		if after, _ := json.Marshal(in); string(after) != string(before) {
			t.Fatal("Apply modified its input")
		}
	})
}
