package jwks_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keymint/keymint/jwks"
)

func ExampleMarshal() {
	// A fixed key, so that the output is stable; keymint generates its own.
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	b, err := jwks.Marshal([]jwks.PublicKey{
		{KID: "2025-01", Alg: jwks.AlgEdDSA, Key: priv.Public()},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(b))

	// Private keys are refused, not quietly reduced to their public half.
	_, err = jwks.Marshal([]jwks.PublicKey{{KID: "2025-01", Alg: jwks.AlgEdDSA, Key: priv}})
	fmt.Println(err != nil)
	// Output:
	// {"keys":[{"alg":"EdDSA","crv":"Ed25519","kid":"2025-01","kty":"OKP","use":"sig","x":"O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik"}]}
	// true
}

func ExampleNewVerifier() {
	// keymint's side: the org acme signs with an ES256 key and publishes
	// it at {issuer}/.well-known/jwks.json.
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	set, _ := jwks.Marshal([]jwks.PublicKey{{KID: "2025-01", Alg: jwks.AlgES256, Key: &priv.PublicKey}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/orgs/acme/.well-known/jwks.json" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(set)
	}))
	defer srv.Close()
	issuer := srv.URL + "/orgs/acme"

	// ... and mints a token for API key key-1.
	t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": issuer, "sub": "key-1", "client_id": "key-1", "aud": issuer,
		"exp": time.Now().Add(15 * time.Minute).Unix(), "iat": time.Now().Unix(),
		"jti": "0190a6f0-0000-7000-8000-000000000001",
		"org": "acme", "role": "developer", "scope": "devices:read sites/*/devices:write",
	})
	t.Header["kid"], t.Header["typ"] = "2025-01", "at+jwt"
	token, _ := t.SignedString(priv)

	// The downstream service: one Verifier, shared, fetching the JWKS on
	// first use and caching it.
	v, err := jwks.NewVerifier(jwks.WithIssuer(issuer))
	if err != nil {
		fmt.Println(err)
		return
	}
	claims, err := v.Verify(context.Background(), token)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(claims.Subject, claims.Org, claims.Role, claims.KeyID)
	fmt.Println(claims.Allows("devices/42:read"), claims.Allows("sites/eu1/devices/7:write"), claims.Allows("devices/42:write"))

	// A token that was tampered with.
	_, err = v.Verify(context.Background(), token[:len(token)-4]+"AAAA")
	fmt.Println(errors.Is(err, jwks.ErrInvalidToken), errors.Is(err, jwks.ErrSignature))
	// Output:
	// key-1 acme developer 2025-01
	// true true false
	// true true
}

func ExampleRequireScope() {
	// keymint's side, as in the NewVerifier example.
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	set, _ := jwks.Marshal([]jwks.PublicKey{{KID: "2025-01", Alg: jwks.AlgES256, Key: &priv.PublicKey}})
	keymint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(set)
	}))
	defer keymint.Close()
	issuer := keymint.URL + "/orgs/acme"
	mint := func(scope string) string {
		t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
			"iss": issuer, "sub": "key-1", "aud": issuer,
			"exp": time.Now().Add(15 * time.Minute).Unix(), "scope": scope,
		})
		t.Header["kid"], t.Header["typ"] = "2025-01", "at+jwt"
		s, _ := t.SignedString(priv)
		return s
	}

	// The downstream service.
	v, err := jwks.NewVerifier(jwks.WithIssuer(issuer))
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle("GET /devices/{id}", jwks.RequireScope(v, "devices:read")(http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) {
			claims, _ := jwks.ClaimsFromContext(r.Context())
			fmt.Fprintf(w, "device %s for %s", r.PathValue("id"), claims.Subject)
		})))
	api := httptest.NewServer(mux)
	defer api.Close()

	for _, auth := range []string{"", "Bearer not-a-token", "Bearer " + mint("sites:read"), "Bearer " + mint("devices:read")} {
		req, _ := http.NewRequest(http.MethodGet, api.URL+"/devices/42", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	// Output:
	// 401 Bearer
	// 401 Bearer error="invalid_token"
	// 403 Bearer error="insufficient_scope", scope="devices:read"
	// 200
}
