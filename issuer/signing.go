package issuer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/keymint/keymint/keys"
	"github.com/keymint/keymint/storage"
)

// ErrNoActiveKey means an org has no signing key in the active state.
var ErrNoActiveKey = errors.New("issuer: org has no active signing key")

// GenerateSigningKey makes a new keypair for org with alg, sealed under m.
func GenerateSigningKey(m *MasterKey, org, alg string, status keys.SigningKeyStatus, now time.Time) (keys.SigningKey, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case keys.AlgES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case keys.AlgEdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case keys.AlgRS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return keys.SigningKey{}, fmt.Errorf("issuer: unsupported alg %q", alg)
	}
	if err != nil {
		return keys.SigningKey{}, fmt.Errorf("issuer: generate %s key: %w", alg, err)
	}
	pub, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return keys.SigningKey{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return keys.SigningKey{}, err
	}
	kid := uuid.Must(uuid.NewV7()).String()
	sealed, err := m.Seal(der, sealAAD(org, kid))
	if err != nil {
		return keys.SigningKey{}, err
	}
	k := keys.SigningKey{KID: kid, Org: org, Alg: alg, Status: status, PublicKey: pub, Sealed: sealed, CreatedAt: now}
	if status == keys.SigningActive {
		k.ActivatedAt = &now
	}
	return k, nil
}

// sealAAD binds a sealed private key to its org and kid, so a sealed blob
// copied onto another key record does not open.
func sealAAD(org, kid string) []byte { return []byte("keymint signing key " + org + "/" + kid) }

// signer is a decrypted signing key ready to mint with.
type signer struct {
	kid    string
	alg    string
	method jwt.SigningMethod
	key    crypto.Signer
	header []byte // the encoded protected header, the same for every token
}

// sign returns the compact JWS of claims: the header, the claims and
// golang-jwt's signature over both.
func (s *signer) sign(claims []byte) (string, error) {
	enc := base64.RawURLEncoding
	buf := make([]byte, 0, len(s.header)+1+enc.EncodedLen(len(claims))+1+enc.EncodedLen(512))
	buf = append(buf, s.header...)
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, claims)
	sig, err := s.method.Sign(string(buf), s.key)
	if err != nil {
		return "", err
	}
	buf = append(buf, '.')
	return string(enc.AppendEncode(buf, sig)), nil
}

func openSigner(m *MasterKey, k keys.SigningKey) (*signer, error) {
	der, err := m.Open(k.Sealed, sealAAD(k.Org, k.KID))
	if err != nil {
		return nil, err
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("issuer: parse signing key %s: %w", k.KID, err)
	}
	s := &signer{kid: k.KID, alg: k.Alg}
	switch p := parsed.(type) {
	case *ecdsa.PrivateKey:
		s.method, s.key = jwt.SigningMethodES256, p
	case ed25519.PrivateKey:
		s.method, s.key = jwt.SigningMethodEdDSA, p
	case *rsa.PrivateKey:
		s.method, s.key = jwt.SigningMethodRS256, p
	default:
		return nil, fmt.Errorf("issuer: signing key %s has unsupported type %T", k.KID, parsed)
	}
	if s.method.Alg() != k.Alg {
		return nil, fmt.Errorf("issuer: signing key %s is %s, record says %s", k.KID, s.method.Alg(), k.Alg)
	}
	h, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{k.Alg, k.KID, TokenType})
	if err != nil {
		return nil, err
	}
	s.header = base64.RawURLEncoding.AppendEncode(nil, h)
	return s, nil
}

// PublicKey is a published verification key of an org.
type PublicKey struct {
	KID string
	Alg string
	Key crypto.PublicKey
}

// Published is the set of an org's public keys that belong in its JWKS.
// A Keyring hands out the same *Published until the set changes, so
// callers may cache what they derive from it keyed by the pointer.
type Published struct {
	Keys []PublicKey
}

// orgKeys is the parsed, immutable signing state of one org.
type orgKeys struct {
	active    *signer
	published *Published
	// expires is when the published set next changes on its own (a
	// retiring key's RemoveAfter), or zero.
	expires time.Time
}

// Keyring caches each org's parsed signing keys, so minting never decrypts
// or parses a key. Invalidate it when an org's keys change.
type Keyring struct {
	store    storage.Store
	master   *MasterKey
	now      func() time.Time
	observer Observer

	mu   sync.RWMutex
	orgs map[string]*orgKeys
}

// NewKeyring returns a Keyring over store. now nil means time.Now; obs
// nil ignores signing times.
func NewKeyring(store storage.Store, master *MasterKey, now func() time.Time, obs Observer) *Keyring {
	if now == nil {
		now = time.Now
	}
	if obs == nil {
		obs = nopObserver{}
	}
	return &Keyring{store: store, master: master, now: now, observer: obs, orgs: make(map[string]*orgKeys)}
}

func (r *Keyring) get(ctx context.Context, org string) (*orgKeys, error) {
	r.mu.RLock()
	ok, found := r.orgs[org]
	r.mu.RUnlock()
	if found && (ok.expires.IsZero() || r.now().Before(ok.expires)) {
		return ok, nil
	}
	recs, err := r.store.ListSigningKeys(ctx, org)
	if err != nil {
		return nil, err
	}
	ok, err = r.build(recs)
	if err != nil || len(recs) == 0 {
		return ok, err // unknown orgs are not cached
	}
	r.mu.Lock()
	r.orgs[org] = ok
	r.mu.Unlock()
	return ok, nil
}

func (r *Keyring) build(recs []keys.SigningKey) (*orgKeys, error) {
	now := r.now()
	ok := &orgKeys{published: &Published{}}
	for _, rec := range recs {
		if !rec.Published(now) {
			continue
		}
		pub, err := x509.ParsePKIXPublicKey(rec.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("issuer: parse public key %s: %w", rec.KID, err)
		}
		ok.published.Keys = append(ok.published.Keys, PublicKey{KID: rec.KID, Alg: rec.Alg, Key: pub})
		if rec.RemoveAfter != nil && (ok.expires.IsZero() || rec.RemoveAfter.Before(ok.expires)) {
			ok.expires = *rec.RemoveAfter
		}
		if rec.Status == keys.SigningActive {
			s, err := openSigner(r.master, rec)
			if err != nil {
				return nil, err
			}
			ok.active = s
		}
	}
	return ok, nil
}

// Invalidate drops the cached keys of org; the next use reloads them.
func (r *Keyring) Invalidate(org string) {
	r.mu.Lock()
	delete(r.orgs, org)
	r.mu.Unlock()
}

// Published returns the org's public keys that belong in its JWKS now. An
// org without signing keys (or an unknown org) yields an empty set.
func (r *Keyring) Published(ctx context.Context, org string) (*Published, error) {
	ok, err := r.get(ctx, org)
	if err != nil {
		return nil, err
	}
	return ok.published, nil
}

// activeSigner returns the org's active signer.
func (r *Keyring) activeSigner(ctx context.Context, org string) (*signer, error) {
	ok, err := r.get(ctx, org)
	if err != nil {
		return nil, err
	}
	if ok.active == nil {
		return nil, ErrNoActiveKey
	}
	return ok.active, nil
}
