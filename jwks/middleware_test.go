package jwks_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/keymint/keymint/jwks"
)

func TestRequireScope(t *testing.T) {
	es, _, _ := testKeys(t)
	set, err := jwks.NewKeySet([]jwks.PublicKey{es.public()})
	if err != nil {
		t.Fatal(err)
	}
	const iss = "https://keymint.example/orgs/acme"
	v, err := jwks.NewVerifier(jwks.WithIssuer(iss), jwks.WithSource(jwks.StaticKeySet(set)))
	if err != nil {
		t.Fatal(err)
	}
	var seen *jwks.Claims
	h := jwks.RequireScope(v, "devices/42:read", "sites/eu1/devices/7:write")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := jwks.ClaimsFromContext(r.Context())
		if !ok {
			t.Error("no claims in the request context")
		}
		seen = c
		w.WriteHeader(http.StatusNoContent)
	}))

	good := mint(t, es, iss)
	for _, tc := range []struct {
		name      string
		auth      []string
		status    int
		challenge string
	}{
		{"OK", []string{"Bearer " + good}, http.StatusNoContent, ""},
		{"OKLowercaseScheme", []string{"bearer " + good}, http.StatusNoContent, ""},
		{"NoCredential", nil, http.StatusUnauthorized, `Bearer`},
		{"OtherScheme", []string{"Basic dXNlcjpwYXNz"}, http.StatusUnauthorized, `Bearer`},
		{"EmptyToken", []string{"Bearer "}, http.StatusUnauthorized, `Bearer error="invalid_token"`},
		{"Garbage", []string{"Bearer garbage"}, http.StatusUnauthorized, `Bearer error="invalid_token"`},
		{"TwoHeaders", []string{"Bearer " + good, "Bearer " + good}, http.StatusUnauthorized, `Bearer error="invalid_token"`},
		{"Expired", []string{"Bearer " + mint(t, es, iss, claim("exp", 1000))}, http.StatusUnauthorized, `Bearer error="invalid_token"`},
		{"WrongIssuer", []string{"Bearer " + mint(t, es, "https://evil.example/orgs/acme")}, http.StatusUnauthorized, `Bearer error="invalid_token"`},
		{"MissingOnePermission", []string{"Bearer " + mint(t, es, iss, claim("scope", "devices:read"))}, http.StatusForbidden,
			`Bearer error="insufficient_scope", scope="devices/42:read sites/eu1/devices/7:write"`},
		{"NoScope", []string{"Bearer " + mint(t, es, iss, claim("scope", nil))}, http.StatusForbidden,
			`Bearer error="insufficient_scope", scope="devices/42:read sites/eu1/devices/7:write"`},
		{"Admin", []string{"Bearer " + mint(t, es, iss, claim("scope", "*:*"))}, http.StatusNoContent, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen = nil
			r := httptest.NewRequest(http.MethodGet, "/devices/42", nil)
			for _, a := range tc.auth {
				r.Header.Add("Authorization", a)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if got, want := w.Code, tc.status; got != want {
				t.Fatalf("status=%d, want %d", got, want)
			}
			if got, want := w.Header().Get("WWW-Authenticate"), tc.challenge; got != want {
				t.Fatalf("WWW-Authenticate=%q, want %q", got, want)
			}
			if tc.status == http.StatusNoContent {
				if seen == nil || seen.Subject != "key-1" || seen.Org != "acme" {
					t.Fatalf("handler saw claims %+v", seen)
				}
				return
			}
			if seen != nil {
				t.Fatal("handler ran")
			}
			if got, want := w.Header().Get("Content-Type"), "application/problem+json"; got != want {
				t.Fatalf("Content-Type=%q, want %q", got, want)
			}
			var p struct {
				Type, Title, Detail string
				Status              int
			}
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if p.Status != tc.status || p.Title == "" || p.Type == "" || p.Detail == "" {
				t.Fatalf("problem=%+v", p)
			}
		})
	}
}

func TestRequireScope_Panics(t *testing.T) {
	v, err := jwks.NewVerifier(jwks.WithIssuer("https://keymint.example/orgs/acme"))
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func(){
		"NilVerifier":   func() { jwks.RequireScope(nil, "devices:read") },
		"BadPermission": func() { jwks.RequireScope(v, "Devices") },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}
