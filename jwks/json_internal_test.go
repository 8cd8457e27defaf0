package jwks

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzScanner checks the scanner against encoding/json: it accepts a text
// exactly when encoding/json does (and the text is valid UTF-8 and not
// nested deeper than maxDepth), and reads the same string values.
func FuzzScanner(f *testing.F) {
	for _, s := range []string{
		`{}`, ` { "a" : 1 } `, `{"alg":"ES256","kid":"k","typ":"at+jwt"}`,
		`{"a":[1,2,{"b":null}],"c":true,"d":false,"e":-0.5e+10}`,
		`{"\u0061lg":"x\ny\"z\\\/\ud83d\ude00"}`, `{"a":"\ud800"}`, `{"a":01}`, `{"a":1.}`,
		`{"a":.5}`, `{"a":-}`, `{"a":1e}`, `{"a":tru}`, `{"a" 1}`, `{"a":1,}`, `[1]`, `"s"`,
		`{"a":"` + "\x01" + `"}`, `{"a":"` + "\xff" + `"}`, `{"a":1}x`, `{"a":"\x"}`, `{"a":"\u12"}`,
		strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat(`}`, 40),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc := scanner{s: s}
		err := sc.skip(0)
		ours := err == nil && sc.end()
		theirs := json.Valid([]byte(s)) && utf8.ValidString(s)
		if ours && !theirs {
			t.Fatalf("scanner accepts %q, encoding/json does not", s)
		}
		if !ours && theirs && depth(s) <= maxDepth {
			t.Fatalf("scanner refuses %q (%v), encoding/json accepts it", s, err)
		}
		if !ours {
			return
		}
		// Object members read as strings must decode like encoding/json.
		var m map[string]any
		if json.Unmarshal([]byte(s), &m) != nil || m == nil {
			return
		}
		sc = scanner{s: s}
		seen := map[string]bool{}
		dup := false
		err = sc.members(func(name string) error {
			dup = dup || seen[name]
			seen[name] = true
			if want, ok := m[name].(string); ok && !dup {
				got, err := sc.str()
				if err != nil || got != want {
					t.Fatalf("member %q=%q (%v), want %q", name, got, err, want)
				}
				return nil
			}
			return sc.skip(0)
		})
		if err != nil {
			t.Fatalf("members(%q): %v", s, err)
		}
	})
}

// depth is an upper bound of the nesting of s.
func depth(s string) int {
	d, m := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{', '[':
			d++
			m = max(m, d)
		case '}', ']':
			d--
		}
	}
	return m
}
