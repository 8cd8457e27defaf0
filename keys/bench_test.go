package keys_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/keymint/keymint/keys"
)

// BenchmarkSecretCheck is the exchange's credential work before any
// lookup and after it: parse, checksum, HMAC, constant-time compare.
func BenchmarkSecretCheck(b *testing.B) {
	h, _ := keys.NewHasher(bytes.Repeat([]byte{1}, 32))
	s, _ := keys.NewSecret(keys.TypeSecret, uuid.Must(uuid.NewV7()), nil)
	stored := h.Hash(s)
	raw := s.String()
	b.ReportAllocs()
	for b.Loop() {
		p, err := keys.ParseSecret(raw)
		if err != nil || !h.Equal(p, stored) {
			b.Fatal("secret refused")
		}
	}
}

// BenchmarkAllows50 checks a permission against a key with 50 scopes, the
// most a key may hold; the match is the last scope.
func BenchmarkAllows50(b *testing.B) {
	var ss keys.Scopes
	for i := 0; i < 49; i++ {
		ss = append(ss, keys.MustParseScope(fmt.Sprintf("sites/site%d/devices:write", i)))
	}
	ss = append(ss, keys.MustParseScope("sites/*/routers:read"))
	perm := keys.MustParseScope("sites/eu1/routers/7:read")
	b.ReportAllocs()
	for b.Loop() {
		if !ss.Allows(perm) {
			b.Fatal("not allowed")
		}
	}
}
