package jwks_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/keymint/keymint/jwks"
)

// privateMembers must never appear in a published key.
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "k", "oth"}

func TestMarshal(t *testing.T) {
	es, ed, rs := testKeys(t)
	for _, tc := range []struct {
		k       testKey
		members []string
	}{
		{es, []string{"alg", "crv", "kid", "kty", "use", "x", "y"}},
		{ed, []string{"alg", "crv", "kid", "kty", "use", "x"}},
		{rs, []string{"alg", "e", "kid", "kty", "n", "use"}},
	} {
		t.Run(tc.k.alg, func(t *testing.T) {
			b, err := jwks.Marshal([]jwks.PublicKey{tc.k.public()})
			if err != nil {
				t.Fatal(err)
			}
			var set struct{ Keys []map[string]any }
			if err := json.Unmarshal(b, &set); err != nil {
				t.Fatal(err)
			}
			if len(set.Keys) != 1 {
				t.Fatalf("%d keys", len(set.Keys))
			}
			var names []string
			for name := range set.Keys[0] {
				names = append(names, name)
			}
			sort.Strings(names)
			if got, want := strings.Join(names, ","), strings.Join(tc.members, ","); got != want {
				t.Fatalf("members=%s, want %s", got, want)
			}
			k := set.Keys[0]
			if k["kid"] != tc.k.kid || k["alg"] != tc.k.alg || k["use"] != "sig" {
				t.Fatalf("key=%v", k)
			}
			for _, m := range privateMembers {
				if bytes.Contains(b, []byte(`"`+m+`"`)) {
					t.Fatalf("output contains %q: %s", m, b)
				}
			}
			if !bytes.HasPrefix(b, []byte(`{"keys":[`)) {
				t.Fatalf("output %s", b)
			}
		})
	}
}

func TestMarshal_RefusesPrivateAndSymmetric(t *testing.T) {
	es, ed, rs := testKeys(t)
	for name, pk := range map[string]jwks.PublicKey{
		"ECDSAPrivate":   {KID: "a", Alg: "ES256", Key: es.priv},
		"Ed25519Private": {KID: "a", Alg: "EdDSA", Key: ed.priv},
		"RSAPrivate":     {KID: "a", Alg: "RS256", Key: rs.priv},
		"Symmetric":      {KID: "a", Alg: "HS256", Key: []byte("0123456789abcdef0123456789abcdef")},
		"SymmetricES256": {KID: "a", Alg: "ES256", Key: []byte("0123456789abcdef0123456789abcdef")},
		"String":         {KID: "a", Alg: "ES256", Key: "secret"},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := jwks.Marshal([]jwks.PublicKey{es.public(), pk})
			if err == nil || b != nil {
				t.Fatalf("Marshal=%s, %v; want an error", b, err)
			}
			for _, m := range privateMembers {
				if strings.Contains(err.Error(), `"`+m+`"`) {
					t.Fatalf("error mentions key material: %v", err)
				}
			}
			if _, err := jwks.NewKeySet([]jwks.PublicKey{pk}); err == nil {
				t.Fatal("NewKeySet accepted it")
			}
		})
	}
}

func TestMarshal_RefusesMismatches(t *testing.T) {
	es, ed, rs := testKeys(t)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, keys := range map[string][]jwks.PublicKey{
		"ES256WithEd25519": {{KID: "a", Alg: "ES256", Key: ed.priv.Public()}},
		"ES256WithRSA":     {{KID: "a", Alg: "ES256", Key: rs.priv.Public()}},
		"ES256WithP384":    {{KID: "a", Alg: "ES256", Key: &p384.PublicKey}},
		"EdDSAWithECDSA":   {{KID: "a", Alg: "EdDSA", Key: es.priv.Public()}},
		"EdDSAWithX25519":  {{KID: "a", Alg: "EdDSA", Key: x25519.PublicKey()}},
		"RS256WithECDSA":   {{KID: "a", Alg: "RS256", Key: es.priv.Public()}},
		"RS256With1024":    {{KID: "a", Alg: "RS256", Key: &rsa1024.PublicKey}},
		"HS256":            {{KID: "a", Alg: "HS256", Key: es.priv.Public()}},
		"None":             {{KID: "a", Alg: "none", Key: es.priv.Public()}},
		"ES384":            {{KID: "a", Alg: "ES384", Key: &p384.PublicKey}},
		"NilKey":           {{KID: "a", Alg: "ES256"}},
		"EmptyKID":         {{KID: "", Alg: "ES256", Key: es.priv.Public()}},
		"DuplicateKID":     {es.public(), {KID: es.kid, Alg: "EdDSA", Key: ed.priv.Public()}},
	} {
		if b, err := jwks.Marshal(keys); err == nil {
			t.Errorf("%s: Marshal=%s", name, b)
		}
	}
	if b, err := jwks.Marshal(nil); err != nil || string(b) != `{"keys":[]}` {
		t.Errorf("Marshal(nil)=%s, %v", b, err)
	}
}

func TestParseKeySet_RoundTrip(t *testing.T) {
	es, ed, rs := testKeys(t)
	b, err := jwks.Marshal([]jwks.PublicKey{rs.public(), es.public(), ed.public()})
	if err != nil {
		t.Fatal(err)
	}
	set, err := jwks.ParseKeySet(b)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := set.Len(), 3; got != want {
		t.Fatalf("Len=%d, want %d", got, want)
	}
	if got, want := strings.Join(set.KIDs(), ","), "ed-1,es-1,rs-1"; got != want {
		t.Fatalf("KIDs=%s, want %s", got, want)
	}
	for _, k := range []testKey{es, ed, rs} {
		if alg, ok := set.Alg(k.kid); !ok || alg != k.alg {
			t.Errorf("Alg(%s)=%q,%v", k.kid, alg, ok)
		}
	}
	kids := set.KIDs()
	kids[0] = "mutated"
	if set.KIDs()[0] != "ed-1" {
		t.Fatal("KIDs exposes the set's slice")
	}
	var empty *jwks.KeySet
	if empty.Len() != 0 || empty.KIDs() != nil {
		t.Fatal("nil KeySet not empty")
	}
}

// keyJSON returns the JWK of pub with fields set (or removed, if nil).
func keyJSON(tb testing.TB, key any, fields map[string]any) map[string]any {
	tb.Helper()
	jk, err := jwk.Import(key)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := json.Marshal(jk)
	if err != nil {
		tb.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatal(err)
	}
	for k, v := range fields {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

func setJSON(tb testing.TB, keys ...any) []byte {
	tb.Helper()
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestParseKeySet_Skips(t *testing.T) {
	es, ed, rs := testKeys(t)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	x25519, _ := ecdh.X25519().GenerateKey(rand.Reader)
	good := keyJSON(t, es.priv.Public(), map[string]any{"kid": "good", "alg": "ES256", "use": "sig"})
	for name, entry := range map[string]any{
		"NoKid":         keyJSON(t, es.priv.Public(), map[string]any{"alg": "ES256"}),
		"NoAlg":         keyJSON(t, es.priv.Public(), map[string]any{"kid": "x"}),
		"ES256OnP384":   keyJSON(t, &p384.PublicKey, map[string]any{"kid": "x", "alg": "ES256"}),
		"ES384":         keyJSON(t, &p384.PublicKey, map[string]any{"kid": "x", "alg": "ES384"}),
		"RS256OnEC":     keyJSON(t, es.priv.Public(), map[string]any{"kid": "x", "alg": "RS256"}),
		"ES256OnRSA":    keyJSON(t, rs.priv.Public(), map[string]any{"kid": "x", "alg": "ES256"}),
		"PS256":         keyJSON(t, rs.priv.Public(), map[string]any{"kid": "x", "alg": "PS256"}),
		"EdDSAOnX25519": keyJSON(t, x25519.PublicKey(), map[string]any{"kid": "x", "alg": "EdDSA"}),
		"EdDSAOnEC":     keyJSON(t, es.priv.Public(), map[string]any{"kid": "x", "alg": "EdDSA"}),
		"RS256Short":    map[string]any{"kty": "RSA", "kid": "x", "alg": "RS256", "n": b64.EncodeToString(rsa1024.N.Bytes()), "e": "AQAB"},
		"HS256OnEC":     keyJSON(t, es.priv.Public(), map[string]any{"kid": "x", "alg": "HS256"}),
		"UseEnc":        keyJSON(t, ed.priv.Public(), map[string]any{"kid": "x", "alg": "EdDSA", "use": "enc"}),
		"KeyOpsEncrypt": keyJSON(t, ed.priv.Public(), map[string]any{"kid": "x", "alg": "EdDSA", "key_ops": []string{"encrypt"}}),
		"UnknownKty":    map[string]any{"kty": "XYZ", "kid": "x", "alg": "ES256", "x": "AAAA"},
		"MissingY":      keyJSON(t, es.priv.Public(), map[string]any{"kid": "x", "alg": "ES256", "y": nil}),
		"PointOffCurve": keyJSON(t, es.priv.Public(), map[string]any{"kid": "x", "alg": "ES256", "y": b64.EncodeToString(make([]byte, 32))}),
		"NotAnObject":   42,
		"KidNotString":  keyJSON(t, es.priv.Public(), map[string]any{"kid": 7, "alg": "ES256"}),
	} {
		t.Run(name, func(t *testing.T) {
			set, err := jwks.ParseKeySet(setJSON(t, good, entry))
			if err != nil {
				t.Fatalf("ParseKeySet failed instead of skipping: %v", err)
			}
			if got := strings.Join(set.KIDs(), ","); got != "good" {
				t.Fatalf("KIDs=%s, want good", got)
			}
		})
	}
	t.Run("KeyOpsVerify", func(t *testing.T) {
		e := keyJSON(t, ed.priv.Public(), map[string]any{"kid": "x", "alg": "EdDSA", "key_ops": []string{"verify"}})
		set, err := jwks.ParseKeySet(setJSON(t, e))
		if err != nil || set.Len() != 1 {
			t.Fatalf("set=%v err=%v", set.KIDs(), err)
		}
	})
}

func TestParseKeySet_Refuses(t *testing.T) {
	es, ed, rs := testKeys(t)
	good := keyJSON(t, es.priv.Public(), map[string]any{"kid": "good", "alg": "ES256"})
	for name, data := range map[string][]byte{
		"Oct":            setJSON(t, good, map[string]any{"kty": "oct", "kid": "h", "alg": "HS256", "k": "c2VjcmV0"}),
		"OctNoKid":       setJSON(t, good, map[string]any{"kty": "oct", "k": "c2VjcmV0"}),
		"OctNoK":         setJSON(t, good, map[string]any{"kty": "oct", "kid": "h"}),
		"ECPrivate":      setJSON(t, good, keyJSON(t, es.priv, map[string]any{"kid": "p", "alg": "ES256"})),
		"EdPrivate":      setJSON(t, good, keyJSON(t, ed.priv, map[string]any{"kid": "p", "alg": "EdDSA"})),
		"RSAPrivate":     setJSON(t, good, keyJSON(t, rs.priv, map[string]any{"kid": "p", "alg": "RS256"})),
		"RSAPrivateNoD":  setJSON(t, good, keyJSON(t, rs.priv, map[string]any{"kid": "p", "alg": "RS256", "d": nil})),
		"PrivateNoKid":   setJSON(t, good, keyJSON(t, es.priv, map[string]any{"alg": "ES256"})),
		"UppercaseD":     setJSON(t, good, keyJSON(t, es.priv.Public(), map[string]any{"kid": "p", "alg": "ES256", "D": "AAAA"})),
		"DuplicateKid":   setJSON(t, good, keyJSON(t, ed.priv.Public(), map[string]any{"kid": "good", "alg": "EdDSA"})),
		"DuplicateSkipp": setJSON(t, good, keyJSON(t, ed.priv.Public(), map[string]any{"kid": "good"})),
		"NotJSON":        []byte("not json"),
		"Array":          []byte(`[]`),
		"NoKeys":         []byte(`{}`),
		"NullKeys":       []byte(`{"keys":null}`),
		"KeysNotArray":   []byte(`{"keys":{}}`),
		"Empty":          nil,
	} {
		t.Run(name, func(t *testing.T) {
			set, err := jwks.ParseKeySet(data)
			if err == nil {
				t.Fatalf("ParseKeySet accepted it: %v", set.KIDs())
			}
		})
	}
	if set, err := jwks.ParseKeySet([]byte(`{"keys":[]}`)); err != nil || set.Len() != 0 {
		t.Fatalf("empty set: %v, %v", set, err)
	}
}

func TestNewKeySet(t *testing.T) {
	es, ed, rs := testKeys(t)
	set, err := jwks.NewKeySet([]jwks.PublicKey{es.public(), ed.public(), rs.public()})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(set.KIDs(), []string{"ed-1", "es-1", "rs-1"}) {
		t.Fatalf("KIDs=%v", set.KIDs())
	}
	_, err = jwks.NewKeySet([]jwks.PublicKey{es.public(), es.public()})
	if err == nil || !strings.Contains(err.Error(), "duplicate kid") {
		t.Fatalf("err=%v", err)
	}
	if errors.Is(err, jwks.ErrInvalidToken) {
		t.Fatal("key set errors are not token errors")
	}
}
