package handlers_test

import (
	"sync"
	"time"

	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/keymint/keymint/keys"
)

// TestManagementRefusesForgedTokens: keymint's own routes verify bearer
// JWTs with the same rules as the jwks Verifier. Each forgery is built
// from a real token of the org.
func TestManagementRefusesForgedTokens(t *testing.T) {
	srv, _ := newServer(t)
	h := srv.Handler()
	id, secret := bootstrapOrg(t, h, "victim", keys.AlgES256)
	rec := serve(h, "POST", "/api/v1/apikeys/"+id+"/token", secret, "")
	var tok struct{ Token string }
	if err := json.Unmarshal(rec.Body.Bytes(), &tok); err != nil || tok.Token == "" {
		t.Fatalf("exchange: %d %s", rec.Code, rec.Body)
	}
	path := "/api/v1/apikeys/" + id
	if rec := serve(h, "GET", path, tok.Token, ""); rec.Code != http.StatusOK {
		t.Fatalf("real token: %d %s", rec.Code, rec.Body)
	}
	parts := strings.Split(tok.Token, ".")
	b64 := base64.RawURLEncoding
	header := func(h map[string]any) string {
		b, _ := json.Marshal(h)
		return b64.EncodeToString(b)
	}
	var hdr map[string]any
	raw, _ := b64.DecodeString(parts[0])
	json.Unmarshal(raw, &hdr)
	with := func(k string, v any) map[string]any {
		out := map[string]any{}
		for kk, vv := range hdr {
			out[kk] = vv
		}
		out[k] = v
		return out
	}
	var claims map[string]any
	raw, _ = b64.DecodeString(parts[1])
	json.Unmarshal(raw, &claims)
	claims["scope"] = "*:*"
	escalated, _ := json.Marshal(claims)
	hs256 := func() string {
		h := header(with("alg", "HS256"))
		mac := hmac.New(sha256.New, []byte("public key bytes an attacker could fetch"))
		mac.Write([]byte(h + "." + parts[1]))
		return h + "." + parts[1] + "." + b64.EncodeToString(mac.Sum(nil))
	}
	for _, tt := range []struct{ name, token string }{
		{"TamperedPayload", parts[0] + "." + b64.EncodeToString(escalated) + "." + parts[2]},
		{"AlgNone", header(with("alg", "none")) + "." + parts[1] + "."},
		{"HS256", hs256()},
		{"EmbeddedJWK", header(with("jwk", map[string]any{"kty": "oct", "k": "AAAA"})) + "." + parts[1] + "." + parts[2]},
		{"JKU", header(with("jku", "http://127.0.0.1:1/jwks.json")) + "." + parts[1] + "." + parts[2]},
		{"TraversalKid", header(with("kid", "../../etc/passwd")) + "." + parts[1] + "." + parts[2]},
		{"Crit", header(with("crit", []string{"exp"})) + "." + parts[1] + "." + parts[2]},
		{"WrongTyp", header(with("typ", "JWT")) + "." + parts[1] + "." + parts[2]},
		{"Garbage", "not.a.token"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(h, "GET", path, tt.token, "")
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("status=%d, want 401; body=%s", rec.Code, rec.Body)
			}
			if got := rec.Header().Get("WWW-Authenticate"); !strings.Contains(got, `error="invalid_token"`) {
				t.Fatalf("WWW-Authenticate=%q", got)
			}
		})
	}
}

// TestOtherOrgsToken: a valid token of org A reaches nothing of org B.
func TestOtherOrgsToken(t *testing.T) {
	srv, _ := newServer(t)
	h := srv.Handler()
	idA, secretA := bootstrapOrg(t, h, "org-a", keys.AlgES256)
	idB, _ := bootstrapOrg(t, h, "org-b", keys.AlgEdDSA)
	rec := serve(h, "POST", "/api/v1/apikeys/"+idA+"/token", secretA, "")
	var tok struct{ Token string }
	json.Unmarshal(rec.Body.Bytes(), &tok)
	for _, path := range []string{"/api/v1/apikeys/" + idB, "/api/v1/orgs/org-b"} {
		if rec := serve(h, "GET", path, tok.Token, ""); rec.Code != http.StatusNotFound {
			t.Fatalf("GET %s with org A's token: %d, want 404", path, rec.Code)
		}
	}
	// Org A's token, exchanged against org B's key id, is not B's secret.
	if rec := serve(h, "POST", "/api/v1/apikeys/"+idB+"/token", secretA, ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("exchange of A's secret at B's key: %d, want 401", rec.Code)
	}
}

// TestProblemDetails: bad input gets RFC 9457 problems naming the field.
func TestProblemDetails(t *testing.T) {
	srv, _ := newServer(t)
	h := srv.Handler()
	_, secret := bootstrapOrg(t, h, "probs", keys.AlgES256)
	for _, tt := range []struct {
		name, body, field string
		status            int
	}{
		{"UnknownField", `{"name":"x","role":"viewer","expires_at":"2099-01-01T00:00:00Z","colour":"red"}`, "colour", 400},
		{"DuplicateKey", `{"name":"x","role":"viewer","role":"admin"}`, "role", 400},
		{"CaseVariant", `{"name":"x","role":"viewer","ROLE":"admin"}`, "ROLE", 400},
		{"BadDate", `{"name":"x","role":"viewer","expires_at":"tomorrow"}`, "expires_at", 400},
		{"WrongType", `{"name":7}`, "name", 400},
		{"Malformed", `{"name":`, "body", 400},
		{"TooLarge", `{"name":"` + strings.Repeat("x", 70<<10) + `"}`, "", 413},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(h, "POST", "/api/v1/apikeys", secret, tt.body)
			if rec.Code != tt.status {
				t.Fatalf("status=%d, want %d; body=%s", rec.Code, tt.status, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("Content-Type=%q", ct)
			}
			var p struct {
				Status int
				Errors []struct{ Field string }
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Status != tt.status {
				t.Fatalf("problem body %s", rec.Body)
			}
			if tt.field != "" && (len(p.Errors) == 0 || p.Errors[0].Field != tt.field) {
				t.Fatalf("errors=%+v, want field %q", p.Errors, tt.field)
			}
		})
	}
}

// TestMetadataURLs: the RFC 8414 path-insertion URL serves the same
// metadata as the one under the issuer.
func TestMetadataURLs(t *testing.T) {
	srv, _ := newServer(t)
	h := srv.Handler()
	bootstrapOrg(t, h, "meta", keys.AlgEdDSA)
	a := serve(h, "GET", "/orgs/meta/.well-known/oauth-authorization-server", "", "")
	b := serve(h, "GET", "/.well-known/oauth-authorization-server/orgs/meta", "", "")
	if a.Code != http.StatusOK || b.Code != http.StatusOK || a.Body.String() != b.Body.String() {
		t.Fatalf("metadata differ: %d %s / %d %s", a.Code, a.Body, b.Code, b.Body)
	}
	var md struct {
		Issuer        string   `json:"issuer"`
		ResponseTypes []string `json:"response_types_supported"`
	}
	if err := json.Unmarshal(b.Body.Bytes(), &md); err != nil || md.Issuer != "http://keymint.test/orgs/meta" || len(md.ResponseTypes) != 0 {
		t.Fatalf("metadata %s", b.Body)
	}
}

// TestVerifiedTokenCache: a JWT verified once is served from the cache,
// but an expired one is refused and so is one whose key was revoked.
func TestVerifiedTokenCache(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	srv, _ := newServerAt(t, func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	h := srv.Handler()
	id, secret := bootstrapOrg(t, h, "cached", keys.AlgES256)
	token := func() string {
		rec := serve(h, "POST", "/api/v1/apikeys/"+id+"/token", secret, `{"ttl":60}`)
		var tok struct{ Token string }
		json.Unmarshal(rec.Body.Bytes(), &tok)
		return tok.Token
	}
	path := "/api/v1/apikeys/" + id
	tok := token()
	for i := 0; i < 3; i++ {
		if rec := serve(h, "GET", path, tok, ""); rec.Code != http.StatusOK {
			t.Fatalf("use %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	mu.Lock()
	now = now.Add(95 * time.Second) // past exp and the 30 s leeway
	mu.Unlock()
	if rec := serve(h, "GET", path, tok, ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("expired cached token: %d, want 401", rec.Code)
	}
	// A cached token of a key revoked since is refused at once.
	other := serve(h, "POST", "/api/v1/apikeys", secret, `{"name":"o","role":"viewer","expires_at":"`+now.Add(time.Hour).UTC().Format(time.RFC3339)+`"}`)
	var k struct{ ID, Key string }
	json.Unmarshal(other.Body.Bytes(), &k)
	rec := serve(h, "POST", "/api/v1/apikeys/"+k.ID+"/token", k.Key, "")
	var ot struct{ Token string }
	json.Unmarshal(rec.Body.Bytes(), &ot)
	if rec := serve(h, "GET", "/api/v1/apikeys/"+k.ID, ot.Token, ""); rec.Code != http.StatusOK {
		t.Fatalf("fresh token: %d %s", rec.Code, rec.Body)
	}
	if rec := serve(h, "POST", "/api/v1/apikeys/"+k.ID+"/revoke", secret, ""); rec.Code != http.StatusOK {
		t.Fatalf("revoke: %d", rec.Code)
	}
	if rec := serve(h, "GET", "/api/v1/apikeys/"+k.ID, ot.Token, ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("cached token of a revoked key: %d, want 401", rec.Code)
	}
}
