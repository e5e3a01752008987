package bearer

import (
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// maxClaimsDepth bounds the nesting of objects and arrays in a claims set, the
// top-level object counting as 1. Access tokens nest two or three levels at most.
const maxClaimsDepth = 32

// parseClaimsJSON decodes a JWT Claims Set (RFC 7519 section 4). An accepted input
// yields exactly the value encoding/json's Unmarshal produces for a map[string]any:
// objects are map[string]any, arrays []any (never nil), numbers float64, strings
// string (escapes, including \uXXXX surrogate pairs, decoded like encoding/json: an
// unpaired surrogate escape is valid JSON and becomes U+FFFD), and true, false and
// null are bool and nil. Whitespace around the object is allowed.
//
// It is stricter than encoding/json where leniency would let the validator read a
// claims set differently from its issuer or another consumer:
//
//   - a duplicate member name in any object is an error (RFC 7519 section 4 allows
//     refusing them; encoding/json keeps the last one, a parser differential). Names
//     are compared after unescaping, so "sub" and "\u0073ub" are duplicates;
//   - invalid UTF-8 inside a string is an error (RFC 7519 section 7.2 requires the
//     claims set to be valid UTF-8; encoding/json replaces each bad byte with U+FFFD,
//     which would make distinct byte strings equal claims);
//   - nesting deeper than maxClaimsDepth is an error;
//   - the top level must be an object (a JSON null is an error too), with nothing but
//     whitespace after it.
//
// Everything else follows the JSON grammar exactly (RFC 8259: no leading zeros, no
// '+' sign, no NaN or Infinity, no single quotes, comments or trailing commas), and a
// number outside the float64 range is an error, as in encoding/json. Strings in the
// result share memory with data.
func parseClaimsJSON(data string) (map[string]any, error) {
	d := claimsDecoder{s: data}
	d.skipSpace()
	if d.i >= len(d.s) || d.s[d.i] != '{' {
		return nil, d.fail(d.i, "the claims set is not a JSON object")
	}
	m, err := d.object()
	if err != nil {
		return nil, err
	}
	d.skipSpace()
	if d.i != len(d.s) {
		return nil, d.fail(d.i, "trailing data after the claims object")
	}
	return m, nil
}

// claimsJSONError is a claims-set syntax or policy error at a byte offset.
type claimsJSONError struct {
	off int
	msg string
}

func (e *claimsJSONError) Error() string {
	return e.msg + " at offset " + strconv.Itoa(e.off)
}

// claimMember is a decoded object member waiting for its object to be complete.
type claimMember struct {
	name string
	val  any
}

// claimsDecoder is a recursive-descent decoder over one claims set. The members and
// elements of an object or array are first collected in a buffer on the goroutine
// stack, so each map and slice is allocated once, at its final size.
type claimsDecoder struct {
	s     string
	i     int
	depth int
}

func (d *claimsDecoder) fail(off int, msg string) error {
	return &claimsJSONError{off: off, msg: msg}
}

func (d *claimsDecoder) skipSpace() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// value decodes the value at d.i (whitespace already skipped).
func (d *claimsDecoder) value() (any, error) {
	if d.i >= len(d.s) {
		return nil, d.fail(d.i, "unexpected end of the claims set")
	}
	switch c := d.s[d.i]; c {
	case '"':
		s, err := d.str()
		if err != nil {
			return nil, err
		}
		return s, nil
	case '{':
		m, err := d.object()
		if err != nil {
			return nil, err
		}
		return m, nil
	case '[':
		a, err := d.array()
		if err != nil {
			return nil, err
		}
		return a, nil
	case 't':
		return true, d.literal("true")
	case 'f':
		return false, d.literal("false")
	case 'n':
		return nil, d.literal("null")
	default:
		if c == '-' || ('0' <= c && c <= '9') {
			f, err := d.number()
			if err != nil {
				return nil, err
			}
			return f, nil
		}
		return nil, d.fail(d.i, "invalid character "+strconv.QuoteRune(rune(c))+" where a value was expected")
	}
}

func (d *claimsDecoder) literal(word string) error {
	if !strings.HasPrefix(d.s[d.i:], word) {
		return d.fail(d.i, "invalid literal (expected "+word+")")
	}
	d.i += len(word)
	return nil
}

// enter and leave track the nesting depth.
func (d *claimsDecoder) enter() error {
	if d.depth++; d.depth > maxClaimsDepth {
		return d.fail(d.i, "claims nested deeper than "+strconv.Itoa(maxClaimsDepth)+" levels")
	}
	return nil
}

// object decodes the object starting at d.i ('{').
func (d *claimsDecoder) object() (map[string]any, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	d.i++
	d.skipSpace()
	if d.i < len(d.s) && d.s[d.i] == '}' {
		d.i++
		d.depth--
		return map[string]any{}, nil
	}
	var buf [16]claimMember
	members := buf[:0]
	for {
		if d.i >= len(d.s) || d.s[d.i] != '"' {
			return nil, d.fail(d.i, "expected a member name")
		}
		name, err := d.str()
		if err != nil {
			return nil, err
		}
		d.skipSpace()
		if d.i >= len(d.s) || d.s[d.i] != ':' {
			return nil, d.fail(d.i, "expected ':' after a member name")
		}
		d.i++
		d.skipSpace()
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		members = append(members, claimMember{name, v})
		d.skipSpace()
		if d.i >= len(d.s) {
			return nil, d.fail(d.i, "unterminated object")
		}
		if d.s[d.i] == ',' {
			d.i++
			d.skipSpace()
			continue
		}
		if d.s[d.i] != '}' {
			return nil, d.fail(d.i, "expected ',' or '}' in an object")
		}
		d.i++
		break
	}
	m := make(map[string]any, len(members))
	for _, mb := range members {
		n := len(m)
		m[mb.name] = mb.val
		if len(m) == n {
			return nil, d.fail(d.i, "duplicate member name "+quoteShort(mb.name))
		}
	}
	d.depth--
	return m, nil
}

// array decodes the array starting at d.i ('[').
func (d *claimsDecoder) array() ([]any, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	d.i++
	d.skipSpace()
	if d.i < len(d.s) && d.s[d.i] == ']' {
		d.i++
		d.depth--
		return []any{}, nil
	}
	var buf [16]any
	elems := buf[:0]
	for {
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		elems = append(elems, v)
		d.skipSpace()
		if d.i >= len(d.s) {
			return nil, d.fail(d.i, "unterminated array")
		}
		if d.s[d.i] == ',' {
			d.i++
			d.skipSpace()
			continue
		}
		if d.s[d.i] != ']' {
			return nil, d.fail(d.i, "expected ',' or ']' in an array")
		}
		d.i++
		break
	}
	out := make([]any, len(elems))
	copy(out, elems)
	d.depth--
	return out, nil
}

// number decodes the number at d.i following the JSON grammar
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? into a float64 exactly as
// strconv.ParseFloat (and so encoding/json) does.
func (d *claimsDecoder) number() (float64, error) {
	s, i := d.s, d.i
	start := i
	neg := s[i] == '-'
	if neg {
		i++
	}
	var (
		n      uint64
		digits int
	)
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && '1' <= s[i] && s[i] <= '9':
		for ; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
			if digits < 19 {
				n = n*10 + uint64(s[i]-'0')
			}
			digits++
		}
	default:
		return 0, d.fail(i, "invalid number")
	}
	integer := true
	if i < len(s) && s[i] == '.' {
		integer = false
		i++
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return 0, d.fail(i, "invalid number (no digit after the decimal point)")
		}
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		integer = false
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return 0, d.fail(i, "invalid number (no digit in the exponent)")
		}
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
	}
	d.i = i
	// Integers below 10^15 (NumericDates among them) are exact in a float64, so
	// converting the accumulated value gives what ParseFloat would return.
	if integer && digits <= 15 {
		f := float64(n)
		if neg {
			f = -f // -0 stays negative zero, as with ParseFloat
		}
		return f, nil
	}
	f, err := strconv.ParseFloat(s[start:i], 64)
	if err != nil {
		return 0, d.fail(start, "number out of the float64 range")
	}
	return f, nil
}

// str decodes the string starting at d.i ('"'). A string without escapes is returned
// as a substring of the input, without copying.
func (d *claimsDecoder) str() (string, error) {
	s := d.s
	start := d.i + 1
	for i := start; i < len(s); {
		c := s[i]
		switch {
		case c == '"':
			d.i = i + 1
			return s[start:i], nil
		case c == '\\':
			return d.strEscaped(start, i)
		case c < ' ':
			return "", d.fail(i, "control character in a string")
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				return "", d.fail(i, "invalid UTF-8 in a string")
			}
			i += size
		}
	}
	return "", d.fail(len(s), "unterminated string")
}

// strEscaped decodes a string that contains an escape; start is the first byte of its
// contents and i the first backslash (everything before it is plain and valid).
func (d *claimsDecoder) strEscaped(start, i int) (string, error) {
	s := d.s
	// Find the closing quote first: the decoded string is never longer than its
	// escaped form, so one allocation of that size is enough.
	end := i
	for end < len(s) && s[end] != '"' {
		if s[end] == '\\' {
			end++
		}
		end++
	}
	if end >= len(s) {
		return "", d.fail(len(s), "unterminated string")
	}
	var b strings.Builder
	b.Grow(end - start)
	b.WriteString(s[start:i])
	for i < end {
		c := s[i]
		switch {
		case c == '\\':
			if i+1 >= end {
				return "", d.fail(i, "invalid escape in a string")
			}
			switch e := s[i+1]; e {
			case '"', '\\', '/':
				b.WriteByte(e)
				i += 2
			case 'b':
				b.WriteByte('\b')
				i += 2
			case 'f':
				b.WriteByte('\f')
				i += 2
			case 'n':
				b.WriteByte('\n')
				i += 2
			case 'r':
				b.WriteByte('\r')
				i += 2
			case 't':
				b.WriteByte('\t')
				i += 2
			case 'u':
				r := hex4(s[i:end])
				if r < 0 {
					return "", d.fail(i, "invalid \\u escape in a string")
				}
				i += 6
				// Exactly encoding/json's rule: a surrogate followed by a \u escape
				// that completes a valid pair is one rune; any other surrogate is
				// U+FFFD, and the escape after it is decoded on its own.
				if utf16.IsSurrogate(r) {
					if dec := utf16.DecodeRune(r, hex4(s[i:end])); dec != utf8.RuneError {
						b.WriteRune(dec)
						i += 6
						break
					}
					r = utf8.RuneError
				}
				b.WriteRune(r)
			default:
				return "", d.fail(i, "invalid escape in a string")
			}
		case c < ' ':
			return "", d.fail(i, "control character in a string")
		case c < utf8.RuneSelf:
			b.WriteByte(c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:end])
			if r == utf8.RuneError && size == 1 {
				return "", d.fail(i, "invalid UTF-8 in a string")
			}
			b.WriteString(s[i : i+size])
			i += size
		}
	}
	d.i = end + 1
	return b.String(), nil
}

// hex4 decodes the \uXXXX escape at the start of s, or returns -1.
func hex4(s string) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range []byte(s[2:6]) {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}
