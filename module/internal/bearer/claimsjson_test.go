package bearer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// claimsOracle decodes data with encoding/json into a map[string]any and says whether
// parseClaimsJSON must accept it: encoding/json accepts it as a non-null object, it is
// valid UTF-8, no object has two members with the same (unescaped) name, and it nests
// at most maxClaimsDepth levels.
func claimsOracle(data []byte) (map[string]any, bool) {
	var want map[string]any
	if err := json.Unmarshal(data, &want); err != nil || want == nil {
		return nil, false
	}
	if !utf8.Valid(data) {
		return nil, false
	}
	if !strictWalk(json.NewDecoder(bytes.NewReader(data)), 0) {
		return nil, false
	}
	return want, true
}

// strictWalk walks one value of dec, refusing duplicate names and deep nesting.
func strictWalk(dec *json.Decoder, depth int) bool {
	tok, err := dec.Token()
	if err != nil {
		return false
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return true
	}
	if depth++; depth > maxClaimsDepth {
		return false
	}
	if delim == '{' {
		seen := map[string]bool{}
		for dec.More() {
			k, err := dec.Token()
			name, isStr := k.(string)
			if err != nil || !isStr || seen[name] {
				return false
			}
			seen[name] = true
			if !strictWalk(dec, depth) {
				return false
			}
		}
	} else {
		for dec.More() {
			if !strictWalk(dec, depth) {
				return false
			}
		}
	}
	_, err = dec.Token()
	return err == nil
}

// identical is reflect.DeepEqual made stricter for decoded JSON: floats must have the
// same bits (so -0 differs from 0) and every map and slice must be non-nil.
func identical(a, b any) bool {
	if !reflect.DeepEqual(a, b) {
		return false
	}
	switch x := a.(type) {
	case float64:
		return math.Float64bits(x) == math.Float64bits(b.(float64))
	case map[string]any:
		y := b.(map[string]any)
		if (x == nil) != (y == nil) {
			return false
		}
		for k, v := range x {
			if !identical(v, y[k]) {
				return false
			}
		}
	case []any:
		y := b.([]any)
		if (x == nil) != (y == nil) {
			return false
		}
		for i := range x {
			if !identical(x[i], y[i]) {
				return false
			}
		}
	}
	return true
}

func TestParseClaimsJSONMatchesEncodingJSON(t *testing.T) {
	tests := []struct{ name, in string }{
		{"empty object", `{}`},
		{"whitespace around and inside is ignored", " \t\r\n{ \"a\" : 1 , \"b\" :[ ] }\n "},
		{"typical access token", typicalClaims},
		{"empty array and object values are non-nil", `{"a":[],"b":{},"c":[[],{}]}`},
		{"literals", `{"t":true,"f":false,"n":null,"a":[true,false,null]}`},
		{"simple escapes", `{"s":"\"\\\/\b\f\n\r\t"}`},
		{"escape after plain text", `{"s":"abc\ndef"}`},
		{"escaped member name", `{"\u0073ub":"alice"}`},
		{"unicode escapes", `{"s":"\u0041\u00e9\u20AC\uffff\u0000"}`},
		{"surrogate pair", `{"s":"\ud83d\ude00"}`},
		{"upper-case surrogate pair", `{"s":"\uD83D\uDE00"}`},
		{"lone high surrogate becomes U+FFFD", `{"s":"\ud83d"}`},
		{"lone high surrogate before text", `{"s":"\ud83dabc"}`},
		{"lone low surrogate becomes U+FFFD", `{"s":"\ude00x"}`},
		{"two high surrogates then a low one", `{"s":"\ud83d\ud83d\ude00"}`},
		{"high surrogate then a non-surrogate escape", `{"s":"\ud83d\u0041"}`},
		{"reversed surrogate pair", `{"s":"\ude00\ud83d"}`},
		{"surrogate then simple escape", `{"s":"\ud800\n"}`},
		{"raw multi-byte UTF-8", `{"s":"héllo € 😀","é":"x"}`},
		{"raw U+FFFD is valid UTF-8", "{\"s\":\"\uFFFD\"}"},
		{"DEL and U+2028 are allowed raw", "{\"s\":\"\x7f\u2028\"}"},
		{"integers", `{"a":0,"b":-0,"c":1,"d":-1,"e":1800000000,"f":999999999999999,"g":1000000000000000}`},
		{"long integers go through ParseFloat", `{"a":12345678901234567890123,"b":-9007199254740993,"c":18446744073709551616}`},
		{"fractions and exponents", `{"a":1.5,"b":-0.0,"c":1E+2,"d":1e-2,"e":2.5E3,"f":0e0,"g":-0.000001e-5}`},
		{"largest and smallest floats", `{"a":1.7976931348623157e308,"b":5e-324,"c":-1.7976931348623157e308}`},
		{"underflow becomes zero like ParseFloat", `{"a":1e-400,"b":-1e-400}`},
		{"nested structures", `{"a":{"b":{"c":[1,{"d":["e"]}]}}}`},
		{"same name in different objects is fine", `{"a":{"x":1},"b":{"x":2},"x":3}`},
		{"nesting at the limit", nest(maxClaimsDepth - 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, ok := claimsOracle([]byte(tt.in))
			if !ok {
				t.Fatalf("test input %q is not a strict claims set", tt.in)
			}
			got, err := parseClaimsJSON(tt.in)
			if err != nil {
				t.Fatalf("refused %q: %v", tt.in, err)
			}
			if !identical(got, want) {
				t.Fatalf("decoded %q as %#v, encoding/json gives %#v", tt.in, got, want)
			}
		})
	}
}

// nest returns an object holding depth nested arrays: maxClaimsDepth-1 reaches the
// limit exactly.
func nest(depth int) string {
	return `{"a":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}`
}

func TestParseClaimsJSONRefuses(t *testing.T) {
	tests := []struct{ name, in, reason string }{
		{"empty input", ``, "not a JSON object"},
		{"only whitespace", " \n", "not a JSON object"},
		{"null", `null`, "not a JSON object"},
		{"array", `["iss"]`, "not a JSON object"},
		{"string", `"iss"`, "not a JSON object"},
		{"number", `1`, "not a JSON object"},
		{"byte order mark", "\ufeff{}", "not a JSON object"},
		{"duplicate member", `{"sub":"alice","sub":"admin"}`, `duplicate member name "sub"`},
		{"duplicate member spelled with an escape", `{"sub":"alice","\u0073ub":"admin"}`, `duplicate member name "sub"`},
		{"duplicate member in a nested object", `{"a":[{"x":1,"x":1}]}`, `duplicate member name "x"`},
		{"duplicate empty name", `{"":1,"":2}`, `duplicate member name ""`},
		{"invalid UTF-8 in a value", "{\"s\":\"\xff\"}", "invalid UTF-8"},
		{"invalid UTF-8 after an escape", "{\"s\":\"\\n\xc3\"}", "invalid UTF-8"},
		{"invalid UTF-8 in a name", "{\"\xfe\":1}", "invalid UTF-8"},
		{"UTF-8 encoded surrogate", "{\"s\":\"\xed\xa0\x80\"}", "invalid UTF-8"},
		{"overlong UTF-8", "{\"s\":\"\xc0\xaf\"}", "invalid UTF-8"},
		{"nesting beyond the limit", nest(maxClaimsDepth), "nested deeper"},
		{"very deep nesting", `{"a":` + strings.Repeat("[", 100000), "nested deeper"},
		{"trailing garbage", `{}x`, "trailing data"},
		{"second object", `{}{}`, "trailing data"},
		{"trailing comma in object", `{"a":1,}`, "member name"},
		{"trailing comma in array", `{"a":[1,]}`, "value was expected"},
		{"missing comma", `{"a":1 "b":2}`, "expected ','"},
		{"missing colon", `{"a" 1}`, "expected ':'"},
		{"unquoted name", `{a:1}`, "member name"},
		{"single quotes", `{'a':1}`, "member name"},
		{"unterminated object", `{"a":1`, "unterminated object"},
		{"unterminated array", `{"a":[1`, "unterminated array"},
		{"unterminated string", `{"a":"b`, "unterminated string"},
		{"unterminated string after an escape", `{"a":"b\"}`, "unterminated string"},
		{"missing value", `{"a":}`, "value was expected"},
		{"leading zero", `{"a":01}`, "expected ','"},
		{"negative leading zero", `{"a":-01}`, "expected ','"},
		{"plus sign", `{"a":+1}`, "value was expected"},
		{"lone minus", `{"a":-}`, "invalid number"},
		{"leading decimal point", `{"a":.5}`, "value was expected"},
		{"no digit after the point", `{"a":1.}`, "decimal point"},
		{"no exponent digits", `{"a":1e}`, "exponent"},
		{"signed exponent without digits", `{"a":1e+}`, "exponent"},
		{"NaN", `{"a":NaN}`, "value was expected"},
		{"Infinity", `{"a":-Infinity}`, "invalid number"},
		{"hex number", `{"a":0x10}`, "expected ','"},
		{"overflowing number", `{"a":1e400}`, "float64 range"},
		{"overflowing negative number", `{"a":-1e400}`, "float64 range"},
		{"overflowing long mantissa", `{"a":` + strings.Repeat("9", 400) + `}`, "float64 range"},
		{"misspelled literal", `{"a":tru}`, "expected true"},
		{"capitalised literal", `{"a":True}`, "value was expected"},
		{"control character in a string", "{\"a\":\"\t\"}", "control character"},
		{"control character after an escape", "{\"a\":\"\\n\x01\"}", "control character"},
		{"single-quote escape", `{"a":"\'"}`, "invalid escape"},
		{"unknown escape", `{"a":"\x41"}`, "invalid escape"},
		{"short unicode escape", `{"a":"\u12"}`, `invalid \u escape`},
		{"non-hex unicode escape", `{"a":"\u12g4"}`, `invalid \u escape`},
		{"surrogate then broken escape", `{"a":"\ud83d\u12"}`, `invalid \u escape`},
		{"comment", `{/* c */}`, "member name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parseClaimsJSON(tt.in)
			if err == nil {
				t.Fatalf("accepted %q as %#v", tt.in, m)
			}
			if m != nil {
				t.Fatalf("returned a map with the error %v", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("error %q does not mention %q", err, tt.reason)
			}
			if _, ok := claimsOracle([]byte(tt.in)); ok {
				t.Fatalf("the oracle accepts %q: the test input is wrong", tt.in)
			}
		})
	}
}

// TestValidateRefusesAmbiguousClaims: a claims set that parsers can read differently
// must never be accepted. With duplicate names, encoding/json (and many other
// parsers) keep the last value while others keep the first, so an issuer, a log
// pipeline or a downstream service could see "sub":"alice" where the gate sees
// "sub":"admin". Invalid UTF-8 is replaced by U+FFFD in some parsers and kept or
// refused by others, so two distinct subjects could collapse into one.
func TestValidateRefusesAmbiguousClaims(t *testing.T) {
	k := keysForTest(t)
	v, clk := testValidator(t, nil)
	now := clk.Now()
	base := func(extra string) []byte {
		c := claimsAt(now)
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		return append(b[:len(b)-1], ","+extra+"}"...)
	}
	tests := []struct{ name, extra, reason string }{
		{"token with a duplicate sub claim is rejected", `"sub":"admin"`, `duplicate member name "sub"`},
		{"token with a duplicate exp claim is rejected", `"exp":9999999999`, `duplicate member name "exp"`},
		{"token with a duplicate name in a nested claim is rejected", `"cnf":{"jkt":"a","jkt":"b"}`, `duplicate member name "jkt"`},
		{"token with invalid UTF-8 in a claim is rejected", "\"name\":\"\xff\"", "invalid UTF-8"},
		{"token with deeply nested claims is rejected", `"x":` + strings.Repeat("[", maxClaimsDepth) + strings.Repeat("]", maxClaimsDepth), "nested deeper"},
		{"token with trailing data after the claims is rejected", `"x":1}{`, "trailing data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := signRaw(t, hdr("RS256", "rsa"), base(tt.extra), k.rsa)
			tok, err := v.Validate(context.Background(), raw)
			if err == nil {
				t.Fatalf("accepted: %+v", tok.Claims)
			}
			var be *Error
			if !errors.As(err, &be) || be.Code != CodeInvalidToken || be.Description != "the token payload is malformed" {
				t.Fatalf("want invalid_token %q, got %#v", "the token payload is malformed", err)
			}
			if !strings.Contains(be.Reason, tt.reason) {
				t.Fatalf("reason %q does not mention %q", be.Reason, tt.reason)
			}
		})
	}
	t.Run("the same claims without the ambiguity are accepted", func(t *testing.T) {
		raw := signRaw(t, hdr("RS256", "rsa"), base(`"cnf":{"jkt":"a"},"name":"\u00e9\ud83d\ude00"`), k.rsa)
		tok, err := v.Validate(context.Background(), raw)
		if err != nil {
			t.Fatal(err)
		}
		if tok.Subject != "alice" || tok.Claims["name"] != "é😀" || tok.Claims["cnf"].(map[string]any)["jkt"] != "a" {
			t.Fatalf("unexpected claims %#v", tok.Claims)
		}
	})
}

// FuzzClaimsJSON checks parseClaimsJSON against encoding/json: every input
// encoding/json decodes into a map[string]any that is valid UTF-8, has no duplicate
// names and nests at most maxClaimsDepth levels must decode to an identical value;
// every other input must be refused.
func FuzzClaimsJSON(f *testing.F) {
	seeds := []string{
		`{}`, ` {} `, `{"a":1}`, typicalClaims,
		`{"s":"\"\\\/\b\f\n\r\t"}`, `{"s":"a\u0041\u00e9\u20ac\u0000"}`,
		`{"s":"\ud83d\ude00"}`, `{"s":"\ud83d"}`, `{"s":"\ude00"}`, `{"s":"\ud83d\ud83d\ude00"}`,
		`{"s":"\ud83d\u0041"}`, `{"s":"\ud83d\u12"}`, `{"s":"\u12g4"}`, `{"s":"\'"}`,
		"{\"s\":\"\xff\"}", "{\"s\":\"\xed\xa0\x80\"}", "{\"s\":\"\uFFFD\"}", "{\"\xfe\":1,\"\xff\":2}",
		`{"n":1e400}`, `{"n":-1e400}`, `{"n":1e-400}`, `{"n":-0}`, `{"n":-0.0}`, `{"n":1E+2}`, `{"n":1e-2}`,
		`{"n":01}`, `{"n":+1}`, `{"n":.5}`, `{"n":1.}`, `{"n":1e}`, `{"n":NaN}`, `{"n":Infinity}`,
		`{"n":999999999999999}`, `{"n":1000000000000000}`, `{"n":12345678901234567890}`,
		`{"n":9007199254740993}`, `{"n":1.7976931348623157e308}`, `{"n":5e-324}`,
		`{"a":true,"b":false,"c":null}`, `{"a":tru}`, `{"a":nul}`,
		`{"a":1,"a":2}`, `{"sub":"x","\u0073ub":"y"}`, `{"a":{"b":1,"b":1}}`,
		nest(maxClaimsDepth - 1), nest(maxClaimsDepth), nest(200),
		`{"a":[1,]}`, `{"a":1,}`, `{}x`, `{}{}`, `[]`, `null`, `"x"`, "\ufeff{}", `{"a":"b`,
		"{\"a\":\"\t\"}",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parseClaimsJSON(string(data))
		want, ok := claimsOracle(data)
		switch {
		case ok && err != nil:
			t.Fatalf("refused %q: %v (encoding/json: %#v)", data, err, want)
		case !ok && err == nil:
			t.Fatalf("accepted %q as %#v", data, got)
		case ok && !identical(got, want):
			t.Fatalf("decoded %q as %#v, encoding/json gives %#v", data, got, want)
		case err != nil && got != nil:
			t.Fatalf("returned a map with the error %v", err)
		}
	})
}

// typicalClaims is an access-token payload of a usual shape and size.
const typicalClaims = `{"iss":"https://issuer.example","sub":"248289761001","aud":["https://api.example","https://admin.example"],` +
	`"exp":1800003600,"iat":1800000000,"nbf":1800000000,"auth_time":1799999000,"jti":"8f1c5a2e-4b7d-4c1e-9a3f-2d6b8e0c7f15",` +
	`"client_id":"client-1","scope":"openid profile orders:read orders:write","groups":["admins","developers","on-call"],` +
	`"email":"alice@example.com","email_verified":true}`

// BenchmarkClaimsJSON compares parseClaimsJSON with encoding/json on a typical
// access-token payload.
func BenchmarkClaimsJSON(b *testing.B) {
	// Both decoders get the payload without a copy, as in checkClaims.
	data := []byte(typicalClaims)
	b.Run("parseClaimsJSON", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := parseClaimsJSON(typicalClaims); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			var m map[string]any
			if err := json.Unmarshal(data, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
