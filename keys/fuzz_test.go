package keys_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/keymint/keymint/keys"
)

// FuzzParseSecret checks that parsing never panics, and that whatever
// parses is canonical: it re-encodes to itself with a recoverable id.
func FuzzParseSecret(f *testing.F) {
	s, _ := keys.NewSecret(keys.TypeSecret, uuid.Must(uuid.NewV7()), nil)
	f.Add(s.String())
	f.Add("km_sk_")
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		p, err := keys.ParseSecret(in)
		if err != nil {
			return
		}
		if p.String() != in {
			t.Fatalf("parsed %q but String()=%q", in, p.String())
		}
		if _, err := uuid.Parse(p.KeyID); err != nil {
			t.Fatalf("parsed secret has bad id %q", p.KeyID)
		}
		if !keys.LooksLikeSecret(in) {
			t.Fatal("a parsed secret must carry the prefix")
		}
	})
}

// FuzzParseScope round-trips scopes: a parsed scope prints to the input,
// which parses again to a scope that grants itself.
func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"devices:read", "sites/*/devices:write", "*:*", "a/b/c:d", "x:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := keys.ParseScope(in)
		if err != nil {
			return
		}
		if got := s.String(); got != in {
			t.Fatalf("String()=%q, want %q", got, in)
		}
		again, err := keys.ParseScope(s.String())
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if !s.Matches(again) {
			t.Fatalf("%q does not grant itself", in)
		}
	})
}
