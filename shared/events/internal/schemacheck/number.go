package schemacheck

import (
	"math"
	"math/big"
	"strconv"
	"strings"
)

// maxExp bounds the exponent of a parsed number. A larger one saturates,
// so that no arithmetic on it can overflow; numbers whose exponents both
// exceed it compare as equal.
const maxExp = 1 << 62

// A decimal is a JSON number kept exactly: its value is
// (-1)^neg × 0.digits × 10^point. digits has neither leading nor trailing
// zeros; zero has no digits and is never negative. Unlike math/big.Rat, a
// decimal costs nothing for an exponent such as 1e999999999.
type decimal struct {
	neg    bool
	digits string
	point  int64
}

// parseDecimal parses s, a number in JSON syntax (a json.Number). It
// reports false when s is not one.
func parseDecimal(s string) (decimal, bool) {
	var d decimal
	if strings.HasPrefix(s, "-") {
		d.neg = true
		s = s[1:]
	}
	i := digitsPrefix(s)
	if i == 0 {
		return decimal{}, false
	}
	intPart, s := s[:i], s[i:]
	var frac string
	if strings.HasPrefix(s, ".") {
		j := 1 + digitsPrefix(s[1:])
		if j == 1 {
			return decimal{}, false
		}
		frac, s = s[1:j], s[j:]
	}
	var exp int64
	if s != "" && (s[0] == 'e' || s[0] == 'E') {
		s = s[1:]
		expNeg := false
		if s != "" && (s[0] == '+' || s[0] == '-') {
			expNeg = s[0] == '-'
			s = s[1:]
		}
		j := digitsPrefix(s)
		if j == 0 {
			return decimal{}, false
		}
		for _, c := range s[:j] {
			if exp < maxExp {
				exp = min(exp*10+int64(c-'0'), maxExp)
			}
		}
		if expNeg {
			exp = -exp
		}
		s = s[j:]
	}
	if s != "" {
		return decimal{}, false
	}

	intPart = strings.TrimLeft(intPart, "0")
	frac = strings.TrimRight(frac, "0")
	switch {
	case intPart == "" && frac == "":
		return decimal{}, true
	case frac == "":
		d.digits = strings.TrimRight(intPart, "0")
		d.point = int64(len(intPart)) + exp
	case intPart == "":
		d.digits = strings.TrimLeft(frac, "0")
		d.point = int64(len(d.digits)-len(frac)) + exp
	default:
		d.digits = intPart + frac
		d.point = int64(len(intPart)) + exp
	}
	return d, true
}

// digitsPrefix returns the length of the run of ASCII digits s starts with.
func digitsPrefix(s string) int {
	i := 0
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	return i
}

// isInt reports whether d has no fractional part (1.0 and 1e2 have none).
func (d decimal) isInt() bool { return int64(len(d.digits)) <= d.point }

// sign returns -1, 0 or +1.
func (d decimal) sign() int {
	switch {
	case d.digits == "":
		return 0
	case d.neg:
		return -1
	}
	return 1
}

// cmp compares d and e by value: -1, 0 or +1.
func (d decimal) cmp(e decimal) int {
	ds, es := d.sign(), e.sign()
	if ds != es || ds == 0 {
		return compareInts(ds, es)
	}
	// Same sign, both non-zero: the one with more integer digits is
	// larger in magnitude; with as many, the digits decide (a proper
	// prefix is smaller, as there are no trailing zeros).
	mag := compareInts(d.point, e.point)
	if mag == 0 {
		mag = strings.Compare(d.digits, e.digits)
	}
	return mag * ds
}

func compareInts[T int | int64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// isMultipleOf reports whether d / m is an integer; m is positive.
func (d decimal) isMultipleOf(m decimal) bool {
	if d.digits == "" {
		return true
	}
	// d = D × 10^dScale and m = M × 10^mScale with D and M integers, so
	// d / m = D × 10^k / M with k = dScale - mScale.
	dScale := d.point - int64(len(d.digits))
	mScale := m.point - int64(len(m.digits))
	k := dScale - mScale
	D, _ := new(big.Int).SetString(d.digits, 10)
	M, _ := new(big.Int).SetString(m.digits, 10)
	if k >= 0 {
		// M = 2^a × 5^b × r with r prime to 10 and a, b < M.BitLen(): more
		// factors of ten than that cannot change whether M divides.
		k = min(k, int64(M.BitLen()))
		D.Mul(D, pow10(k))
	} else {
		// M × 10^-k divides D only if it is at most D < 10^len(digits).
		if -k > int64(len(d.digits)) {
			return false
		}
		M.Mul(M, pow10(-k))
	}
	return D.Rem(D, M).Sign() == 0
}

func pow10(n int64) *big.Int {
	return new(big.Int).Exp(big.NewInt(10), big.NewInt(n), nil)
}

// formatNumber renders the JSON number s as the reference implementation
// does in its messages: converted to the nearest float64 and printed with
// %v by golang.org/x/text/message's English printer (see formatFloat).
func formatNumber(s string) string {
	f, _ := strconv.ParseFloat(s, 64) // ±Inf or 0 beyond the float64 range, as big.Rat.Float64 gives
	return formatFloat(f)
}

// formatFloat prints f the way golang.org/x/text/message's English printer
// prints a float64 with %v: the shortest decimal that reads back as f;
// when its exponent is below -4 or above 5, in scientific notation with a
// superscript exponent of at least two digits (1.5×10⁰⁷, 1×10⁻⁰⁵),
// otherwise with thousands separators (123,456.5); ∞ for infinity.
func formatFloat(f float64) string {
	var b strings.Builder
	if f < 0 {
		b.WriteByte('-')
	}
	f = math.Abs(f) // -0 prints as 0

	if math.IsInf(f, 0) {
		b.WriteString("∞")
		return b.String()
	}
	mant, e, _ := strings.Cut(strconv.FormatFloat(f, 'e', -1, 64), "e")
	digits := strings.Replace(mant, ".", "", 1)
	exp, _ := strconv.Atoi(e)
	if exp < -4 || exp >= 6 {
		b.WriteString(digits[:1])
		if len(digits) > 1 {
			b.WriteByte('.')
			b.WriteString(digits[1:])
		}
		b.WriteString("×10")
		if exp < 0 {
			b.WriteString("⁻")
			exp = -exp
		}
		if exp < 10 {
			b.WriteString("⁰")
		}
		for _, c := range strconv.Itoa(exp) {
			b.WriteString(superscripts[c-'0'])
		}
		return b.String()
	}
	var intPart, frac string
	if exp >= 0 {
		if len(digits) <= exp+1 {
			intPart = digits + strings.Repeat("0", exp+1-len(digits))
		} else {
			intPart, frac = digits[:exp+1], digits[exp+1:]
		}
	} else {
		intPart, frac = "0", strings.Repeat("0", -exp-1)+digits
	}
	writeGrouped(&b, intPart)
	if frac != "" {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	return b.String()
}

var superscripts = [10]string{"⁰", "¹", "²", "³", "⁴", "⁵", "⁶", "⁷", "⁸", "⁹"}

// formatInt prints n the way golang.org/x/text/message's English printer
// prints an int with %d: with thousands separators (1,234).
func formatInt(n int) string {
	var b strings.Builder
	s := strconv.Itoa(n)
	if n < 0 {
		b.WriteByte('-')
		s = s[1:]
	}
	writeGrouped(&b, s)
	return b.String()
}

// writeGrouped writes the digits s with a comma between groups of three.
func writeGrouped(b *strings.Builder, s string) {
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteByte(s[i])
	}
}
