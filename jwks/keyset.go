package jwks

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// The algorithms keymint signs with, and so the only ones a KeySet keeps
// and a Verifier accepts. Each is tied to one key type:
//
//	ES256  ECDSA on P-256
//	EdDSA  Ed25519
//	RS256  RSA, modulus of at least 2048 bits
//
// ES384, ES512, PS256 and the rest are deliberately not accepted: keymint
// never mints them, and every algorithm a verifier accepts is attack
// surface.
const (
	AlgES256 = "ES256"
	AlgEdDSA = "EdDSA"
	AlgRS256 = "RS256"
)

// MinRSABits is the smallest RSA modulus accepted for RS256.
const MinRSABits = 2048

// maxRSABits bounds the work an RS256 verification may cost.
const maxRSABits = 8192

// PublicKey is one signing key as published: its kid, the alg it signs
// with, and the public key (*ecdsa.PublicKey, ed25519.PublicKey or
// *rsa.PublicKey).
type PublicKey struct {
	KID string
	Alg string
	Key crypto.PublicKey
}

// keyEntry is a validated public key with its pinned algorithm.
type keyEntry struct {
	alg      string
	sigAlg   jwa.SignatureAlgorithm
	key      any // *ecdsa.PublicKey, ed25519.PublicKey or *rsa.PublicKey
	verifier jws.Verifier2
}

// KeySet is an immutable set of public keys indexed by kid, each pinned to
// the one algorithm it was published with. Build one with ParseKeySet or
// NewKeySet. A nil *KeySet is an empty set.
type KeySet struct {
	keys map[string]*keyEntry
	kids []string // sorted
}

// Len returns the number of keys in the set.
func (s *KeySet) Len() int {
	if s == nil {
		return 0
	}
	return len(s.keys)
}

// KIDs returns the key ids in the set, sorted.
func (s *KeySet) KIDs() []string {
	if s == nil {
		return nil
	}
	return slices.Clone(s.kids)
}

// Alg returns the algorithm the key kid is pinned to.
func (s *KeySet) Alg(kid string) (string, bool) {
	e, ok := s.lookup(kid)
	if !ok {
		return "", false
	}
	return e.alg, true
}

func (s *KeySet) lookup(kid string) (*keyEntry, bool) {
	if s == nil {
		return nil, false
	}
	e, ok := s.keys[kid]
	return e, ok
}

// errPrivate is returned for private or symmetric key material, which is
// never published nor accepted in a key set.
var errPrivate = errors.New("jwks: private or symmetric key material")

// newEntry checks that pub is a public key of the type alg requires and
// pins it to alg.
func newEntry(alg string, pub any) (*keyEntry, error) {
	if isPrivate(pub) {
		return nil, fmt.Errorf("%w (%T): only public keys may be published", errPrivate, pub)
	}
	switch alg {
	case AlgES256:
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok || k == nil || k.Curve == nil || k.Curve.Params().Name != "P-256" {
			return nil, fmt.Errorf("jwks: %s needs an ECDSA P-256 public key, not %s", alg, describeKey(pub))
		}
		// jwx classifies raw ECDSA keys by type alone and would verify
		// ES256 with a key on any curve: the curve is pinned here.
		if _, err := k.ECDH(); err != nil { // the point must be on the curve
			return nil, fmt.Errorf("jwks: %s: invalid P-256 public key: %w", alg, err)
		}
		return pin(alg, jwa.ES256(), k)
	case AlgEdDSA:
		k, ok := pub.(ed25519.PublicKey)
		if !ok || len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("jwks: %s needs an Ed25519 public key, not %s", alg, describeKey(pub))
		}
		return pin(alg, jwa.EdDSA(), k)
	case AlgRS256:
		k, ok := pub.(*rsa.PublicKey)
		if !ok || k == nil || k.N == nil {
			return nil, fmt.Errorf("jwks: %s needs an RSA public key, not %s", alg, describeKey(pub))
		}
		if bits := k.N.BitLen(); bits < MinRSABits || bits > maxRSABits {
			return nil, fmt.Errorf("jwks: %s needs an RSA key of %d to %d bits, not %d", alg, MinRSABits, maxRSABits, bits)
		}
		if k.E < 3 || k.E%2 == 0 {
			return nil, fmt.Errorf("jwks: %s: invalid RSA public exponent", alg)
		}
		return pin(alg, jwa.RS256(), k)
	default:
		return nil, fmt.Errorf("jwks: unsupported alg %.20q (want ES256, EdDSA or RS256)", alg)
	}
}

func pin(alg string, sigAlg jwa.SignatureAlgorithm, key any) (*keyEntry, error) {
	// VerifierFor returns the verifier registered for sigAlg, or jwx's
	// built-in one; it is looked up once here, not per token.
	v, err := jws.VerifierFor(sigAlg)
	if err != nil {
		return nil, fmt.Errorf("jwks: %s: %w", alg, err)
	}
	return &keyEntry{alg: alg, sigAlg: sigAlg, key: key, verifier: v}, nil
}

func isPrivate(k any) bool {
	switch k.(type) {
	case []byte, string, *ecdsa.PrivateKey, ed25519.PrivateKey, *rsa.PrivateKey, crypto.Signer, crypto.Decrypter:
		return true
	}
	return false
}

func describeKey(k any) string {
	if k, ok := k.(*ecdsa.PublicKey); ok && k != nil && k.Curve != nil {
		return "ECDSA " + k.Curve.Params().Name
	}
	return fmt.Sprintf("%T", k)
}

// NewKeySet validates keys (public keys only, each of the type its Alg
// requires, unique non-empty kids) and returns them as a KeySet. keymint's
// own server uses it to verify tokens with its in-process keys.
func NewKeySet(keys []PublicKey) (*KeySet, error) {
	s := &KeySet{keys: make(map[string]*keyEntry, len(keys))}
	for i, k := range keys {
		if k.KID == "" {
			return nil, fmt.Errorf("jwks: key %d: empty kid", i)
		}
		if _, dup := s.keys[k.KID]; dup {
			return nil, fmt.Errorf("jwks: duplicate kid %q", k.KID)
		}
		e, err := newEntry(k.Alg, k.Key)
		if err != nil {
			return nil, fmt.Errorf("jwks: key %q: %w", k.KID, err)
		}
		s.add(k.KID, e)
	}
	s.finish()
	return s, nil
}

func (s *KeySet) add(kid string, e *keyEntry) {
	s.keys[kid] = e
	s.kids = append(s.kids, kid)
}

func (s *KeySet) finish() { slices.Sort(s.kids) }

// Marshal returns keys as a JWK Set, {"keys":[...]}, each key with its
// kid, alg and "use":"sig" and nothing but public members. It refuses
// private and symmetric keys (it does not derive the public half of a
// private key: pass the public key), keys whose type does not fit their
// alg, and empty or duplicate kids.
func Marshal(keys []PublicKey) ([]byte, error) {
	if _, err := NewKeySet(keys); err != nil {
		return nil, err
	}
	set := jwk.NewSet()
	for _, k := range keys {
		jk, err := jwk.Import(k.Key)
		if err != nil {
			return nil, fmt.Errorf("jwks: key %q: %w", k.KID, err)
		}
		if priv, err := jwk.IsPrivateKey(jk); err != nil || priv {
			return nil, fmt.Errorf("jwks: key %q: %w", k.KID, errPrivate)
		}
		for _, f := range []struct {
			name  string
			value any
		}{
			{jwk.KeyIDKey, k.KID},
			{jwk.AlgorithmKey, k.Alg},
			{jwk.KeyUsageKey, "sig"},
		} {
			if err := jk.Set(f.name, f.value); err != nil {
				return nil, fmt.Errorf("jwks: key %q: set %s: %w", k.KID, f.name, err)
			}
		}
		if err := set.AddKey(jk); err != nil {
			return nil, fmt.Errorf("jwks: key %q: %w", k.KID, err)
		}
	}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("jwks: marshal key set: %w", err)
	}
	return b, nil
}

// privateMembers are the JWK members that carry secret material (RFC 7518
// §6.2.2, §6.3.2, §6.4.1; "d" also for OKP keys, RFC 8037).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// ParseKeySet parses a JWK Set ({"keys":[...]}).
//
// It keeps only keys that have a kid and an alg keymint accepts for their
// key type (see AlgES256, AlgEdDSA, AlgRS256), and that are not marked for
// another use ("use" other than "sig", or "key_ops" without "verify").
// Other entries (unknown kty, no kid, no alg, an alg that does not fit the
// key, a short RSA modulus, an invalid point) are skipped, as RFC 7517 §5
// recommends.
//
// It fails on the whole set if any entry is a symmetric (oct) key or
// carries private key material (d, p, q, dp, dq, qi, oth, k): a publisher
// that leaks secrets is not one to trust. It also fails on a kid that
// appears twice, whether or not the entries would have been kept.
func ParseKeySet(data []byte) (*KeySet, error) {
	var doc struct {
		Keys *[]json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("jwks: parse key set: %w", err)
	}
	if doc.Keys == nil {
		return nil, errors.New(`jwks: parse key set: no "keys" array`)
	}
	raws := *doc.Keys
	s := &KeySet{keys: make(map[string]*keyEntry, len(raws))}
	seen := make(map[string]bool, len(raws))
	for i, raw := range raws {
		var members map[string]json.RawMessage
		if err := json.Unmarshal(raw, &members); err != nil {
			continue // not an object: skip
		}
		for name := range members {
			for _, p := range privateMembers {
				if strings.EqualFold(name, p) {
					return nil, fmt.Errorf("jwks: parse key set: key %d: %w (member %q)", i, errPrivate, name)
				}
			}
		}
		var kty, kid string
		if v, ok := members["kty"]; ok {
			_ = json.Unmarshal(v, &kty)
		}
		if strings.EqualFold(kty, "oct") {
			return nil, fmt.Errorf("jwks: parse key set: key %d: %w (kty oct)", i, errPrivate)
		}
		if v, ok := members["kid"]; ok {
			if err := json.Unmarshal(v, &kid); err != nil {
				continue
			}
		}
		if kid == "" {
			continue
		}
		if seen[kid] {
			return nil, fmt.Errorf("jwks: parse key set: duplicate kid %q", kid)
		}
		seen[kid] = true

		e, ok := parseEntry(raw)
		if !ok {
			continue
		}
		s.add(kid, e)
	}
	s.finish()
	return s, nil
}

// parseEntry parses one JWK with jwx and returns it pinned to its alg, or
// false if it is not a key keymint accepts.
func parseEntry(raw []byte) (*keyEntry, bool) {
	k, err := jwk.ParseKey(raw)
	if err != nil || jwk.IsUnsupportedKey(k) {
		return nil, false
	}
	if priv, err := jwk.IsPrivateKey(k); err != nil || priv {
		return nil, false // the caller already refused private members
	}
	if use, ok := k.KeyUsage(); ok && use != "sig" {
		return nil, false
	}
	if ops, ok := k.KeyOps(); ok && !slices.Contains(ops, jwk.KeyOpVerify) {
		return nil, false
	}
	alg, ok := k.Algorithm()
	if !ok {
		return nil, false
	}
	var pub any
	if err := jwk.Export(k, &pub); err != nil {
		return nil, false
	}
	e, err := newEntry(alg.String(), pub)
	if err != nil {
		return nil, false
	}
	return e, true
}
