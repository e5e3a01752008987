package policy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// seedDocuments adds every golden case's policy document to the corpus.
func seedDocuments(f *testing.F) []string {
	files, _ := filepath.Glob("testdata/cases/*.txt")
	var docs []string
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		_, secs := splitSections(string(data))
		for _, s := range secs {
			if s.name == "policy.yaml" {
				docs = append(docs, s.body)
			}
		}
	}
	if len(docs) == 0 {
		f.Fatal("no seed documents")
	}
	return docs
}

func FuzzParse(f *testing.F) {
	for _, d := range seedDocuments(f) {
		f.Add([]byte(d))
	}
	f.Add([]byte(strings.Repeat("[", 5000)))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		start := time.Now()
		ps, err := Parse("fuzz.yaml", src)
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("Parse took %v on %d bytes", d, len(src))
		}
		if err != nil {
			if ps != nil {
				t.Fatal("policies returned along with an error")
			}
			for _, e := range err.(ErrorList) {
				if e.Line < 1 || e.File != "fuzz.yaml" {
					t.Fatalf("error without a position: %#v", e)
				}
			}
			return
		}
		// Whatever Parse accepts, Compile accepts, also after a JSON round trip.
		if _, err := Compile(ps); err != nil {
			t.Fatalf("Parse accepted what Compile rejects: %v", err)
		}
		js, err := json.Marshal(ps)
		if err != nil {
			t.Fatal(err)
		}
		var again []Policy
		if err := json.Unmarshal(js, &again); err != nil {
			t.Fatal(err)
		}
		if _, err := Compile(again); err != nil {
			t.Fatalf("JSON form rejected: %v\n%s", err, js)
		}
	})
}

func FuzzEvaluate(f *testing.F) {
	docs := seedDocuments(f)
	claims := []string{`{}`, `{"c":"admins","groups":["admins","dev"]}`, `{"c":42,"t":"2024-01-01T00:00:00Z"}`,
		`{"c":[1,"2",true,null,{"a":[]}],"address":{"country":"NL"}}`, `{"age":1e308,"n":-0.0}`, `{"a":{"b":{"c":"12345678901234567890"}}}`}
	for i, d := range docs {
		f.Add(d, claims[i%len(claims)])
	}
	f.Fuzz(func(t *testing.T, src, claimsJSON string) {
		ps, err := Parse("fuzz.yaml", []byte(src))
		if err != nil {
			return
		}
		set, err := Compile(ps)
		if err != nil {
			t.Fatalf("Parse accepted what Compile rejects: %v", err)
		}
		var c map[string]any
		if json.Unmarshal([]byte(claimsJSON), &c) != nil {
			return
		}
		ids := set.IDs()
		for _, id := range ids {
			d := set.Evaluate(c, []string{id})
			fs := d.Failures()
			if d.Allow != (len(fs) == 0) {
				t.Fatalf("policy %s: Allow=%v but %d failures", id, d.Allow, len(fs))
			}
			if len(d.Explanation()) > 1<<20 {
				t.Fatalf("explanation of %d bytes", len(d.Explanation()))
			}
			_ = d.Public()
		}
		all := set.Evaluate(c, ids)
		any := false
		for _, id := range ids {
			any = any || set.Evaluate(c, []string{id}).Allow
		}
		if all.Allow != any {
			t.Fatalf("OR across policies: together %v, separately %v", all.Allow, any)
		}
	})
}
