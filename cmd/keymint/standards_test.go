package main

// Standards tests: signing-key rotation without downtime, JWKS serving,
// RFC 8414 discovery, the RFC 6749 client_credentials token endpoint (by
// hand and with golang.org/x/oauth2/clientcredentials) and RFC 7662
// introspection, all through the real HTTP server. Tests that travel in
// time run the server on a stdClock; none of them sleeps.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/keymint/keymint/jwks"
	"github.com/keymint/keymint/keys"
)

// stdAlgs are the signing algorithms an org may choose.
var stdAlgs = []string{"ES256", "EdDSA", "RS256"}

// stdClock is a clock the test moves by hand; it starts at the current
// second.
type stdClock struct {
	mu sync.Mutex
	t  time.Time
}

func newStdClock() *stdClock { return &stdClock{t: time.Now().UTC().Truncate(time.Second)} }

func (c *stdClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *stdClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *stdClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// stdRunMain is MustRunMain with the server running on clk.
func stdRunMain(tb testing.TB, clk *stdClock) *Main {
	tb.Helper()
	m := NewMain()
	m.Stderr = io.Discard
	m.Config.Addr = "127.0.0.1:0"
	m.Config.DataDir = tb.TempDir()
	m.Now = clk.Now
	if err := m.Run(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}

// stdDo sends req and returns the status, headers and body.
func stdDo(tb testing.TB, req *http.Request) (int, http.Header, []byte) {
	tb.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, resp.Header, data
}

// stdGet sends a GET with the given headers.
func stdGet(tb testing.TB, u string, header map[string]string) (int, http.Header, []byte) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return stdDo(tb, req)
}

// stdPostForm posts form (raw, so a test can repeat a parameter) to u;
// auth, if not nil, adds the caller's credential.
func stdPostForm(tb testing.TB, u, form string, auth func(*http.Request)) (int, http.Header, []byte) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if auth != nil {
		auth(req)
	}
	return stdDo(tb, req)
}

// stdBasic authenticates with HTTP Basic, each part form-encoded as RFC
// 6749 §2.3.1 asks.
func stdBasic(id, secret string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret)) }
}

func stdBearer(cred string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+cred) }
}

func stdXAPIKey(secret string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("X-API-Key", secret) }
}

// stdCountingTransport counts the requests a jwks.Verifier sends.
type stdCountingTransport struct{ n atomic.Int64 }

func (c *stdCountingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// stdVerifier is a jwks.Verifier for iss on clk (nil: time.Now) that
// fetches through rt (nil: the default transport).
func stdVerifier(tb testing.TB, iss string, clk *stdClock, rt http.RoundTripper) *jwks.Verifier {
	tb.Helper()
	opts := []jwks.Option{jwks.WithIssuer(iss)}
	if clk != nil {
		opts = append(opts, jwks.WithClock(clk.Now))
	}
	if rt != nil {
		opts = append(opts, jwks.WithHTTPClient(&http.Client{Transport: rt, Timeout: 10 * time.Second}))
	}
	v, err := jwks.NewVerifier(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func stdVerify(tb testing.TB, v *jwks.Verifier, token string) *jwks.Claims {
	tb.Helper()
	c, err := v.Verify(context.Background(), token)
	if err != nil {
		tb.Fatalf("verify: %v", err)
	}
	return c
}

// stdSigningKey is a signing key as GET /api/v1/signing-keys shows it.
type stdSigningKey struct {
	KID         string     `json:"kid"`
	Alg         string     `json:"alg"`
	Status      string     `json:"status"`
	CreatedAt   time.Time  `json:"created_at"`
	ActivatedAt *time.Time `json:"activated_at"`
	RetiredAt   *time.Time `json:"retired_at"`
	RemoveAfter *time.Time `json:"remove_after"`
}

// stdPrivateMembers are JWK and record members that would carry private
// key material.
var stdPrivateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k", "private_key", "sealed", "Sealed"}

// stdSigningKeys lists the org's signing keys by status, and fails if the
// listing carries any private material.
func stdSigningKeys(tb testing.TB, m *Main, cred string) map[string][]stdSigningKey {
	tb.Helper()
	status, _, body := call(tb, "GET", m.URL()+"/api/v1/signing-keys", cred, nil)
	if status != http.StatusOK {
		tb.Fatalf("GET signing-keys status=%d body=%s", status, body)
	}
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		tb.Fatalf("signing-keys: %v: %s", err, body)
	}
	for _, k := range raw {
		for _, name := range stdPrivateMembers {
			if _, ok := k[name]; ok {
				tb.Fatalf("signing-keys shows private member %q: %s", name, body)
			}
		}
	}
	var ks []stdSigningKey
	if err := json.Unmarshal(body, &ks); err != nil {
		tb.Fatal(err)
	}
	out := make(map[string][]stdSigningKey)
	for _, k := range ks {
		out[k.Status] = append(out[k.Status], k)
	}
	return out
}

// stdOnlyKID returns the kid of the one key with status, failing if
// there is not exactly one.
func stdOnlyKID(tb testing.TB, ks map[string][]stdSigningKey, status string) string {
	tb.Helper()
	if len(ks[status]) != 1 {
		tb.Fatalf("%d %s signing keys, want 1: %+v", len(ks[status]), status, ks)
	}
	return ks[status][0].KID
}

// stdJWKS fetches an org's JWKS, checks that it is public (on the raw
// bytes) and returns its body, ETag and kids.
func stdJWKS(tb testing.TB, m *Main, org, alg string) (body []byte, etag string, kids []string) {
	tb.Helper()
	status, h, body := stdGet(tb, m.URL()+"/orgs/"+org+"/.well-known/jwks.json", nil)
	if status != http.StatusOK {
		tb.Fatalf("JWKS status=%d body=%s", status, body)
	}
	return body, h.Get("ETag"), stdAssertPublicJWKS(tb, body, alg)
}

// stdAssertPublicJWKS checks each key of a JWK Set document: a kid, the
// org's alg, use "sig", the key type of the alg, and no private member.
// It returns the kids.
func stdAssertPublicJWKS(tb testing.TB, body []byte, alg string) []string {
	tb.Helper()
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		tb.Fatalf("JWKS is not a JSON object: %v: %s", err, body)
	}
	var set []map[string]json.RawMessage
	if err := json.Unmarshal(doc["keys"], &set); err != nil || len(set) == 0 {
		tb.Fatalf("JWKS has no keys array: %s", body)
	}
	kty := map[string]string{"ES256": "EC", "EdDSA": "OKP", "RS256": "RSA"}[alg]
	var kids []string
	for _, k := range set {
		str := func(name string) string {
			var s string
			if err := json.Unmarshal(k[name], &s); err != nil {
				tb.Fatalf("JWK member %q is not a string: %s", name, body)
			}
			return s
		}
		for _, name := range stdPrivateMembers {
			if _, ok := k[name]; ok {
				tb.Fatalf("JWKS key has private member %q: %s", name, body)
			}
		}
		kid := str("kid")
		if kid == "" {
			tb.Fatalf("JWK without kid: %s", body)
		}
		if got := str("alg"); got != alg {
			tb.Fatalf("JWK %s alg=%q, want %q", kid, got, alg)
		}
		if got := str("use"); got != "sig" {
			tb.Fatalf("JWK %s use=%q, want sig", kid, got)
		}
		if got := str("kty"); got != kty {
			tb.Fatalf("JWK %s kty=%q, want %q", kid, got, kty)
		}
		kids = append(kids, kid)
	}
	for _, m := range []string{`"d"`, `"p"`, `"q"`, `"dp"`, `"dq"`, `"qi"`, `"k"`} {
		if bytes.Contains(body, []byte(m+":")) {
			tb.Fatalf("JWKS bytes contain the private member %s: %s", m, body)
		}
	}
	return kids
}

func stdSameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestRotationWithoutDowntime rotates an org's signing keys and walks the
// clock through the retiring key's window: no valid token is refused at
// any point, a verifier's cached JWKS already knows the new key, and the
// old key leaves the JWKS exactly when its last token has expired.
func TestRotationWithoutDowntime(t *testing.T) {
	ctx := context.Background()
	for _, alg := range stdAlgs {
		t.Run(alg, func(t *testing.T) {
			clk := newStdClock()
			m := stdRunMain(t, clk)
			org := "rotate-" + strings.ToLower(alg)
			b := bootstrap(t, m, org, alg)
			bystander := bootstrap(t, m, "bystander-"+strings.ToLower(alg), alg)
			admin := b.AdminKey.Key
			reader := createKey(t, m, admin, map[string]any{"name": "reader", "role": "viewer"})
			developer := createKey(t, m, admin, map[string]any{"name": "dev", "role": "developer"})

			before := stdSigningKeys(t, m, admin)
			active0, next0 := stdOnlyKID(t, before, "active"), stdOnlyKID(t, before, "next")
			if active0 != b.SigningKey.KID || len(before["retiring"]) != 0 {
				t.Fatalf("after bootstrap: %+v, want active %s and a next key", before, b.SigningKey.KID)
			}
			if _, _, kids := stdJWKS(t, m, org, alg); !stdSameSet(kids, []string{active0, next0}) {
				t.Fatalf("JWKS kids=%v, want the active and the next key %v", kids, []string{active0, next0})
			}
			bystanderJWKS, bystanderETag, _ := stdJWKS(t, m, bystander.Org.ID, alg)

			// A verifier that fetched the JWKS before the rotation.
			fetches := &stdCountingTransport{}
			cached := stdVerifier(t, b.Issuer, clk, fetches)
			oldTok := exchange(t, m, "POST", reader.ID, reader.Key, nil)
			if c := stdVerify(t, cached, oldTok.Token); c.KeyID != active0 {
				t.Fatalf("token kid=%s, want the active key %s", c.KeyID, active0)
			}
			if got := fetches.n.Load(); got != 1 {
				t.Fatalf("JWKS fetches=%d, want 1", got)
			}

			t.Run("DeveloperForbidden", func(t *testing.T) {
				status, h, body := call(t, "POST", m.URL()+"/api/v1/signing-keys/rotate", developer.Key, nil)
				assertProblem(t, status, h, body, http.StatusForbidden, "")
				if !strings.Contains(h.Get("WWW-Authenticate"), "insufficient_scope") {
					t.Fatalf("WWW-Authenticate=%q, want insufficient_scope", h.Get("WWW-Authenticate"))
				}
				ks := stdSigningKeys(t, m, admin)
				if stdOnlyKID(t, ks, "active") != active0 || len(ks["retiring"]) != 0 {
					t.Fatalf("a refused rotation changed the keys: %+v", ks)
				}
			})

			rotatedAt := clk.Now()
			status, _, body := call(t, "POST", m.URL()+"/api/v1/signing-keys/rotate", admin, nil)
			if status != http.StatusOK {
				t.Fatalf("rotate status=%d body=%s", status, body)
			}
			if bytes.Contains(body, []byte(`"private_key"`)) || bytes.Contains(body, []byte(`"d"`)) {
				t.Fatalf("rotate response carries private material: %s", body)
			}
			var rot struct {
				Active, Next, Retiring *stdSigningKey
			}
			if err := json.Unmarshal(body, &rot); err != nil {
				t.Fatal(err)
			}
			if rot.Active == nil || rot.Active.KID != next0 {
				t.Fatalf("rotate: active=%+v, want the pre-published next key %s", rot.Active, next0)
			}
			if rot.Retiring == nil || rot.Retiring.KID != active0 {
				t.Fatalf("rotate: retiring=%+v, want the old active key %s", rot.Retiring, active0)
			}
			if rot.Next == nil || rot.Next.KID == active0 || rot.Next.KID == next0 || rot.Next.Alg != alg {
				t.Fatalf("rotate: next=%+v, want a fresh %s key", rot.Next, alg)
			}
			removeAfter := rotatedAt.Add(15*time.Minute + 30*time.Second)
			if rot.Retiring.RemoveAfter == nil || !rot.Retiring.RemoveAfter.Equal(removeAfter) {
				t.Fatalf("remove_after=%v, want token_ttl + 30s after the rotation (%v)", rot.Retiring.RemoveAfter, removeAfter)
			}

			t.Run("SigningKeysList", func(t *testing.T) {
				ks := stdSigningKeys(t, m, admin)
				if got := stdOnlyKID(t, ks, "active"); got != next0 {
					t.Fatalf("active=%s, want %s", got, next0)
				}
				if got := stdOnlyKID(t, ks, "next"); got != rot.Next.KID {
					t.Fatalf("next=%s, want %s", got, rot.Next.KID)
				}
				if got := stdOnlyKID(t, ks, "retiring"); got != active0 {
					t.Fatalf("retiring=%s, want %s", got, active0)
				}
				if r := ks["retiring"][0]; r.RemoveAfter == nil || !r.RemoveAfter.Equal(removeAfter) || r.RetiredAt == nil {
					t.Fatalf("retiring key %+v, want retired_at and remove_after %v", r, removeAfter)
				}
			})

			t.Run("OtherOrgUnchanged", func(t *testing.T) {
				body, etag, _ := stdJWKS(t, m, bystander.Org.ID, alg)
				if !bytes.Equal(body, bystanderJWKS) || etag != bystanderETag {
					t.Fatalf("another org's JWKS changed:\n%s\n%s", bystanderJWKS, body)
				}
			})

			t.Run("Audit", func(t *testing.T) {
				status, _, body := call(t, "GET", m.URL()+"/api/v1/audit?action="+keys.AuditSigningKeyRotate, admin, nil)
				if status != http.StatusOK {
					t.Fatalf("audit status=%d body=%s", status, body)
				}
				var evs []keys.AuditEvent
				if err := json.Unmarshal(body, &evs); err != nil {
					t.Fatal(err)
				}
				if len(evs) != 1 {
					t.Fatalf("%d rotate events, want 1: %s", len(evs), body)
				}
				ev := evs[0]
				if ev.Actor != b.AdminKey.ID || ev.Details["active_kid"] != next0 || ev.Details["retiring_kid"] != active0 {
					t.Fatalf("audit event %+v", ev)
				}
			})

			// Past the verifier's minimum refresh interval (so it could
			// fetch again) but within the JWKS max-age: the new active key
			// was pre-published, so the cached set already holds it.
			clk.Advance(time.Minute)
			newTok := exchange(t, m, "POST", reader.ID, reader.Key, nil)
			t.Run("CachedVerifierKnowsNewKey", func(t *testing.T) {
				if c := stdVerify(t, cached, newTok.Token); c.KeyID != next0 {
					t.Fatalf("new token kid=%s, want %s", c.KeyID, next0)
				}
				if got := fetches.n.Load(); got != 1 {
					t.Fatalf("JWKS fetches=%d after the rotation, want still 1", got)
				}
			})

			t.Run("OldTokenStillValid", func(t *testing.T) {
				stdVerify(t, cached, oldTok.Token)
				stdVerify(t, stdVerifier(t, b.Issuer, clk, nil), oldTok.Token)
				// keymint's own endpoints accept it too.
				status, _, body := call(t, "GET", m.URL()+"/api/v1/signing-keys", oldTok.Token, nil)
				if status != http.StatusOK {
					t.Fatalf("keymint refused a token of the retiring key: status=%d body=%s", status, body)
				}
			})

			t.Run("RetiringWindow", func(t *testing.T) {
				// The last second of the window: the old token is still
				// valid (exp + leeway), so its key is still published.
				clk.Set(removeAfter.Add(-time.Second))
				if _, _, kids := stdJWKS(t, m, org, alg); !stdSameSet(kids, []string{active0, next0, rot.Next.KID}) {
					t.Fatalf("JWKS kids=%v before remove_after, want %v", kids, []string{active0, next0, rot.Next.KID})
				}
				stdVerify(t, stdVerifier(t, b.Issuer, clk, nil), oldTok.Token)

				// At remove_after the retired key is gone.
				clk.Set(removeAfter)
				if _, _, kids := stdJWKS(t, m, org, alg); !stdSameSet(kids, []string{next0, rot.Next.KID}) {
					t.Fatalf("JWKS kids=%v at remove_after, want %v", kids, []string{next0, rot.Next.KID})
				}
				ks := stdSigningKeys(t, m, admin)
				if len(ks["retiring"]) != 0 || stdOnlyKID(t, ks, "active") != next0 {
					t.Fatalf("signing keys at remove_after: %+v", ks)
				}
				_, err := stdVerifier(t, b.Issuer, clk, nil).Verify(ctx, oldTok.Token)
				if !errors.Is(err, jwks.ErrUnknownKey) {
					t.Fatalf("token of the removed key: err=%v, want ErrUnknownKey", err)
				}
				stdVerify(t, stdVerifier(t, b.Issuer, clk, nil), newTok.Token)
			})
		})
	}
}

// TestSigningKeysRotateCLI rotates with `keymint signing-keys rotate`,
// authorized by the signing_keys:admin scope rather than a role.
func TestSigningKeysRotateCLI(t *testing.T) {
	ctx := context.Background()
	m := MustRunMain(t, "")
	b := bootstrap(t, m, "cli-rotate", "ES256")
	rotator := createKey(t, m, b.AdminKey.Key, map[string]any{"name": "rotator", "role": "viewer", "scopes": []string{"signing_keys:admin"}})
	developer := createKey(t, m, b.AdminKey.Key, map[string]any{"name": "dev", "role": "developer"})
	before := stdSigningKeys(t, m, b.AdminKey.Key)
	active0, next0 := stdOnlyKID(t, before, "active"), stdOnlyKID(t, before, "next")
	t.Setenv("KEYMINT_TOKEN", "")

	t.Run("Forbidden", func(t *testing.T) {
		t.Setenv("KEYMINT_API_KEY", developer.Key)
		var stdout, stderr bytes.Buffer
		err := run(ctx, []string{"signing-keys", "rotate", "--server", m.URL()}, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), "403") {
			t.Fatalf("rotate with a developer key: err=%v, want a 403", err)
		}
		if strings.Contains(err.Error(), developer.Key) {
			t.Fatal("the error shows the secret")
		}
	})

	t.Run("OK", func(t *testing.T) {
		t.Setenv("KEYMINT_API_KEY", rotator.Key)
		var stdout, stderr bytes.Buffer
		if err := run(ctx, []string{"signing-keys", "rotate", "--server", m.URL()}, &stdout, &stderr); err != nil {
			t.Fatalf("rotate: %v (stderr %s)", err, stderr.String())
		}
		var rot struct {
			Active, Next, Retiring *stdSigningKey
		}
		if err := json.Unmarshal(stdout.Bytes(), &rot); err != nil {
			t.Fatalf("rotate output is not JSON: %v: %s", err, stdout.String())
		}
		if rot.Active == nil || rot.Active.KID != next0 || rot.Retiring == nil || rot.Retiring.KID != active0 || rot.Next == nil {
			t.Fatalf("rotate output: %s", stdout.String())
		}
		ks := stdSigningKeys(t, m, b.AdminKey.Key)
		if stdOnlyKID(t, ks, "active") != next0 || stdOnlyKID(t, ks, "retiring") != active0 || stdOnlyKID(t, ks, "next") != rot.Next.KID {
			t.Fatalf("after the CLI rotation: %+v", ks)
		}

		stdout.Reset()
		if err := run(ctx, []string{"signing-keys", "list", "--server", m.URL()}, &stdout, &stderr); err != nil {
			t.Fatalf("list: %v", err)
		}
		for _, want := range []string{active0, next0, rot.Next.KID, "retiring", "active", "next"} {
			if !strings.Contains(stdout.String(), want) {
				t.Fatalf("signing-keys list lacks %q:\n%s", want, stdout.String())
			}
		}
	})
}

// TestJWKSServing checks the JWKS document and its HTTP caching.
func TestJWKSServing(t *testing.T) {
	m := MustRunMain(t, "")
	maxAge := regexp.MustCompile(`^public, max-age=([0-9]+)$`)
	for _, alg := range stdAlgs {
		t.Run(alg, func(t *testing.T) {
			org := "jwks-" + strings.ToLower(alg)
			b := bootstrap(t, m, org, alg)
			u := b.JWKSURI

			status, h, body := stdGet(t, u, nil)
			if status != http.StatusOK {
				t.Fatalf("status=%d body=%s", status, body)
			}
			if got := h.Get("Content-Type"); got != "application/jwk-set+json" {
				t.Fatalf("Content-Type=%q, want application/jwk-set+json", got)
			}
			if mm := maxAge.FindStringSubmatch(h.Get("Cache-Control")); mm == nil || mm[1] == "0" {
				t.Fatalf("Cache-Control=%q, want public, max-age=N", h.Get("Cache-Control"))
			}
			etag := h.Get("ETag")
			if len(etag) < 3 || !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`) {
				t.Fatalf("ETag=%q, want a quoted entity tag", etag)
			}
			kids := stdAssertPublicJWKS(t, body, alg)
			if len(kids) != 2 || !slices.Contains(kids, b.SigningKey.KID) {
				t.Fatalf("kids=%v, want the active key %s and the next key", kids, b.SigningKey.KID)
			}

			t.Run("NotModified", func(t *testing.T) {
				for _, inm := range []string{etag, "W/" + etag, `"stale", ` + etag} {
					status, h, body := stdGet(t, u, map[string]string{"If-None-Match": inm})
					if status != http.StatusNotModified || len(body) != 0 {
						t.Fatalf("If-None-Match %s: status=%d body=%q, want 304 and no body", inm, status, body)
					}
					if h.Get("ETag") != etag {
						t.Fatalf("304 ETag=%q, want %q", h.Get("ETag"), etag)
					}
				}
			})
			t.Run("StaleETag", func(t *testing.T) {
				status, _, got := stdGet(t, u, map[string]string{"If-None-Match": `"not-the-current-one"`})
				if status != http.StatusOK || !bytes.Equal(got, body) {
					t.Fatalf("stale ETag: status=%d body=%s", status, got)
				}
			})
			t.Run("ETagChangesOnRotation", func(t *testing.T) {
				status, _, rb := call(t, "POST", m.URL()+"/api/v1/signing-keys/rotate", b.AdminKey.Key, nil)
				if status != http.StatusOK {
					t.Fatalf("rotate status=%d body=%s", status, rb)
				}
				status, h, after := stdGet(t, u, map[string]string{"If-None-Match": etag})
				if status != http.StatusOK {
					t.Fatalf("old ETag after rotation: status=%d, want 200 with the new set", status)
				}
				if h.Get("ETag") == "" || h.Get("ETag") == etag {
					t.Fatalf("ETag=%q after rotation, want a new one (was %q)", h.Get("ETag"), etag)
				}
				if kids := stdAssertPublicJWKS(t, after, alg); len(kids) != 3 {
					t.Fatalf("kids after rotation=%v, want active, next and retiring", kids)
				}
			})
		})
	}
	t.Run("UnknownOrg", func(t *testing.T) {
		for _, org := range []string{"no-such-org", "Not_An_Org"} {
			status, h, body := stdGet(t, m.URL()+"/orgs/"+org+"/.well-known/jwks.json", nil)
			assertProblem(t, status, h, body, http.StatusNotFound, "")
		}
	})
}

// stdMetadata is the RFC 8414 / OpenID discovery document.
type stdMetadata struct {
	Issuer                            string   `json:"issuer"`
	JWKSURI                           string   `json:"jwks_uri"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	IntrospectionEndpoint             string   `json:"introspection_endpoint"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	AccessTokenSigningAlgValues       []string `json:"access_token_signing_alg_values_supported"`
	IDTokenSigningAlgValues           []string `json:"id_token_signing_alg_values_supported"`
}

func stdDiscover(tb testing.TB, iss, doc string) (stdMetadata, []byte) {
	tb.Helper()
	status, h, body := stdGet(tb, iss+"/.well-known/"+doc, nil)
	if status != http.StatusOK {
		tb.Fatalf("%s status=%d body=%s", doc, status, body)
	}
	if mt, _, _ := mime.ParseMediaType(h.Get("Content-Type")); mt != "application/json" {
		tb.Fatalf("%s Content-Type=%q, want application/json", doc, h.Get("Content-Type"))
	}
	var md stdMetadata
	if err := json.Unmarshal(body, &md); err != nil {
		tb.Fatal(err)
	}
	return md, body
}

// TestDiscovery checks both discovery documents against what the org's
// tokens and endpoints really are.
func TestDiscovery(t *testing.T) {
	m := MustRunMain(t, "")
	for _, alg := range stdAlgs {
		t.Run(alg, func(t *testing.T) {
			org := "disco-" + strings.ToLower(alg)
			b := bootstrap(t, m, org, alg)
			k := createKey(t, m, b.AdminKey.Key, map[string]any{"name": "svc", "role": "viewer"})
			tok := exchange(t, m, "POST", k.ID, k.Key, nil)
			claims := stdVerify(t, stdVerifier(t, b.Issuer, nil, nil), tok.Token)

			var docs [][]byte
			for _, doc := range []string{"oauth-authorization-server", "openid-configuration"} {
				t.Run(doc, func(t *testing.T) {
					md, body := stdDiscover(t, b.Issuer, doc)
					docs = append(docs, body)
					if md.Issuer != claims.Issuer {
						t.Fatalf("issuer=%q, want the tokens' iss %q exactly", md.Issuer, claims.Issuer)
					}
					if md.JWKSURI != b.JWKSURI {
						t.Fatalf("jwks_uri=%q, want %q", md.JWKSURI, b.JWKSURI)
					}
					if got, want := md.TokenEndpoint, m.URL()+"/oauth2/token"; got != want {
						t.Fatalf("token_endpoint=%q, want %q", got, want)
					}
					if got, want := md.IntrospectionEndpoint, m.URL()+"/oauth2/introspect"; got != want {
						t.Fatalf("introspection_endpoint=%q, want %q", got, want)
					}
					if !slices.Equal(md.GrantTypesSupported, []string{"client_credentials"}) {
						t.Fatalf("grant_types_supported=%v, want [client_credentials]", md.GrantTypesSupported)
					}
					if !stdSameSet(md.TokenEndpointAuthMethodsSupported, []string{"client_secret_basic", "client_secret_post"}) {
						t.Fatalf("token_endpoint_auth_methods_supported=%v", md.TokenEndpointAuthMethodsSupported)
					}
					if !slices.Equal(md.AccessTokenSigningAlgValues, []string{alg}) {
						t.Fatalf("access_token_signing_alg_values_supported=%v, want [%s]", md.AccessTokenSigningAlgValues, alg)
					}

					// What it names works: the JWKS holds the token's key,
					// the token endpoint issues tokens.
					status, _, jwksBody := stdGet(t, md.JWKSURI, nil)
					if status != http.StatusOK || !slices.Contains(stdAssertPublicJWKS(t, jwksBody, alg), claims.KeyID) {
						t.Fatalf("jwks_uri: status=%d, body without kid %s: %s", status, claims.KeyID, jwksBody)
					}
					status, _, tokBody := stdPostForm(t, md.TokenEndpoint, "grant_type=client_credentials", stdBasic(k.ID, k.Key))
					if status != http.StatusOK {
						t.Fatalf("token_endpoint: status=%d body=%s", status, tokBody)
					}
				})
			}
			if len(docs) == 2 && !bytes.Equal(docs[0], docs[1]) {
				t.Fatalf("the two discovery documents differ:\n%s\n%s", docs[0], docs[1])
			}
		})
	}
	t.Run("UnknownOrg", func(t *testing.T) {
		for _, doc := range []string{"oauth-authorization-server", "openid-configuration"} {
			status, h, body := stdGet(t, m.URL()+"/orgs/no-such-org/.well-known/"+doc, nil)
			assertProblem(t, status, h, body, http.StatusNotFound, "")
		}
	})
}

// stdTokenResponse is an RFC 6749 §5.1 response.
type stdTokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
}

func stdAssertTokenResponse(tb testing.TB, status int, h http.Header, body []byte) stdTokenResponse {
	tb.Helper()
	if status != http.StatusOK {
		tb.Fatalf("status=%d body=%s", status, body)
	}
	if h.Get("Cache-Control") != "no-store" || h.Get("Pragma") != "no-cache" {
		tb.Fatalf("Cache-Control=%q Pragma=%q, want no-store and no-cache", h.Get("Cache-Control"), h.Get("Pragma"))
	}
	if mt, _, _ := mime.ParseMediaType(h.Get("Content-Type")); mt != "application/json" {
		tb.Fatalf("Content-Type=%q", h.Get("Content-Type"))
	}
	var tr stdTokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		tb.Fatal(err)
	}
	if tr.AccessToken == "" || !strings.EqualFold(tr.TokenType, "Bearer") || tr.ExpiresIn != 900 {
		tb.Fatalf("token response %s", body)
	}
	return tr
}

// stdAssertOAuthError checks an RFC 6749 §5.2 error response.
func stdAssertOAuthError(tb testing.TB, status int, h http.Header, body []byte, wantStatus int, wantCode string) {
	tb.Helper()
	if status != wantStatus {
		tb.Fatalf("status=%d, want %d; body=%s", status, wantStatus, body)
	}
	if mt, _, _ := mime.ParseMediaType(h.Get("Content-Type")); mt != "application/json" {
		tb.Fatalf("Content-Type=%q, want application/json", h.Get("Content-Type"))
	}
	if got := h.Get("Cache-Control"); got != "no-store" {
		tb.Fatalf("Cache-Control=%q, want no-store", got)
	}
	var e map[string]any
	if err := json.Unmarshal(body, &e); err != nil {
		tb.Fatalf("error body is not JSON: %s", body)
	}
	if got, _ := e["error"].(string); got != wantCode {
		tb.Fatalf("error=%q, want %q; body=%s", got, wantCode, body)
	}
	if d, ok := e["error_description"].(string); !ok || d == "" {
		tb.Fatalf("no error_description: %s", body)
	}
	for name := range e {
		if name != "error" && name != "error_description" && name != "error_uri" {
			tb.Fatalf("unexpected member %q in the error body: %s", name, body)
		}
	}
	if status == http.StatusUnauthorized && h.Get("WWW-Authenticate") == "" {
		tb.Fatal("401 without WWW-Authenticate")
	}
}

// TestOAuth2Token exercises POST /oauth2/token (RFC 6749 §4.4) by hand.
func TestOAuth2Token(t *testing.T) {
	m := MustRunMain(t, "")
	b := bootstrap(t, m, "oauth", "ES256")
	admin := b.AdminKey.Key
	k := createKey(t, m, admin, map[string]any{"name": "svc", "role": "viewer", "scopes": []string{"deploys:write"}})
	k2 := createKey(t, m, admin, map[string]any{"name": "svc2", "role": "viewer"})
	tokenURL := m.URL() + "/oauth2/token"
	v := stdVerifier(t, b.Issuer, nil, nil)
	const grant = "grant_type=client_credentials"

	checkToken := func(t *testing.T, tr stdTokenResponse, wantScope string) {
		t.Helper()
		c := stdVerify(t, v, tr.AccessToken)
		if c.Subject != k.ID || c.ClientID != k.ID || c.Org != "oauth" {
			t.Fatalf("claims %+v", c)
		}
		if c.Scope != wantScope || tr.Scope != wantScope {
			t.Fatalf("scope claim=%q response=%q, want %q", c.Scope, tr.Scope, wantScope)
		}
	}

	t.Run("ClientSecretBasic", func(t *testing.T) {
		status, h, body := stdPostForm(t, tokenURL, grant, stdBasic(k.ID, k.Key))
		checkToken(t, stdAssertTokenResponse(t, status, h, body), "*:read deploys:write")
	})
	t.Run("ClientSecretPost", func(t *testing.T) {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {k.ID}, "client_secret": {k.Key}}
		status, h, body := stdPostForm(t, tokenURL, form.Encode(), nil)
		checkToken(t, stdAssertTokenResponse(t, status, h, body), "*:read deploys:write")
	})
	t.Run("ScopeNarrows", func(t *testing.T) {
		for _, scope := range []string{"deploys:write", "devices:read deploys:write"} {
			status, h, body := stdPostForm(t, tokenURL, grant+"&scope="+url.QueryEscape(scope), stdBasic(k.ID, k.Key))
			checkToken(t, stdAssertTokenResponse(t, status, h, body), scope)
		}
	})

	wrong, err := keys.NewSecret(keys.TypeSecret, uuid.MustParse(k.ID), nil)
	if err != nil {
		t.Fatal(err)
	}
	unknown, err := keys.NewSecret(keys.TypeSecret, uuid.Must(uuid.NewV7()), nil)
	if err != nil {
		t.Fatal(err)
	}
	post := func(id, secret string) string {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}.Encode()
	}
	var invalidClient []byte // every invalid_client body is the same
	for _, tt := range []struct {
		name       string
		query      string
		form       string
		auth       func(*http.Request)
		status     int
		code       string
		wantBasics bool // WWW-Authenticate names Basic
	}{
		{name: "WrongSecretBasic", form: grant, auth: stdBasic(k.ID, wrong.String()), status: 401, code: "invalid_client", wantBasics: true},
		{name: "WrongSecretPost", form: post(k.ID, wrong.String()), status: 401, code: "invalid_client"},
		{name: "UnknownClientID", form: grant, auth: stdBasic(unknown.KeyID, unknown.String()), status: 401, code: "invalid_client"},
		{name: "ClientIDNotTheSecretsKey", form: post(k.ID, k2.Key), status: 401, code: "invalid_client"},
		{name: "ClientIDNotTheSecretsKeyBasic", form: grant, auth: stdBasic(k.ID, k2.Key), status: 401, code: "invalid_client"},
		{name: "MissingCredentials", form: grant, status: 401, code: "invalid_client"},
		{name: "PasswordGrant", form: "grant_type=password&username=u&password=p", auth: stdBasic(k.ID, k.Key), status: 400, code: "unsupported_grant_type"},
		{name: "AuthorizationCodeGrant", form: "grant_type=authorization_code&code=abc&redirect_uri=https%3A%2F%2Fexample.com%2Fcb", auth: stdBasic(k.ID, k.Key), status: 400, code: "unsupported_grant_type"},
		{name: "ScopeNotHeld", form: grant + "&scope=signing_keys%3Aadmin", auth: stdBasic(k.ID, k.Key), status: 400, code: "invalid_scope"},
		{name: "MalformedScope", form: grant + "&scope=NOT%21A%24SCOPE", auth: stdBasic(k.ID, k.Key), status: 400, code: "invalid_scope"},
		{name: "MissingGrantType", form: "scope=deploys%3Awrite", auth: stdBasic(k.ID, k.Key), status: 400, code: "invalid_request"},
		{name: "TwoAuthMethods", form: post(k.ID, k.Key), auth: stdBasic(k.ID, k.Key), status: 400, code: "invalid_request"},
		{name: "RepeatedParameter", form: grant + "&scope=deploys%3Awrite&scope=devices%3Aread", auth: stdBasic(k.ID, k.Key), status: 400, code: "invalid_request"},
		{name: "RepeatedGrantType", form: grant + "&" + grant, auth: stdBasic(k.ID, k.Key), status: 400, code: "invalid_request"},
		{name: "SecretInQuery", query: "client_secret=" + url.QueryEscape(k.Key), form: grant + "&client_id=" + k.ID, status: 400, code: "invalid_request"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := tokenURL
			if tt.query != "" {
				u += "?" + tt.query
			}
			status, h, body := stdPostForm(t, u, tt.form, tt.auth)
			stdAssertOAuthError(t, status, h, body, tt.status, tt.code)
			if tt.wantBasics && !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic") {
				t.Fatalf("WWW-Authenticate=%q, want the Basic scheme the client used", h.Get("WWW-Authenticate"))
			}
			if bytes.Contains(body, []byte(k.Key)) || bytes.Contains(body, []byte(k2.Key)) {
				t.Fatal("the error echoes a secret")
			}
			if tt.code == "invalid_client" && tt.auth != nil {
				if invalidClient == nil {
					invalidClient = body
				} else if !bytes.Equal(body, invalidClient) {
					t.Fatalf("invalid_client bodies differ, telling the caller why:\n%s\n%s", body, invalidClient)
				}
			}
		})
	}
	t.Run("JSONBody", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader(`{"grant_type":"client_credentials"}`))
		req.Header.Set("Content-Type", "application/json")
		stdBasic(k.ID, k.Key)(req)
		status, h, body := stdDo(t, req)
		stdAssertOAuthError(t, status, h, body, http.StatusBadRequest, "invalid_request")
	})
	t.Run("RevokedKey", func(t *testing.T) {
		r := createKey(t, m, admin, map[string]any{"name": "doomed", "role": "viewer"})
		status, h, body := stdPostForm(t, tokenURL, grant, stdBasic(r.ID, r.Key))
		stdAssertTokenResponse(t, status, h, body)
		if status, _, body := call(t, "POST", m.URL()+"/api/v1/apikeys/"+r.ID+"/revoke", admin, nil); status != http.StatusOK {
			t.Fatalf("revoke status=%d body=%s", status, body)
		}
		status, h, body = stdPostForm(t, tokenURL, grant, stdBasic(r.ID, r.Key))
		stdAssertOAuthError(t, status, h, body, http.StatusUnauthorized, "invalid_client")
		if invalidClient != nil && !bytes.Equal(body, invalidClient) {
			t.Fatalf("a revoked key's invalid_client body differs from a wrong secret's:\n%s\n%s", body, invalidClient)
		}
		status, h, body = stdPostForm(t, tokenURL, post(r.ID, r.Key), nil)
		stdAssertOAuthError(t, status, h, body, http.StatusUnauthorized, "invalid_client")
	})
}

// TestOAuth2ClientCredentialsLibrary obtains tokens with the unmodified
// golang.org/x/oauth2/clientcredentials, configured from discovery.
func TestOAuth2ClientCredentialsLibrary(t *testing.T) {
	ctx := context.Background()
	m := MustRunMain(t, "")
	b := bootstrap(t, m, "xoauth2", "ES256")
	k := createKey(t, m, b.AdminKey.Key, map[string]any{"name": "svc", "role": "viewer", "scopes": []string{"deploys:write"}})
	md, _ := stdDiscover(t, b.Issuer, "oauth-authorization-server")
	v := stdVerifier(t, b.Issuer, nil, nil)

	for _, tt := range []struct {
		name  string
		style oauth2.AuthStyle
	}{
		{"AuthStyleInHeader", oauth2.AuthStyleInHeader},
		{"AuthStyleInParams", oauth2.AuthStyleInParams},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := clientcredentials.Config{ClientID: k.ID, ClientSecret: k.Key, TokenURL: md.TokenEndpoint, AuthStyle: tt.style}
			before := time.Now()
			tok, err := cfg.Token(ctx)
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			if tok.Type() != "Bearer" || !tok.Valid() {
				t.Fatalf("token type=%q valid=%v", tok.Type(), tok.Valid())
			}
			if d := tok.Expiry.Sub(before); d < 14*time.Minute || d > 16*time.Minute {
				t.Fatalf("expiry in %v, want about 15m", d)
			}
			if got := tok.Extra("scope"); got != "*:read deploys:write" {
				t.Fatalf("scope=%v", got)
			}
			c := stdVerify(t, v, tok.AccessToken)
			if c.Subject != k.ID || c.Scope != "*:read deploys:write" {
				t.Fatalf("claims %+v", c)
			}
			// The library's client authorizes keymint's own API with it.
			resp, err := cfg.Client(ctx).Get(m.URL() + "/api/v1/apikeys/" + k.ID)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET with the library's client: status=%d", resp.StatusCode)
			}
		})
	}
	t.Run("Scopes", func(t *testing.T) {
		cfg := clientcredentials.Config{ClientID: k.ID, ClientSecret: k.Key, TokenURL: md.TokenEndpoint, Scopes: []string{"deploys:write"}}
		tok, err := cfg.Token(ctx)
		if err != nil {
			t.Fatalf("Token: %v", err)
		}
		if c := stdVerify(t, v, tok.AccessToken); c.Scope != "deploys:write" || c.Allows("devices:read") {
			t.Fatalf("scope=%q, want deploys:write only", c.Scope)
		}
	})
	t.Run("WrongSecret", func(t *testing.T) {
		wrong, _ := keys.NewSecret(keys.TypeSecret, uuid.MustParse(k.ID), nil)
		cfg := clientcredentials.Config{ClientID: k.ID, ClientSecret: wrong.String(), TokenURL: md.TokenEndpoint, AuthStyle: oauth2.AuthStyleInHeader}
		_, err := cfg.Token(ctx)
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "invalid_client" || re.Response.StatusCode != http.StatusUnauthorized {
			t.Fatalf("err=%v, want a 401 invalid_client RetrieveError", err)
		}
	})
}

// TestIntrospection exercises POST /oauth2/introspect (RFC 7662).
func TestIntrospection(t *testing.T) {
	clk := newStdClock()
	m := stdRunMain(t, clk)
	a := bootstrap(t, m, "intro-a", "ES256")
	bOrg := bootstrap(t, m, "intro-b", "EdDSA")
	admin := a.AdminKey.Key
	caller := createKey(t, m, admin, map[string]any{"name": "introspector", "role": "viewer"})
	subject := createKey(t, m, admin, map[string]any{"name": "svc", "role": "viewer", "scopes": []string{"deploys:write"}})
	u := m.URL() + "/oauth2/introspect"

	introspect := func(t *testing.T, token string, auth func(*http.Request)) map[string]any {
		t.Helper()
		status, h, body := stdPostForm(t, u, url.Values{"token": {token}}.Encode(), auth)
		if status != http.StatusOK {
			t.Fatalf("introspect status=%d body=%s", status, body)
		}
		if h.Get("Cache-Control") != "no-store" {
			t.Fatalf("Cache-Control=%q, want no-store", h.Get("Cache-Control"))
		}
		if mt, _, _ := mime.ParseMediaType(h.Get("Content-Type")); mt != "application/json" {
			t.Fatalf("Content-Type=%q", h.Get("Content-Type"))
		}
		var out map[string]any
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	wantInactive := func(t *testing.T, got map[string]any) {
		t.Helper()
		if len(got) != 1 || got["active"] != false {
			t.Fatalf("introspection=%v, want exactly {\"active\":false}", got)
		}
	}
	wantActive := func(t *testing.T, got map[string]any) {
		t.Helper()
		if got["active"] != true {
			t.Fatalf("introspection=%v, want active", got)
		}
	}
	asCaller := stdBearer(caller.Key)

	tok := exchange(t, m, "POST", subject.ID, subject.Key, nil)
	t.Run("Active", func(t *testing.T) {
		got := introspect(t, tok.Token, asCaller)
		num := func(name string) int64 {
			f, ok := got[name].(float64)
			if !ok {
				t.Fatalf("%s=%v, want a number", name, got[name])
			}
			return int64(f)
		}
		want := map[string]any{
			"active": true, "scope": "*:read deploys:write", "client_id": subject.ID, "sub": subject.ID,
			"iss": a.Issuer, "token_type": "Bearer",
		}
		for name, w := range want {
			if got[name] != w {
				t.Fatalf("%s=%v, want %v; all: %v", name, got[name], w, got)
			}
		}
		if exp := num("exp"); exp != tok.ExpiresAt.Unix() {
			t.Fatalf("exp=%d, want %d", exp, tok.ExpiresAt.Unix())
		}
		if iat := num("iat"); iat != tok.ExpiresAt.Add(-15*time.Minute).Unix() {
			t.Fatalf("iat=%d, want exp-15m", iat)
		}
		if aud := fmt.Sprint(got["aud"]); aud != fmt.Sprint([]any{a.Issuer}) && aud != a.Issuer {
			t.Fatalf("aud=%v, want %s", got["aud"], a.Issuer)
		}
	})
	t.Run("CallerAuth", func(t *testing.T) {
		jwt := exchange(t, m, "POST", caller.ID, caller.Key, nil)
		for name, auth := range map[string]func(*http.Request){
			"BearerSecret": stdBearer(caller.Key),
			"XAPIKey":      stdXAPIKey(caller.Key),
			"HTTPBasic":    stdBasic(caller.ID, caller.Key),
			"BearerJWT":    stdBearer(jwt.Token),
		} {
			t.Run(name, func(t *testing.T) { wantActive(t, introspect(t, tok.Token, auth)) })
		}
	})
	t.Run("NoCredential", func(t *testing.T) {
		status, h, body := stdPostForm(t, u, url.Values{"token": {tok.Token}}.Encode(), nil)
		assertProblem(t, status, h, body, http.StatusUnauthorized, "")
		if h.Get("WWW-Authenticate") == "" {
			t.Fatal("401 without WWW-Authenticate")
		}
		if bytes.Contains(body, []byte(`"active"`)) {
			t.Fatalf("an unauthenticated caller learned about the token: %s", body)
		}
	})
	t.Run("BadCredential", func(t *testing.T) {
		wrong, _ := keys.NewSecret(keys.TypeSecret, uuid.MustParse(caller.ID), nil)
		for name, auth := range map[string]func(*http.Request){
			"BearerSecret":        stdBearer(wrong.String()),
			"HTTPBasic":           stdBasic(caller.ID, wrong.String()),
			"BasicIDOfAnotherKey": stdBasic(subject.ID, caller.Key),
		} {
			t.Run(name, func(t *testing.T) {
				status, h, body := stdPostForm(t, u, url.Values{"token": {tok.Token}}.Encode(), auth)
				assertProblem(t, status, h, body, http.StatusUnauthorized, "")
			})
		}
	})
	t.Run("Garbage", func(t *testing.T) {
		for _, g := range []string{"garbage", "a.b.c", tok.Token + "x", caller.Key} {
			wantInactive(t, introspect(t, g, asCaller))
		}
	})
	t.Run("OtherOrg", func(t *testing.T) {
		ok := createKey(t, m, bOrg.AdminKey.Key, map[string]any{"name": "b-svc", "role": "viewer"})
		other := exchange(t, m, "POST", ok.ID, ok.Key, nil)
		wantInactive(t, introspect(t, other.Token, asCaller))
		wantActive(t, introspect(t, other.Token, stdBearer(bOrg.AdminKey.Key)))
	})
	t.Run("RevokedKey", func(t *testing.T) {
		k := createKey(t, m, admin, map[string]any{"name": "revoked", "role": "viewer"})
		kt := exchange(t, m, "POST", k.ID, k.Key, nil)
		wantActive(t, introspect(t, kt.Token, asCaller))
		if status, _, body := call(t, "POST", m.URL()+"/api/v1/apikeys/"+k.ID+"/revoke", admin, nil); status != http.StatusOK {
			t.Fatalf("revoke status=%d body=%s", status, body)
		}
		wantInactive(t, introspect(t, kt.Token, asCaller))
	})
	t.Run("DisabledKey", func(t *testing.T) {
		k := createKey(t, m, admin, map[string]any{"name": "disabled", "role": "viewer"})
		kt := exchange(t, m, "POST", k.ID, k.Key, nil)
		wantActive(t, introspect(t, kt.Token, asCaller))
		if status, _, body := call(t, "PATCH", m.URL()+"/api/v1/apikeys/"+k.ID, admin, map[string]any{"enabled": false}); status != http.StatusOK {
			t.Fatalf("disable status=%d body=%s", status, body)
		}
		wantInactive(t, introspect(t, kt.Token, asCaller))
		if status, _, body := call(t, "PATCH", m.URL()+"/api/v1/apikeys/"+k.ID, admin, map[string]any{"enabled": true}); status != http.StatusOK {
			t.Fatalf("enable status=%d body=%s", status, body)
		}
		wantActive(t, introspect(t, kt.Token, asCaller))
	})
	t.Run("DeletedKey", func(t *testing.T) {
		k := createKey(t, m, admin, map[string]any{"name": "deleted", "role": "viewer"})
		kt := exchange(t, m, "POST", k.ID, k.Key, nil)
		wantActive(t, introspect(t, kt.Token, asCaller))
		if status, _, body := call(t, "DELETE", m.URL()+"/api/v1/apikeys/"+k.ID, admin, nil); status != http.StatusOK {
			t.Fatalf("delete status=%d body=%s", status, body)
		}
		wantInactive(t, introspect(t, kt.Token, asCaller))
	})
	// Last: it moves the clock past the token's expiry and leeway.
	t.Run("Expired", func(t *testing.T) {
		wantActive(t, introspect(t, tok.Token, asCaller))
		clk.Set(tok.ExpiresAt.Add(jwks.DefaultLeeway - time.Second))
		wantActive(t, introspect(t, tok.Token, asCaller))
		clk.Set(tok.ExpiresAt.Add(jwks.DefaultLeeway))
		wantInactive(t, introspect(t, tok.Token, asCaller))
	})
}

// TestRotationAfterTokenTTLLowered: lowering token_ttl and then rotating
// must not retire the old key before the tokens it signed under the
// longer token_ttl have expired.
func TestRotationAfterTokenTTLLowered(t *testing.T) {
	clk := newStdClock()
	m := stdRunMain(t, clk)
	status, _, body := call(t, "POST", m.URL()+"/api/v1/orgs", m.RootKey(), map[string]any{
		"id": "ttl-drop", "name": "TTL drop", "policy": map[string]any{"token_ttl": "1h"},
	})
	if status != http.StatusCreated {
		t.Fatalf("bootstrap status=%d body=%s", status, body)
	}
	var b bootstrapOut
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatal(err)
	}
	admin := b.AdminKey.Key
	k := createKey(t, m, admin, map[string]any{"name": "svc", "role": "viewer"})
	long := exchange(t, m, "POST", k.ID, k.Key, nil)
	if long.ExpiresIn != 3600 {
		t.Fatalf("expires_in=%d, want 3600", long.ExpiresIn)
	}

	clk.Advance(time.Minute)
	if status, _, body := call(t, "PATCH", m.URL()+"/api/v1/orgs/ttl-drop", admin, map[string]any{"policy": map[string]any{"token_ttl": "15m"}}); status != http.StatusOK {
		t.Fatalf("PATCH token_ttl status=%d body=%s", status, body)
	}
	if status, _, body := call(t, "POST", m.URL()+"/api/v1/signing-keys/rotate", admin, nil); status != http.StatusOK {
		t.Fatalf("rotate status=%d body=%s", status, body)
	}
	short := exchange(t, m, "POST", k.ID, k.Key, nil)
	if short.ExpiresIn != 900 {
		t.Fatalf("expires_in=%d after the PATCH, want 900", short.ExpiresIn)
	}

	// Past the new token_ttl, well within the old token's life.
	for _, at := range []time.Time{clk.Now().Add(30 * time.Minute), long.ExpiresAt.Add(jwks.DefaultLeeway - time.Second)} {
		clk.Set(at)
		if _, _, kids := stdJWKS(t, m, "ttl-drop", "ES256"); !slices.Contains(kids, b.SigningKey.KID) {
			t.Fatalf("at %v the JWKS dropped the key of a token valid until %v", at, long.ExpiresAt)
		}
		stdVerify(t, stdVerifier(t, b.Issuer, clk, nil), long.Token)
	}
}
