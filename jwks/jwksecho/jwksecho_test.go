package jwksecho_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"

	"github.com/keymint/keymint/jwks"
	"github.com/keymint/keymint/jwks/jwksecho"
)

const iss = "https://keymint.example/orgs/acme"

func mint(tb testing.TB, key *ecdsa.PrivateKey, scope string, exp time.Time) string {
	tb.Helper()
	t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": iss, "sub": "key-1", "client_id": "key-1", "aud": iss,
		"exp": exp.Unix(), "iat": time.Now().Unix(), "org": "acme", "role": "viewer", "scope": scope,
	})
	t.Header["kid"], t.Header["typ"] = "k1", "at+jwt"
	s, err := t.SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestRequireScope(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set, err := jwks.NewKeySet([]jwks.PublicKey{{KID: "k1", Alg: jwks.AlgES256, Key: &key.PublicKey}})
	if err != nil {
		t.Fatal(err)
	}
	v, err := jwks.NewVerifier(jwks.WithIssuer(iss), jwks.WithSource(jwks.StaticKeySet(set)))
	if err != nil {
		t.Fatal(err)
	}

	e := echo.New()
	var fromEcho, fromRequest *jwks.Claims
	e.GET("/devices/:id", func(c echo.Context) error {
		fromEcho, _ = jwksecho.Claims(c)
		fromRequest, _ = jwks.ClaimsFromContext(c.Request().Context())
		return c.String(http.StatusOK, "device "+c.Param("id"))
	}, jwksecho.RequireScope(v, "devices:read"))

	now := time.Now()
	for _, tc := range []struct {
		name      string
		auth      string
		status    int
		challenge string
	}{
		{"OK", "Bearer " + mint(t, key, "devices:read", now.Add(time.Minute)), http.StatusOK, ""},
		{"OKParentScope", "Bearer " + mint(t, key, "*:read", now.Add(time.Minute)), http.StatusOK, ""},
		{"NoCredential", "", http.StatusUnauthorized, "Bearer"},
		{"Invalid", "Bearer x.y.z", http.StatusUnauthorized, `Bearer error="invalid_token"`},
		{"Expired", "Bearer " + mint(t, key, "devices:read", now.Add(-time.Hour)), http.StatusUnauthorized, `Bearer error="invalid_token"`},
		{"InsufficientScope", "Bearer " + mint(t, key, "devices:write sites:read", now.Add(time.Minute)), http.StatusForbidden,
			`Bearer error="insufficient_scope", scope="devices:read"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fromEcho, fromRequest = nil, nil
			req := httptest.NewRequest(http.MethodGet, "/devices/42", nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			if got, want := rec.Code, tc.status; got != want {
				t.Fatalf("status=%d, want %d (%s)", got, want, rec.Body)
			}
			if got, want := rec.Header().Get("WWW-Authenticate"), tc.challenge; got != want {
				t.Fatalf("WWW-Authenticate=%q, want %q", got, want)
			}
			if tc.status == http.StatusOK {
				if fromEcho == nil || fromEcho.Subject != "key-1" || fromRequest != fromEcho {
					t.Fatalf("claims: echo %+v, request %+v", fromEcho, fromRequest)
				}
				if got, want := rec.Body.String(), "device 42"; got != want {
					t.Fatalf("body=%q, want %q", got, want)
				}
				return
			}
			if fromEcho != nil || fromRequest != nil {
				t.Fatal("handler ran")
			}
			if got, want := rec.Header().Get("Content-Type"), "application/problem+json"; got != want {
				t.Fatalf("Content-Type=%q, want %q", got, want)
			}
			var p struct{ Status int }
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Status != tc.status {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
		})
	}
}

func TestRequireScope_HandlerErrorPropagates(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	set, _ := jwks.NewKeySet([]jwks.PublicKey{{KID: "k1", Alg: jwks.AlgES256, Key: &key.PublicKey}})
	v, err := jwks.NewVerifier(jwks.WithIssuer(iss), jwks.WithSource(jwks.StaticKeySet(set)))
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	e.GET("/", func(c echo.Context) error {
		return echo.NewHTTPError(http.StatusTeapot, "short and stout")
	}, jwksecho.RequireScope(v))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Bearer "+mint(t, key, "", time.Now().Add(time.Minute)))
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	if rec.Code != http.StatusTeapot {
		t.Fatalf("status=%d, want 418", rec.Code)
	}
}

func TestClaims_Missing(t *testing.T) {
	e := echo.New()
	c := e.NewContext(httptest.NewRequest(http.MethodGet, "/", nil), httptest.NewRecorder())
	if claims, ok := jwksecho.Claims(c); ok || claims != nil {
		t.Fatal("claims without middleware")
	}
}
