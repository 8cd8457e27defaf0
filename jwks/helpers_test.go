package jwks_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keymint/keymint/jwks"
)

// testKey is a signing key with what a token needs to name it.
type testKey struct {
	kid    string
	alg    string
	priv   crypto.Signer
	method jwt.SigningMethod
}

func (k testKey) public() jwks.PublicKey {
	return jwks.PublicKey{KID: k.kid, Alg: k.alg, Key: k.priv.Public()}
}

var (
	keysOnce                    sync.Once
	esKey, edKey, rsKey, esKey2 testKey
	attackerES, attackerRS      testKey
)

func genKey(tb testing.TB, alg, kid string) testKey {
	tb.Helper()
	var (
		priv crypto.Signer
		err  error
		m    jwt.SigningMethod
	)
	switch alg {
	case jwks.AlgES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		m = jwt.SigningMethodES256
	case jwks.AlgEdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
		m = jwt.SigningMethodEdDSA
	case jwks.AlgRS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
		m = jwt.SigningMethodRS256
	}
	if err != nil {
		tb.Fatal(err)
	}
	return testKey{kid: kid, alg: alg, priv: priv, method: m}
}

// testKeys returns keys generated once per test binary.
func testKeys(tb testing.TB) (es, ed, rs testKey) {
	tb.Helper()
	keysOnce.Do(func() {
		esKey = genKey(tb, jwks.AlgES256, "es-1")
		edKey = genKey(tb, jwks.AlgEdDSA, "ed-1")
		rsKey = genKey(tb, jwks.AlgRS256, "rs-1")
		esKey2 = genKey(tb, jwks.AlgES256, "es-2")
		attackerES = genKey(tb, jwks.AlgES256, "evil-es")
		attackerRS = genKey(tb, jwks.AlgRS256, "evil-rs")
	})
	return esKey, edKey, rsKey
}

// jwksServer serves the JWKS of every org at
// /orgs/{org}/.well-known/jwks.json and counts what it is asked.
type jwksServer struct {
	*httptest.Server

	mu           sync.Mutex
	keys         []jwks.PublicKey
	paths        []string
	cacheControl string
	fail         bool

	hits atomic.Int64
}

func newJWKSServer(tb testing.TB, keys ...testKey) *jwksServer {
	tb.Helper()
	s := &jwksServer{}
	s.Publish(tb, keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	tb.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(w http.ResponseWriter, r *http.Request) {
	s.hits.Add(1)
	s.mu.Lock()
	s.paths = append(s.paths, r.URL.Path)
	keys, cc, fail := s.keys, s.cacheControl, s.fail
	s.mu.Unlock()
	if fail {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	if !strings.HasPrefix(r.URL.Path, "/orgs/") || !strings.HasSuffix(r.URL.Path, "/.well-known/jwks.json") {
		http.NotFound(w, r)
		return
	}
	b, err := jwks.Marshal(keys)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if cc != "" {
		w.Header().Set("Cache-Control", cc)
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	_, _ = w.Write(b)
}

// Publish replaces the served keys.
func (s *jwksServer) Publish(tb testing.TB, keys ...testKey) {
	tb.Helper()
	pub := make([]jwks.PublicKey, len(keys))
	for i, k := range keys {
		pub[i] = k.public()
	}
	if _, err := jwks.Marshal(pub); err != nil {
		tb.Fatal(err)
	}
	s.mu.Lock()
	s.keys = pub
	s.mu.Unlock()
}

func (s *jwksServer) SetFail(fail bool) {
	s.mu.Lock()
	s.fail = fail
	s.mu.Unlock()
}

func (s *jwksServer) SetCacheControl(cc string) {
	s.mu.Lock()
	s.cacheControl = cc
	s.mu.Unlock()
}

func (s *jwksServer) Paths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.paths...)
}

func (s *jwksServer) Issuer(org string) string { return s.URL + "/orgs/" + org }

// tokenMod changes the header or the claims of a token before signing.
type tokenMod func(header map[string]any, claims jwt.MapClaims)

func claim(name string, v any) tokenMod {
	return func(_ map[string]any, c jwt.MapClaims) {
		if v == nil {
			delete(c, name)
			return
		}
		c[name] = v
	}
}

func hdr(name string, v any) tokenMod {
	return func(h map[string]any, _ jwt.MapClaims) {
		if v == nil {
			delete(h, name)
			return
		}
		h[name] = v
	}
}

// baseClaims are the claims keymint puts in a token for key-1 of acme.
func baseClaims(iss string, now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss":       iss,
		"sub":       "key-1",
		"client_id": "key-1",
		"aud":       []string{iss},
		"exp":       now.Add(5 * time.Minute).Unix(),
		"iat":       now.Unix(),
		"nbf":       now.Unix(),
		"jti":       "0190a6f0-0000-7000-8000-000000000001",
		"org":       "acme",
		"role":      "developer",
		"scope":     "devices:read sites/*/devices:write",
	}
}

// mint signs a keymint-shaped token with k for iss.
func mint(tb testing.TB, k testKey, iss string, mods ...tokenMod) string {
	tb.Helper()
	t := jwt.NewWithClaims(k.method, baseClaims(iss, time.Now()))
	t.Header["kid"] = k.kid
	t.Header["typ"] = "at+jwt"
	for _, m := range mods {
		m(t.Header, t.Claims.(jwt.MapClaims))
	}
	s, err := t.SignedString(k.priv)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

var b64 = base64.RawURLEncoding

// signRaw signs exactly the given header and claims JSON with k.
func signRaw(tb testing.TB, k testKey, header, claims string) string {
	tb.Helper()
	input := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(claims))
	sig, err := k.method.Sign(input, k.priv)
	if err != nil {
		tb.Fatal(err)
	}
	return input + "." + b64.EncodeToString(sig)
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newVerifier returns a Verifier for srv's org acme, fetching with srv's
// client.
func newVerifier(tb testing.TB, srv *jwksServer, opts ...jwks.Option) *jwks.Verifier {
	tb.Helper()
	opts = append([]jwks.Option{jwks.WithIssuer(srv.Issuer("acme")), jwks.WithHTTPClient(srv.Client())}, opts...)
	v, err := jwks.NewVerifier(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}
