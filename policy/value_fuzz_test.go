package policy

import (
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// jsonNumber is the JSON number grammar (RFC 8259 section 6): the language
// parseDecimal accepts, apart from its bound on the exponent. Group 1 is the
// mantissa, group 2 the exponent's digits.
var jsonNumber = regexp.MustCompile(`^(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?)(?:[eE][+-]?([0-9]+))?$`)

// ratExponentSpan bounds the powers of ten the oracle builds with big.Rat:
// 10^5000 is a 17,000-bit integer, cheap; parseDecimal accepts exponents up to
// 10^9, which big.Rat cannot hold in reasonable time or memory.
const ratExponentSpan = 5000

// decimalOracle is the independent reading of s: ok says whether parseDecimal
// must accept it, and then s = mant × 10^exp exactly.
//
// big.Rat.SetString is the value oracle but not the grammar oracle, because
// its grammar is a superset of JSON's by design: it also reads "+1", "01",
// "1.", ".5", "1_000", "0x10", "0b1", "0o7", "1p4", "0x1p-2" and "1/2", all of
// which the policy language treats as text (a claim "007" is a string, not 7).
// So acceptance is checked against the JSON grammar and values against
// big.Rat. The one deliberate difference from the JSON grammar is the bound on
// the exponent: |exponent| ≥ maxExponent makes the text "not a number".
func decimalOracle(t testing.TB, s string) (ok bool, mant *big.Rat, exp int64) {
	m := jsonNumber.FindStringSubmatch(s)
	if m == nil {
		return false, nil, 0
	}
	mant, rok := new(big.Rat).SetString(m[1])
	if !rok {
		t.Fatalf("big.Rat rejects the JSON mantissa %q", m[1])
	}
	if e := strings.TrimLeft(m[2], "0"); e != "" {
		if len(e) > 10 {
			return false, nil, 0
		}
		exp, _ = strconv.ParseInt(e, 10, 64)
		if exp >= maxExponent {
			return false, nil, 0
		}
		if i := strings.IndexAny(s, "eE"); s[i+1] == '-' {
			exp = -exp
		}
	}
	if exp >= -ratExponentSpan && exp <= ratExponentSpan {
		// The whole text, exponent included, through big.Rat's own parser.
		whole, rok := new(big.Rat).SetString(s)
		if !rok {
			t.Fatalf("big.Rat rejects the JSON number %q", s)
		}
		if whole.Cmp(scale(mant, exp)) != 0 {
			t.Fatalf("oracle disagrees with itself on %q: %v vs %v × 10^%d", s, whole, mant, exp)
		}
	}
	return true, mant, exp
}

// scale returns r × 10^e for |e| ≤ ratExponentSpan.
func scale(r *big.Rat, e int64) *big.Rat {
	p := new(big.Int).Exp(big.NewInt(10), big.NewInt(abs64(e)), nil)
	out := new(big.Rat).Set(r)
	if e >= 0 {
		return out.Mul(out, new(big.Rat).SetInt(p))
	}
	return out.Quo(out, new(big.Rat).SetInt(p))
}

func abs64(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// ratCmp compares ma × 10^ea with mb × 10^eb exactly; known is false when the
// exponents are too far apart for the oracle to build the power of ten.
func ratCmp(ma *big.Rat, ea int64, mb *big.Rat, eb int64) (c int, known bool) {
	d := ea - eb
	if d < -ratExponentSpan || d > ratExponentSpan {
		return 0, false
	}
	return scale(ma, d).Cmp(mb), true // both sides divided by 10^eb > 0
}

// decimalPanel are fixed comparison partners for every fuzzed number.
var decimalPanel = []string{"0", "1", "-1", "0.5", "-0.5", "10", "1e-7", "123456789012345678901", "-1e300", "1e21"}

// FuzzDecimal checks parseDecimal and cmpDecimal against math/big.Rat:
// parseDecimal accepts exactly the JSON numbers (with exponent below
// maxExponent), both digit storages (string and []byte) agree, and every
// comparison equals big.Rat's, between the two inputs and against a fixed
// panel of numbers.
func FuzzDecimal(f *testing.F) {
	for _, p := range [][2]string{
		{"0", "-0"}, {"0.0", "0e5"}, {"1", "1.000"}, {"10", "1e1"}, {"100", "1E+2"}, {"0.001", "1e-3"},
		{"12.5", "125e-1"}, {"-1", "-2"}, {"9", "10"}, {"0.9", "0.10"}, {"1.01", "1.1"},
		{"123456789012345678901", "123456789012345678902"}, {"1e1000", "1e999"}, {"-1e-1000", "0"},
		{"0.5", "0.50001"}, {"1e999999999", "1e999999998"}, {"-0.000e-999999999", "0.0001e0005"},
		{"1e1000000000", "1e-1000000000"}, {"1e00000000001", "10"}, {"100e-2", "0.01e2"},
		// Not numbers in the policy language, though big.Rat reads most of them.
		{"01", "0x10"}, {"1.", ".5"}, {"+1", "1_000"}, {"1p4", "1/2"}, {"0b1", "0o7"}, {"Inf", "NaN"},
		{"-", ""}, {"1e", "1e+"}, {" 1", "1 "}, {"--1", "1e+-1"}, {"١", "1\x00"},
	} {
		f.Add(p[0], p[1])
	}
	type parsed struct {
		s    string
		mant *big.Rat
		exp  int64
		str  decimal[string]
		byt  decimal[[]byte]
	}
	parse := func(t testing.TB, s string) (parsed, bool) {
		want, mant, exp := decimalOracle(t, s)
		d, ok := parseDecimal(s)
		b, bok := parseDecimal([]byte(s))
		if ok != want || bok != want {
			t.Fatalf("parseDecimal(%q) = %v (bytes: %v), the JSON grammar says %v", s, ok, bok, want)
		}
		return parsed{s, mant, exp, d, b}, ok
	}
	var panel []parsed
	for _, s := range decimalPanel {
		p, ok := parse(f, s)
		if !ok {
			f.Fatalf("panel number %q does not parse", s)
		}
		panel = append(panel, p)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		pa, oka := parse(t, a)
		pb, okb := parse(t, b)
		check := func(x, y parsed) {
			want, known := ratCmp(x.mant, x.exp, y.mant, y.exp)
			got := cmpDecimal(x.str, y.str)
			if known && got != want {
				t.Fatalf("cmpDecimal(%q, %q) = %d, big.Rat says %d", x.s, y.s, got, want)
			}
			if back := cmpDecimal(y.str, x.str); back != -got {
				t.Fatalf("cmpDecimal is not antisymmetric on %q, %q: %d and %d", x.s, y.s, got, back)
			}
			if mixed := cmpDecimal(x.byt, y.str); mixed != got {
				t.Fatalf("cmpDecimal(%q, %q) = %d with []byte digits, %d with string digits", x.s, y.s, mixed, got)
			}
		}
		for _, p := range [...]struct {
			ok bool
			p  parsed
		}{{oka, pa}, {okb, pb}} {
			if !p.ok {
				continue
			}
			check(p.p, p.p)
			for _, q := range panel {
				check(p.p, q)
			}
		}
		if oka && okb {
			check(pa, pb)
		}
	})
}

// rfc3339Leniencies reports why time.Parse(time.RFC3339Nano) may accept s
// while parseTimestamp, by design, does not. RFC 3339 section 5.6 allows
// neither, and the policy language follows the RFC:
//   - a comma as the fraction separator (time.Parse takes "," or "."),
//   - more than nine fraction digits (time.Parse drops the excess),
//   - a numeric offset with hours above 23 or minutes above 59,
//   - a one-digit hour ("2024-01-01T0:00:00Z"; layout "15" reads one or two
//     digits).
func rfc3339Leniencies(s string) string {
	if len(s) > 12 && s[12] == ':' {
		return "one-digit hour"
	}
	if len(s) > 19 && s[19] == ',' {
		return "comma before the fraction"
	}
	if len(s) > 19 && s[19] == '.' {
		n := 0
		for i := 20; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			n++
		}
		if n > 9 {
			return "more than nine fraction digits"
		}
	}
	if len(s) >= 6 && (s[len(s)-6] == '+' || s[len(s)-6] == '-') && s[len(s)-3] == ':' {
		h, _ := strconv.Atoi(s[len(s)-5 : len(s)-3])
		m, _ := strconv.Atoi(s[len(s)-2:])
		if h > 23 || m > 59 {
			return "offset out of range"
		}
	}
	return ""
}

// FuzzTimestamp checks parseTimestamp against time.Parse(time.RFC3339Nano):
// what parseTimestamp accepts, time.Parse accepts as the same instant, and
// what time.Parse accepts beyond that is one of the documented leniencies. A
// lower-case 't' or 'z' (which RFC 3339 allows and time.Parse does not) is
// upper-cased before time.Parse sees it. It also checks that appendEpoch
// writes the instant as an exact decimal number of seconds.
func FuzzTimestamp(f *testing.F) {
	for _, s := range []string{
		"1970-01-01T00:00:00Z", "2024-01-01T01:00:00+01:00", "2023-12-31T23:00:00-01:00", "2024-02-29t00:00:00z",
		"2000-02-29T00:00:00.5Z", "1969-12-31T23:59:59.999999999Z", "0000-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59",
		"2024-01-01T00:00:00-00:00", "2024-01-01T00:00:00.000000001Z",
		// Refused by parseTimestamp.
		"2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2024-13-01T00:00:00Z", "2024-01-01T24:00:00Z",
		"2024-01-01T00:00:60Z", "2024-01-01T00:00:00.Z", "2024-01-01T00:00:00+0100", "2024-01-01 00:00:00Z",
		"2024-01-01T00:00:00Zjunk", "2024-01-01T00:00:00", "2024-01-01",
		// Accepted by time.Parse only.
		"2024-01-01T00:00:00,5Z", "2024-01-01T00:00:00.1234567891Z", "2024-01-01T00:00:00+24:00", "2024-01-01T00:00:00+23:60",
		"2024-01-01T0:00:00Z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseTimestamp(s)
		norm := []byte(s)
		if len(norm) > 10 && norm[10] == 't' {
			norm[10] = 'T'
		}
		if n := len(norm); n > 0 && norm[n-1] == 'z' {
			norm[n-1] = 'Z'
		}
		want, err := time.Parse(time.RFC3339Nano, string(norm))
		if !ok {
			if err == nil && rfc3339Leniencies(s) == "" {
				t.Fatalf("parseTimestamp refuses %q; time.Parse reads %v", s, want)
			}
			return
		}
		if err != nil {
			t.Fatalf("parseTimestamp accepts %q as %+v; time.Parse: %v", s, got, err)
		}
		if got.sec != want.Unix() || int(got.nsec) != want.Nanosecond() {
			t.Fatalf("parseTimestamp(%q) = %d.%09d, time.Parse: %d.%09d", s, got.sec, got.nsec, want.Unix(), want.Nanosecond())
		}
		// appendEpoch must write sec + nsec/1e9 exactly.
		epoch := appendEpoch(nil, got)
		exact := new(big.Rat).Add(new(big.Rat).SetInt64(got.sec), big.NewRat(int64(got.nsec), 1e9))
		r, rok := new(big.Rat).SetString(string(epoch))
		if _, dok := parseDecimal(epoch); !dok || !rok || r.Cmp(exact) != 0 {
			t.Fatalf("appendEpoch(%q) = %s, want %s", s, epoch, exact.FloatString(9))
		}
	})
}
