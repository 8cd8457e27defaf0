package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keymint/keymint/jwks"
	"github.com/keymint/keymint/keys"
)

// MustRunMain starts the whole service in-process on a free port with a
// temporary data directory, and stops it when the test ends.
func MustRunMain(tb testing.TB, dataDir string) *Main {
	tb.Helper()
	m := NewMain()
	m.Stderr = io.Discard
	m.Config.Addr = "127.0.0.1:0"
	if dataDir == "" {
		dataDir = tb.TempDir()
	}
	m.Config.DataDir = dataDir
	if err := m.Run(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}

// call sends a request with an optional bearer credential and JSON body,
// and returns the status, headers and body. The request and the response
// are validated against the OpenAPI document (openapi_test.go): a mismatch
// fails tb.
func call(tb testing.TB, method, u, cred string, body any) (int, http.Header, []byte) {
	tb.Helper()
	var rd io.Reader
	if body != nil {
		switch b := body.(type) {
		case string:
			rd = strings.NewReader(b)
		default:
			data, err := json.Marshal(b)
			if err != nil {
				tb.Fatal(err)
			}
			rd = bytes.NewReader(data)
		}
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if cred != "" {
		req.Header.Set("Authorization", "Bearer "+cred)
	}
	return openAPIDo(tb, req)
}

type bootstrapOut struct {
	Org struct {
		ID string `json:"id"`
	} `json:"org"`
	Issuer     string `json:"issuer"`
	JWKSURI    string `json:"jwks_uri"`
	SigningKey struct {
		KID string `json:"kid"`
		Alg string `json:"alg"`
	} `json:"signing_key"`
	AdminKey struct {
		ID        string     `json:"id"`
		Role      string     `json:"role"`
		Key       string     `json:"key"`
		ExpiresAt *time.Time `json:"expires_at"`
	} `json:"admin_key"`
}

func bootstrap(tb testing.TB, m *Main, org, alg string) bootstrapOut {
	tb.Helper()
	status, h, body := call(tb, "POST", m.URL()+"/api/v1/orgs", m.RootKey(), map[string]any{"id": org, "name": "Org " + org, "alg": alg})
	if status != http.StatusCreated {
		tb.Fatalf("bootstrap status=%d body=%s", status, body)
	}
	if got, want := h.Get("Cache-Control"), "no-store"; got != want {
		tb.Fatalf("bootstrap Cache-Control=%q, want %q", got, want)
	}
	var out bootstrapOut
	if err := json.Unmarshal(body, &out); err != nil {
		tb.Fatal(err)
	}
	return out
}

type createdOut struct {
	ID          string   `json:"id"`
	Org         string   `json:"org"`
	Role        string   `json:"role"`
	Scopes      []string `json:"scopes"`
	Status      string   `json:"status"`
	MaskedValue string   `json:"maskedValue"`
	Key         string   `json:"key"`
	Warnings    []string `json:"warnings"`
}

func createKey(tb testing.TB, m *Main, cred string, req map[string]any) createdOut {
	tb.Helper()
	if _, ok := req["expires_at"]; !ok {
		req["expires_at"] = time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339)
	}
	status, _, body := call(tb, "POST", m.URL()+"/api/v1/apikeys", cred, req)
	if status != http.StatusCreated {
		tb.Fatalf("create key status=%d body=%s", status, body)
	}
	var out createdOut
	if err := json.Unmarshal(body, &out); err != nil {
		tb.Fatal(err)
	}
	return out
}

type tokenOut struct {
	Token     string    `json:"token"`
	TokenType string    `json:"token_type"`
	ExpiresIn int64     `json:"expires_in"`
	ExpiresAt time.Time `json:"expires_at"`
	Scope     string    `json:"scope"`
}

func exchange(tb testing.TB, m *Main, method, id, secret string, body any) tokenOut {
	tb.Helper()
	id, query, _ := strings.Cut(id, "?")
	u := m.URL() + "/api/v1/apikeys/" + id + "/token"
	if query != "" {
		u += "?" + query
	}
	status, h, data := call(tb, method, u, secret, body)
	if status != http.StatusOK {
		tb.Fatalf("%s exchange status=%d body=%s", method, status, data)
	}
	if h.Get("Cache-Control") != "no-store" || h.Get("Pragma") != "no-cache" {
		tb.Fatalf("exchange must not be cached: Cache-Control=%q Pragma=%q", h.Get("Cache-Control"), h.Get("Pragma"))
	}
	var out tokenOut
	if err := json.Unmarshal(data, &out); err != nil {
		tb.Fatal(err)
	}
	return out
}

// TestEndToEnd walks the core path through the real HTTP server:
// bootstrap → create a key with the admin key → exchange (GET and POST) →
// verify offline with jwks.Verifier against the served JWKS.
func TestEndToEnd(t *testing.T) {
	m := MustRunMain(t, "")
	for _, alg := range []string{"ES256", "EdDSA", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			orgID := "acme-" + strings.ToLower(alg)
			b := bootstrap(t, m, orgID, alg)
			iss := m.URL() + "/orgs/" + orgID
			if got, want := b.Issuer, iss; got != want {
				t.Fatalf("issuer=%q, want %q", got, want)
			}
			if got, want := b.JWKSURI, iss+"/.well-known/jwks.json"; got != want {
				t.Fatalf("jwks_uri=%q, want %q", got, want)
			}
			if b.SigningKey.Alg != alg || b.SigningKey.KID == "" {
				t.Fatalf("signing_key=%+v, want alg %s and a kid", b.SigningKey, alg)
			}
			if b.AdminKey.Role != "admin" || !strings.HasPrefix(b.AdminKey.Key, "km_sk_") {
				t.Fatalf("admin key role=%q secret prefix=%q", b.AdminKey.Role, keys.MaskSecret(b.AdminKey.Key))
			}
			if b.AdminKey.ExpiresAt == nil || time.Until(*b.AdminKey.ExpiresAt) < 364*24*time.Hour {
				t.Fatalf("admin key expires_at=%v, want max_key_lifetime (365d) from now", b.AdminKey.ExpiresAt)
			}

			k := createKey(t, m, b.AdminKey.Key, map[string]any{
				"name": "ci deploy", "role": "viewer", "scopes": []string{"deploys:write"},
				"claims": map[string]any{"team": "platform"},
			})
			if k.Status != "active" || k.Org != orgID || k.MaskedValue != keys.MaskSecret(k.Key) {
				t.Fatalf("created key %+v", k)
			}

			v, err := jwks.NewVerifier(jwks.WithIssuer(iss))
			if err != nil {
				t.Fatal(err)
			}
			for _, method := range []string{"GET", "POST"} {
				before := time.Now().Truncate(time.Second)
				tok := exchange(t, m, method, k.ID, k.Key, nil)
				if tok.TokenType != "Bearer" || tok.ExpiresIn != 900 {
					t.Fatalf("token_type=%q expires_in=%d, want Bearer and 900", tok.TokenType, tok.ExpiresIn)
				}
				claims, err := v.Verify(context.Background(), tok.Token)
				if err != nil {
					t.Fatalf("%s: verify: %v", method, err)
				}
				if claims.Issuer != iss || claims.Subject != k.ID || claims.ClientID != k.ID || claims.Org != orgID || claims.Role != "viewer" {
					t.Fatalf("claims %+v", claims)
				}
				if got, want := claims.Scope, "*:read deploys:write"; got != want || tok.Scope != want {
					t.Fatalf("scope=%q (response %q), want %q", got, tok.Scope, want)
				}
				if len(claims.Audience) != 1 || claims.Audience[0] != iss {
					t.Fatalf("aud=%v, want [%s]", claims.Audience, iss)
				}
				if claims.KeyID != b.SigningKey.KID {
					t.Fatalf("kid=%q, want %q", claims.KeyID, b.SigningKey.KID)
				}
				if claims.ID == "" {
					t.Fatal("jti missing")
				}
				if claims.IssuedAt.Before(before) || !claims.NotBefore.Equal(claims.IssuedAt) || !claims.ExpiresAt.Equal(claims.IssuedAt.Add(15*time.Minute)) {
					t.Fatalf("iat=%v nbf=%v exp=%v", claims.IssuedAt, claims.NotBefore, claims.ExpiresAt)
				}
				if !claims.ExpiresAt.Equal(tok.ExpiresAt) {
					t.Fatalf("exp=%v, response expires_at=%v", claims.ExpiresAt, tok.ExpiresAt)
				}
				if got := claims.Custom["team"]; got != "platform" {
					t.Fatalf("custom claim team=%v, want platform", got)
				}
				if !claims.Allows("deploys/42:write") || !claims.Allows("anything:read") || claims.Allows("anything:write") {
					t.Fatal("Allows disagrees with the scopes")
				}
			}

			// The JWT authorizes management calls too.
			admTok := exchange(t, m, "POST", b.AdminKey.ID, b.AdminKey.Key, nil)
			status, _, body := call(t, "GET", m.URL()+"/api/v1/apikeys/"+k.ID, admTok.Token, nil)
			if status != http.StatusOK || strings.Contains(string(body), k.Key) || strings.Contains(string(body), "secret_hash") {
				t.Fatalf("GET key with JWT: status=%d body=%s", status, body)
			}
		})
	}
}

func TestExchangeNarrowing(t *testing.T) {
	m := MustRunMain(t, "")
	b := bootstrap(t, m, "narrow", "ES256")
	k := createKey(t, m, b.AdminKey.Key, map[string]any{"name": "n", "role": "developer"})
	tok := exchange(t, m, "POST", k.ID, k.Key, map[string]any{"scope": "devices:read", "ttl": 60})
	if tok.Scope != "devices:read" || tok.ExpiresIn != 60 {
		t.Fatalf("scope=%q expires_in=%d, want devices:read and 60", tok.Scope, tok.ExpiresIn)
	}
	tok = exchange(t, m, "GET", k.ID+"?scope=devices:write&ttl=2m", k.Key, nil)
	if tok.Scope != "devices:write" || tok.ExpiresIn != 120 {
		t.Fatalf("scope=%q expires_in=%d", tok.Scope, tok.ExpiresIn)
	}
	for _, tt := range []struct {
		name  string
		body  any
		field string
	}{
		{"ScopeNotHeld", map[string]any{"scope": "signing_keys:admin"}, "scope"},
		{"BadScope", map[string]any{"scope": "NOT A SCOPE"}, "scope"},
		{"UnknownAudience", map[string]any{"audience": "https://elsewhere"}, "audience"},
		{"TTLTooLong", map[string]any{"ttl": 3600}, "ttl"},
		{"UnknownField", map[string]any{"scopes": "x:read"}, "scopes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, h, body := call(t, "POST", m.URL()+"/api/v1/apikeys/"+k.ID+"/token", k.Key, tt.body)
			assertProblem(t, status, h, body, http.StatusBadRequest, tt.field)
		})
	}
}

// assertProblem checks an RFC 9457 problem response naming field.
func assertProblem(tb testing.TB, status int, h http.Header, body []byte, wantStatus int, field string) {
	tb.Helper()
	if status != wantStatus {
		tb.Fatalf("status=%d, want %d; body=%s", status, wantStatus, body)
	}
	if got := h.Get("Content-Type"); got != "application/problem+json" {
		tb.Fatalf("Content-Type=%q, want application/problem+json", got)
	}
	var p struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Errors []struct{ Field string }
	}
	if err := json.Unmarshal(body, &p); err != nil {
		tb.Fatal(err)
	}
	if p.Status != wantStatus || p.Title == "" || p.Type == "" {
		tb.Fatalf("problem %s", body)
	}
	if field == "" {
		return
	}
	for _, f := range p.Errors {
		if f.Field == field {
			return
		}
	}
	tb.Fatalf("problem names no field %q: %s", field, body)
}

// TestExchangeAttacks: every bad credential gets the same 401 body, so a
// caller learns nothing about which keys exist.
func TestExchangeAttacks(t *testing.T) {
	m := MustRunMain(t, "")
	b := bootstrap(t, m, "victim", "ES256")
	k := createKey(t, m, b.AdminKey.Key, map[string]any{"name": "k", "role": "viewer"})
	other := createKey(t, m, b.AdminKey.Key, map[string]any{"name": "other", "role": "viewer"})
	base := m.URL() + "/api/v1/apikeys/"

	// The reference 401 body: a wrong secret for a real key.
	wrong, _ := keys.NewSecret(keys.TypeSecret, uuid.MustParse(k.ID), nil)
	_, _, ref := call(t, "POST", base+k.ID+"/token", wrong.String(), nil)

	flip := []byte(k.Key)
	flip[20] ^= 1
	unknown, _ := keys.NewSecret(keys.TypeSecret, uuid.MustParse("0190b4a2-0000-7000-8000-000000000000"), nil)
	for _, tt := range []struct {
		name, id, cred string
	}{
		{"WrongSecret", k.ID, wrong.String()},
		{"BadChecksum", k.ID, string(flip)},
		{"PathIDMismatch", k.ID, other.Key},
		{"UnknownID", unknown.KeyID, unknown.String()},
		{"Garbage", k.ID, "not-a-secret-at-all"},
		{"Truncated", k.ID, k.Key[:len(k.Key)-3]},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, method := range []string{"GET", "POST"} {
				status, h, body := call(t, method, base+tt.id+"/token", tt.cred, nil)
				assertProblem(t, status, h, body, http.StatusUnauthorized, "")
				if !bytes.Equal(body, ref) {
					t.Fatalf("401 body differs from the reference:\n%s\n%s", body, ref)
				}
				if !strings.Contains(h.Get("WWW-Authenticate"), "Bearer") {
					t.Fatalf("WWW-Authenticate=%q", h.Get("WWW-Authenticate"))
				}
			}
		})
	}
	t.Run("XAPIKeyHeader", func(t *testing.T) {
		req, _ := http.NewRequest("POST", base+k.ID+"/token", nil)
		req.Header.Set("X-API-Key", k.Key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status=%d, want 200", resp.StatusCode)
		}
	})
	t.Run("SecretInQuery", func(t *testing.T) {
		for _, q := range []string{"api_key=" + url.QueryEscape(k.Key), "x=" + url.QueryEscape(k.Key), "key=abc"} {
			status, h, body := call(t, "GET", base+k.ID+"/token?"+q, "", nil)
			assertProblem(t, status, h, body, http.StatusBadRequest, "")
			if strings.Contains(string(body), k.Key) {
				t.Fatal("the error echoes the secret")
			}
		}
	})
	t.Run("NoCredential", func(t *testing.T) {
		status, h, body := call(t, "GET", base+k.ID+"/token", "", nil)
		assertProblem(t, status, h, body, http.StatusUnauthorized, "")
	})
}

func TestWrongMasterKeyFailsLoudly(t *testing.T) {
	dir := t.TempDir()
	m := MustRunMain(t, dir)
	bootstrap(t, m, "persist", "ES256")
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"master.key", "root.key", "keymint.db"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if f != "keymint.db" && fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode=%v, want 0600", f, fi.Mode().Perm())
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "master.key"), []byte("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m2 := NewMain()
	m2.Stderr = io.Discard
	m2.Config.Addr, m2.Config.DataDir = "127.0.0.1:0", dir
	err := m2.Run(context.Background())
	if err == nil {
		m2.Close()
		t.Fatal("started with the wrong master key")
	}
	if !strings.Contains(err.Error(), "master key") {
		t.Fatalf("err=%v, want it to name the master key", err)
	}
}

func TestRestartKeepsKeys(t *testing.T) {
	dir := t.TempDir()
	m := MustRunMain(t, dir)
	b := bootstrap(t, m, "durable", "EdDSA")
	m.Close()
	m2 := MustRunMain(t, dir)
	tok := exchange(t, m2, "POST", b.AdminKey.ID, b.AdminKey.Key, nil)
	v, _ := jwks.NewVerifier(jwks.WithIssuer(m2.URL() + "/orgs/durable"))
	if _, err := v.Verify(context.Background(), tok.Token); err != nil {
		t.Fatalf("token after restart: %v", err)
	}
	status, _, _ := call(t, "POST", m2.URL()+"/api/v1/orgs", m2.RootKey(), map[string]any{"id": "durable", "name": "again"})
	if status != http.StatusConflict {
		t.Fatalf("second bootstrap status=%d, want 409", status)
	}
}
