package mgmtapi

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzDecodeJSON: the strict decoder never panics, and what it accepts is
// one valid JSON object that encoding/json decodes into the same type too,
// with no member repeated.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{"name":"acme","issuer":"https://auth.example.com/acme","sessionLifetime":3600}`,
		`{"preferredUsername":"bob","name":"Bob","claims":[{"name":"groups","value":["a"],"in":"access"}]}`,
		`{"name":"x","name":"y"}`,
		`{"claims":[{"name":"a","value":{"b":{"c":[1,2,{"d":null}]}},"in":"identity"}]}`,
		`{"active":null}`,
		`{"expiresAt":"2030-01-01T00:00:00Z","domain":null}`,
		`{"all":[{"claim":"g","in":["x"]},{"any":[{"claim":"h","exists":false}]}]}`,
		`{"clientType":"Confidential","grantType":"AuthorizationCode","redirectUris":["https://a.example.com/cb"],"allowLocalLogin":true,"requirePkce":null}`,
		`{} {}`, `[`, `"x"`, `{"a":1e999}`, "{\"\xff\":1}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		targets := []func() any{
			func() any { return new(domainCreate) },
			func() any { return new(domainPatch) },
			func() any { return new(userCreate) },
			func() any { return new(userPatch) },
			func() any { return new(keyCreate) },
			func() any { return new(policyBody) },
			func() any { return new(passwordBody) },
			func() any { return new(clientPut) },
		}
		for _, target := range targets {
			v := target()
			if p := decodeJSON(body, v); p != nil {
				if p.Status != 400 || p.Type != TypeInvalidBody || p.Detail == "" {
					t.Fatalf("problem %+v", p)
				}
				continue
			}
			trimmed := bytes.TrimSpace(body)
			if !json.Valid(body) || len(trimmed) == 0 || trimmed[0] != '{' {
				t.Fatalf("accepted %q, which is not one JSON object", body)
			}
			if err := json.Unmarshal(body, target()); err != nil {
				t.Fatalf("accepted %q, which encoding/json refuses: %v", body, err)
			}
			// A client body that decodes is judged without panicking, and
			// what it accepts validates as the configuration's clients do.
			if in, ok := v.(*clientPut); ok {
				if c, errs := buildClient("fuzz", in); len(errs) == 0 && c.Type == "public" {
					if err := c.Validate(); err != nil {
						t.Fatalf("accepted a client that does not validate: %v", err)
					}
				}
			}
		}
	})
}
