package bearer

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// The Wycheproof JWS/JWK vectors (C2SP Wycheproof, vendored unchanged in
// testdata/wycheproof with their licence; see the README there) are run through
// the validator's complete JWS layer (Validator.verifyJWS: compact parsing, strict base64url, header policy including the
// allow-list of every asymmetric algorithm, key selection by kid with use/alg/type
// compatibility, signature), with a key set built by ParseStaticKeys from each group's
// key. Claims are not checked: the vectors' payloads are not JWT claims. The typ policy
// is the "JWT" mode (the vectors carry no typ header).
//
// Where the project's policy is stricter than Wycheproof, the expected result is
// overridden. Every override turns a Wycheproof "valid" into "rejected":
//
// | file | tcId                                   | Wycheproof | ours     | why                                                                 |
// |------|----------------------------------------|------------|----------|---------------------------------------------------------------------|
// | JWS  | 1, 348, 352                            | valid      | rejected | HS256: symmetric algorithms are never accepted (no oct keys either) |
// | JWS  | 357, 358, 359, 376, 377                | valid      | rejected | HS256 (base64 edge cases of an HMAC token)                          |
// | JWS  | 372, 373                               | valid      | rejected | HS256, and a '?' inside a part is not base64url: we refuse it anyway |
// | JWS  | 346, 350                               | valid      | rejected | PS384 token, key says "alg":"PS256": key alg must equal token alg   |
// | JWS  | 347, 351                               | valid      | rejected | ES512 token, key says "alg":"ES521" (not a JWS alg): key skipped    |
// | JWK  | 2, 13, 14, 15                          | valid      | rejected | HS256/384/512 keysets: symmetric keys are never accepted            |
//
// Everything Wycheproof marks invalid is rejected by us as well (no overrides the other
// way), and there are no "acceptable" vectors in these two files.
var wycheproofOverrides = map[string]map[int]string{
	"json_web_signature_test.json": {
		1: "HS256", 348: "HS256", 352: "HS256",
		357: "HS256", 358: "HS256", 359: "HS256", 376: "HS256", 377: "HS256",
		372: "HS256 and non-base64url character", 373: "HS256 and non-base64url character",
		346: "key alg PS256 != token alg PS384", 350: "key alg PS256 != token alg PS384",
		347: "key alg ES521 is not a JWS algorithm", 351: "key alg ES521 is not a JWS algorithm",
	},
	"json_web_key_test.json": {
		2: "HS256 keyset", 13: "HS256 keyset", 14: "HS384 keyset", 15: "HS512 keyset",
	},
}

// wycheproofDir holds the vendored vectors (go test runs in the package
// directory). A missing file fails the test, never skips it.
const wycheproofDir = "testdata/wycheproof"

// wycheproofCases is how many cases each vendored file holds: running fewer
// (a truncated or replaced file) fails the test.
var wycheproofCases = map[string]int{
	"json_web_signature_test.json": 401,
	"json_web_key_test.json":       26,
}

type wycheproofFile struct {
	NumberOfTests int `json:"numberOfTests"`
	TestGroups    []struct {
		Comment string          `json:"comment"`
		Public  json.RawMessage `json:"public"`
		Private json.RawMessage `json:"private"`
		Tests   []struct {
			TcID    int             `json:"tcId"`
			Comment string          `json:"comment"`
			JWS     json.RawMessage `json:"jws"`
			Result  string          `json:"result"`
		} `json:"tests"`
	} `json:"testGroups"`
}

func TestWycheproof(t *testing.T) {
	for _, name := range []string{"json_web_signature_test.json", "json_web_key_test.json"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(wycheproofDir, name))
			if err != nil {
				t.Fatal(err)
			}
			var f wycheproofFile
			if err := json.Unmarshal(data, &f); err != nil {
				t.Fatal(err)
			}
			overrides := wycheproofOverrides[name]
			used := map[int]bool{}
			ran, accepted := 0, 0
			for _, g := range f.TestGroups {
				keyDoc := g.Public
				if len(keyDoc) == 0 {
					keyDoc = g.Private
				}
				var ks KeySet
				if sk, err := ParseStaticKeys(keyDoc); err == nil {
					ks = sk
				} else {
					ks = emptyKeys{} // no usable key: every token must be rejected
				}
				v, err := NewValidator(Config{Issuer: "wycheproof", Audiences: []string{"wycheproof"},
					Algorithms: AsymmetricAlgorithms(), Types: []string{"JWT"}, CacheSize: -1}, ks)
				if err != nil {
					t.Fatal(err)
				}
				for _, tc := range g.Tests {
					ran++
					var raw string
					if err := json.Unmarshal(tc.JWS, &raw); err != nil {
						raw = string(tc.JWS) // JSON serialization vectors hold an object
					}
					want := tc.Result == "valid"
					if tc.Result != "valid" && tc.Result != "invalid" {
						t.Fatalf("tc%d: result %q needs a documented decision", tc.TcID, tc.Result)
					}
					if why, ok := overrides[tc.TcID]; ok {
						if !want {
							t.Fatalf("tc%d: override %q for a vector Wycheproof already rejects", tc.TcID, why)
						}
						want, used[tc.TcID] = false, true
					}
					_, verr := v.verifyJWS(context.Background(), raw)
					got := verr == nil
					if got {
						accepted++
					}
					if os.Getenv("WYCHE_DEBUG") != "" && verr != nil {
						t.Logf("tc%d %s: %v", tc.TcID, tc.Comment, verr)
					}
					if got != want {
						t.Errorf("tc%d (%s/%s): want accepted=%v, got %v (%v)", tc.TcID, g.Comment, tc.Comment, want, got, verr)
					}
				}
			}
			if ran != f.NumberOfTests || ran != wycheproofCases[name] {
				t.Fatalf("ran %d cases, file declares %d, the vendored file has %d", ran, f.NumberOfTests, wycheproofCases[name])
			}
			for id := range overrides {
				if !used[id] {
					t.Errorf("override for tc%d matched no vector", id)
				}
			}
			if accepted == 0 {
				t.Fatal("no vector was accepted: the harness is broken")
			}
			t.Logf("%s: %d cases, %d accepted, %d policy overrides", name, ran, accepted, len(overrides))
		})
	}
}

type emptyKeys struct{}

func (emptyKeys) Keys(context.Context, string) ([]jose.JSONWebKey, error) { return nil, nil }

// verifyJWS parses raw, applies the header policy, selects keys and verifies the
// signature. It is the whole JWS layer, without claims.
func (v *Validator) verifyJWS(ctx context.Context, raw string) (*compactJWS, *Error) {
	jws, e := v.parseJWS(raw)
	if e != nil {
		return nil, e
	}
	if e := v.checkSignature(ctx, jws, nil); e != nil {
		return nil, e
	}
	return jws, nil
}
