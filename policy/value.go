package policy

import (
	"encoding/json"
	"math"
	"strconv"
	"time"
)

// digits is the storage of a decimal's digits: constants keep strings,
// numbers formatted at evaluation time live in a stack buffer.
type digits interface{ ~string | ~[]byte }

// decimal is an exact decimal number: value = ±0.(hi+lo) × 10^exp, where
// hi+lo are the significant digits with no leading or trailing zeros (empty
// for zero). hi and lo slice the source text, so parsing allocates nothing.
type decimal[T digits] struct {
	neg    bool
	hi, lo T
	exp    int
}

func (d decimal[T]) n() int { return len(d.hi) + len(d.lo) }

func (d decimal[T]) at(i int) byte {
	if i < len(d.hi) {
		return d.hi[i]
	}
	return d.lo[i-len(d.hi)]
}

// maxExponent bounds exponents; larger ones make the text "not a number".
const maxExponent = 1_000_000_000

// parseDecimal parses a JSON number literal (optionally with a leading '+'
// in the exponent only, as JSON allows). It rejects leading zeros, "Inf",
// "NaN", hex and anything else JSON does not allow, so "007" is text.
func parseDecimal[T digits](s T) (decimal[T], bool) {
	var d decimal[T]
	i := 0
	if i < len(s) && s[i] == '-' {
		d.neg = true
		i++
	}
	// integer part
	start := i
	if i >= len(s) {
		return d, false
	}
	if s[i] == '0' {
		i++
	} else if s[i] >= '1' && s[i] <= '9' {
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	} else {
		return d, false
	}
	intPart := s[start:i]
	var frac T
	if i < len(s) && s[i] == '.' {
		i++
		fs := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == fs {
			return d, false
		}
		frac = s[fs:i]
	}
	exp := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		eneg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			eneg = s[i] == '-'
			i++
		}
		es := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			if exp < maxExponent {
				exp = exp*10 + int(s[i]-'0')
			}
			i++
		}
		if i == es || exp >= maxExponent {
			return d, false
		}
		if eneg {
			exp = -exp
		}
	}
	if i != len(s) {
		return d, false
	}
	// strip leading zeros of the integer part
	k := 0
	for k < len(intPart) && intPart[k] == '0' {
		k++
	}
	hi := intPart[k:]
	lo := frac
	if len(hi) > 0 {
		d.exp = len(hi) + exp
	} else {
		z := 0
		for z < len(lo) && lo[z] == '0' {
			z++
		}
		lo = lo[z:]
		d.exp = -z + exp
	}
	// strip trailing zeros
	for len(lo) > 0 && lo[len(lo)-1] == '0' {
		lo = lo[:len(lo)-1]
	}
	if len(lo) == 0 {
		for len(hi) > 0 && hi[len(hi)-1] == '0' {
			hi = hi[:len(hi)-1]
		}
	}
	d.hi, d.lo = hi, lo
	if d.n() == 0 {
		d.neg, d.exp = false, 0
	}
	return d, true
}

// cmpDecimal compares two decimals exactly: -1, 0 or +1.
func cmpDecimal[A, B digits](a decimal[A], b decimal[B]) int {
	sa, sb := sign(a.neg, a.n()), sign(b.neg, b.n())
	if sa != sb {
		if sa < sb {
			return -1
		}
		return 1
	}
	if sa == 0 {
		return 0
	}
	c := 0
	switch {
	case a.exp < b.exp:
		c = -1
	case a.exp > b.exp:
		c = 1
	default:
		na, nb := a.n(), b.n()
		for i := 0; i < na && i < nb && c == 0; i++ {
			x, y := a.at(i), b.at(i)
			if x < y {
				c = -1
			} else if x > y {
				c = 1
			}
		}
		if c == 0 {
			if na < nb {
				c = -1
			} else if na > nb {
				c = 1
			}
		}
	}
	return c * sa
}

func sign(neg bool, n int) int {
	switch {
	case n == 0:
		return 0
	case neg:
		return -1
	}
	return 1
}

// numBuf holds a number formatted during evaluation, on the caller's stack.
type numBuf [40]byte

// appendNumber formats a Go numeric claim value as JSON number text. ok is
// false for a value that is not a number, NaN or an infinity.
func appendNumber(dst []byte, v any) ([]byte, bool) {
	switch x := v.(type) {
	case float64:
		return appendFloat(dst, x, 64)
	case float32:
		return appendFloat(dst, float64(x), 32)
	case int:
		return strconv.AppendInt(dst, int64(x), 10), true
	case int8:
		return strconv.AppendInt(dst, int64(x), 10), true
	case int16:
		return strconv.AppendInt(dst, int64(x), 10), true
	case int32:
		return strconv.AppendInt(dst, int64(x), 10), true
	case int64:
		return strconv.AppendInt(dst, x, 10), true
	case uint:
		return strconv.AppendUint(dst, uint64(x), 10), true
	case uint8:
		return strconv.AppendUint(dst, uint64(x), 10), true
	case uint16:
		return strconv.AppendUint(dst, uint64(x), 10), true
	case uint32:
		return strconv.AppendUint(dst, uint64(x), 10), true
	case uint64:
		return strconv.AppendUint(dst, x, 10), true
	}
	return dst, false
}

// appendFloat formats like encoding/json: shortest representation, plain
// notation for 1e-6 <= |f| < 1e21, exponent notation otherwise.
func appendFloat(dst []byte, f float64, bits int) ([]byte, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return dst, false
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	return strconv.AppendFloat(dst, f, format, -1, bits), true
}

// isNumber reports whether v is a Go number type Evaluate understands.
func isNumber(v any) bool {
	switch v.(type) {
	case float64, float32, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, json.Number:
		return true
	}
	return false
}

// instant is a point in time with nanosecond precision.
type instant struct {
	sec  int64
	nsec int32
}

func cmpInstant(a, b instant) int {
	switch {
	case a.sec < b.sec:
		return -1
	case a.sec > b.sec:
		return 1
	case a.nsec < b.nsec:
		return -1
	case a.nsec > b.nsec:
		return 1
	}
	return 0
}

// appendEpoch writes t as decimal epoch seconds ("1700000000.5").
func appendEpoch(dst []byte, t instant) []byte {
	sec, nsec := t.sec, int64(t.nsec)
	if sec < 0 && nsec > 0 { // -1.5 s is sec=-2, nsec=5e8
		dst = append(dst, '-')
		sec = -sec - 1
		nsec = 1e9 - nsec
		dst = strconv.AppendInt(dst, sec, 10)
	} else {
		dst = strconv.AppendInt(dst, sec, 10)
	}
	if nsec > 0 {
		dst = append(dst, '.')
		var f [9]byte
		for i := 8; i >= 0; i-- {
			f[i] = byte('0' + nsec%10)
			nsec /= 10
		}
		dst = append(dst, f[:]...)
	}
	return dst
}

// parseTimestamp parses an RFC 3339 date-time ("2024-05-01T12:00:00Z",
// "2024-05-01T14:00:00.5+02:00"; 'T' and 'Z' in either case) without
// allocating. Leap seconds (":60") are rejected.
func parseTimestamp(s string) (instant, bool) {
	// YYYY-MM-DDTHH:MM:SS minimum 19 chars + zone
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':' {
		return instant{}, false
	}
	num := func(a, b int) (int, bool) {
		n := 0
		for i := a; i < b; i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	year, ok1 := num(0, 4)
	month, ok2 := num(5, 7)
	day, ok3 := num(8, 10)
	hour, ok4 := num(11, 13)
	minute, ok5 := num(14, 16)
	second, ok6 := num(17, 19)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) {
		return instant{}, false
	}
	if month < 1 || month > 12 || day < 1 || day > daysIn(year, month) || hour > 23 || minute > 59 || second > 59 {
		return instant{}, false
	}
	i := 19
	nsec := 0
	if i < len(s) && s[i] == '.' {
		i++
		fs := i
		scale := 100_000_000
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			nsec += int(s[i]-'0') * scale
			scale /= 10
			i++
		}
		if i == fs || i-fs > 9 {
			return instant{}, false
		}
	}
	if i >= len(s) {
		return instant{}, false
	}
	offset := 0
	switch s[i] {
	case 'Z', 'z':
		i++
	case '+', '-':
		if len(s)-i != 6 || s[i+3] != ':' {
			return instant{}, false
		}
		oh, ok1 := num(i+1, i+3)
		om, ok2 := num(i+4, i+6)
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return instant{}, false
		}
		offset = (oh*60 + om) * 60
		if s[i] == '-' {
			offset = -offset
		}
		i += 6
	default:
		return instant{}, false
	}
	if i != len(s) {
		return instant{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, second, nsec, time.UTC)
	return instant{sec: t.Unix() - int64(offset), nsec: int32(nsec)}, true
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
