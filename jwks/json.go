package jwks

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// A small strict JSON reader for the two objects of a JWT, the header and
// the claims set. It exists so that Verify decodes each exactly once,
// without reflection, and can see what encoding/json hides: duplicate
// member names. It accepts exactly RFC 8259 JSON (checked against
// encoding/json by FuzzScanner); strings must be valid UTF-8.

var errJSON = errors.New("invalid JSON")

// maxDepth bounds the nesting of values Verify skips over.
const maxDepth = 32

type scanner struct {
	s string
	i int
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func (sc *scanner) skipSpace() {
	for sc.i < len(sc.s) && isSpace(sc.s[sc.i]) {
		sc.i++
	}
}

// consume skips white space, then c if it is next.
func (sc *scanner) consume(c byte) bool {
	sc.skipSpace()
	if sc.i < len(sc.s) && sc.s[sc.i] == c {
		sc.i++
		return true
	}
	return false
}

// peek skips white space and returns the next byte, or 0 at the end.
func (sc *scanner) peek() byte {
	sc.skipSpace()
	if sc.i < len(sc.s) {
		return sc.s[sc.i]
	}
	return 0
}

// end reports whether only white space remains.
func (sc *scanner) end() bool {
	sc.skipSpace()
	return sc.i == len(sc.s)
}

// str reads a string and returns its value. Without escapes the value is a
// substring of the input (no allocation); with them encoding/json
// unescapes it.
func (sc *scanner) str() (string, error) {
	if sc.peek() != '"' {
		return "", errJSON
	}
	start := sc.i
	sc.i++
	escaped, ascii := false, true
	for sc.i < len(sc.s) {
		c := sc.s[sc.i]
		switch {
		case c == '"':
			sc.i++
			raw := sc.s[start:sc.i]
			if !ascii && !utf8.ValidString(raw) {
				return "", errJSON
			}
			if !escaped {
				return raw[1 : len(raw)-1], nil
			}
			var v string
			if err := json.Unmarshal([]byte(raw), &v); err != nil {
				return "", errJSON
			}
			return v, nil
		case c == '\\':
			escaped = true
			sc.i += 2 // the escape is checked by encoding/json above
		case c < 0x20:
			return "", errJSON
		default:
			if c >= 0x80 {
				ascii = false
			}
			sc.i++
		}
	}
	return "", errJSON
}

// number reads a number and returns its text.
func (sc *scanner) number() (string, error) {
	sc.skipSpace()
	s, i := sc.s, sc.i
	start := i
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	default:
		return "", errJSON
	}
	if i < len(s) && s[i] == '.' {
		i++
		d := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i == d {
			return "", errJSON
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		d := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i == d {
			return "", errJSON
		}
	}
	sc.i = i
	return s[start:i], nil
}

func (sc *scanner) literal(lit string) error {
	if len(sc.s)-sc.i < len(lit) || sc.s[sc.i:sc.i+len(lit)] != lit {
		return errJSON
	}
	sc.i += len(lit)
	return nil
}

// skip reads over one value of any type.
func (sc *scanner) skip(depth int) error {
	if depth > maxDepth {
		return errJSON
	}
	switch sc.peek() {
	case '"':
		_, err := sc.str()
		return err
	case '{':
		sc.i++
		if sc.consume('}') {
			return nil
		}
		for {
			if _, err := sc.str(); err != nil {
				return err
			}
			if !sc.consume(':') {
				return errJSON
			}
			if err := sc.skip(depth + 1); err != nil {
				return err
			}
			if sc.consume(',') {
				continue
			}
			if sc.consume('}') {
				return nil
			}
			return errJSON
		}
	case '[':
		sc.i++
		if sc.consume(']') {
			return nil
		}
		for {
			if err := sc.skip(depth + 1); err != nil {
				return err
			}
			if sc.consume(',') {
				continue
			}
			if sc.consume(']') {
				return nil
			}
			return errJSON
		}
	case 't':
		return sc.literal("true")
	case 'f':
		return sc.literal("false")
	case 'n':
		return sc.literal("null")
	default:
		_, err := sc.number()
		return err
	}
}

// members calls fn for each member of the object that is the whole input.
// fn must read the member's value. Duplicate names are fn's to detect.
func (sc *scanner) members(fn func(name string) error) error {
	if !sc.consume('{') {
		return errJSON
	}
	if !sc.consume('}') {
		for {
			name, err := sc.str()
			if err != nil {
				return err
			}
			if !sc.consume(':') {
				return errJSON
			}
			if err := fn(name); err != nil {
				return err
			}
			if sc.consume(',') {
				continue
			}
			if sc.consume('}') {
				break
			}
			return errJSON
		}
	}
	if !sc.end() {
		return errJSON
	}
	return nil
}

// maxNumericDate is 9999-12-31T23:59:59Z.
const maxNumericDate = 253402300799

// numericDate reads a NumericDate (RFC 7519 §2): seconds since the epoch,
// possibly fractional. Negative and absurdly large values are refused.
func (sc *scanner) numericDate() (time.Time, error) {
	if c := sc.peek(); c != '-' && !isDigit(c) {
		return time.Time{}, errJSON
	}
	text, err := sc.number()
	if err != nil {
		return time.Time{}, err
	}
	if n, err := strconv.ParseInt(text, 10, 64); err == nil {
		if n < 0 || n > maxNumericDate {
			return time.Time{}, errJSON
		}
		return time.Unix(n, 0).UTC(), nil
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return time.Time{}, errJSON
	}
	sec := math.Floor(f)
	return time.Unix(int64(sec), int64((f-sec)*1e9)).UTC(), nil
}
