package jwks_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keymint/keymint/jwks"
	"github.com/keymint/keymint/keys"
)

// wantRefused checks that err wraps ErrInvalidToken and want, and that its
// message does not quote the token.
func wantRefused(tb testing.TB, err error, want error, token string) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("Verify accepted the token, want %v", want)
	}
	if !errors.Is(err, jwks.ErrInvalidToken) {
		tb.Errorf("err=%v, want it to wrap ErrInvalidToken", err)
	}
	if !errors.Is(err, want) {
		tb.Errorf("err=%v, want it to wrap %v", err, want)
	}
	for _, part := range strings.Split(token, ".") {
		if len(part) >= 8 && strings.Contains(err.Error(), part) {
			tb.Errorf("error message %q contains part of the token", err)
		}
	}
}

func TestVerify_OK(t *testing.T) {
	es, ed, rs := testKeys(t)
	srv := newJWKSServer(t, es, ed, rs)
	iss := srv.Issuer("acme")
	v := newVerifier(t, srv)
	for _, k := range []testKey{es, ed, rs} {
		t.Run(k.alg, func(t *testing.T) {
			now := time.Now().Truncate(time.Second)
			token := mint(t, k, iss,
				claim("iat", now.Unix()), claim("nbf", now.Unix()), claim("exp", now.Add(10*time.Minute).Unix()),
				claim("tenant", "eu-1"), claim("limits", map[string]any{"rps": 5}),
				claim("scope", "devices:read sites/*/devices:write Bad:Scope"))
			c, err := v.Verify(context.Background(), token)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []struct{ name, got, want string }{
				{"Issuer", c.Issuer, iss},
				{"Subject", c.Subject, "key-1"},
				{"ClientID", c.ClientID, "key-1"},
				{"Org", c.Org, "acme"},
				{"Role", c.Role, "developer"},
				{"ID", c.ID, "0190a6f0-0000-7000-8000-000000000001"},
				{"Scope", c.Scope, "devices:read sites/*/devices:write Bad:Scope"},
				{"KeyID", c.KeyID, k.kid},
				{"Scopes", c.Scopes.String(), "devices:read sites/*/devices:write"},
				{"Audience", strings.Join(c.Audience, ","), iss},
			} {
				if f.got != f.want {
					t.Errorf("%s=%q, want %q", f.name, f.got, f.want)
				}
			}
			for _, f := range []struct {
				name      string
				got, want time.Time
			}{
				{"ExpiresAt", c.ExpiresAt, now.Add(10 * time.Minute)},
				{"IssuedAt", c.IssuedAt, now},
				{"NotBefore", c.NotBefore, now},
			} {
				if !f.got.Equal(f.want) {
					t.Errorf("%s=%v, want %v", f.name, f.got, f.want)
				}
			}
			if got, want := fmt.Sprint(c.Custom), "map[limits:map[rps:5] tenant:eu-1]"; got != want {
				t.Errorf("Custom=%s, want %s", got, want)
			}
			for perm, want := range map[string]bool{
				"devices:read": true, "devices/42:read": true, "devices:write": false,
				"sites/eu1/devices/7:write": true, "sites/eu1/devices:read": false,
				"bad:scope": false, "Bad:Scope": false, "not a scope": false,
			} {
				if got := c.Allows(perm); got != want {
					t.Errorf("Allows(%q)=%v, want %v", perm, got, want)
				}
			}
			if !c.HasAudience(iss) || c.HasAudience("https://other.example") {
				t.Errorf("HasAudience wrong for %v", c.Audience)
			}
		})
	}

	t.Run("StringAudienceNoCustom", func(t *testing.T) {
		token := mint(t, es, iss, claim("aud", iss))
		c, err := v.Verify(context.Background(), token)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Audience) != 1 || c.Audience[0] != iss || c.Custom != nil {
			t.Fatalf("Audience=%v Custom=%v", c.Audience, c.Custom)
		}
	})
	t.Run("TypCaseAndMediaType", func(t *testing.T) {
		for _, typ := range []string{"AT+JWT", "application/at+jwt", "Application/AT+JWT"} {
			if _, err := v.Verify(context.Background(), mint(t, es, iss, hdr("typ", typ))); err != nil {
				t.Errorf("typ %q: %v", typ, err)
			}
		}
	})
	t.Run("NoNbfNoIat", func(t *testing.T) {
		c, err := v.Verify(context.Background(), mint(t, ed, iss, claim("nbf", nil), claim("iat", nil)))
		if err != nil {
			t.Fatal(err)
		}
		if !c.IssuedAt.IsZero() || !c.NotBefore.IsZero() {
			t.Fatalf("IssuedAt=%v NotBefore=%v, want zero", c.IssuedAt, c.NotBefore)
		}
	})
	t.Run("FractionalDates", func(t *testing.T) {
		exp := float64(time.Now().Add(time.Minute).Unix()) + 0.5
		c, err := v.Verify(context.Background(), mint(t, es, iss, claim("exp", exp)))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.ExpiresAt.Nanosecond(); got != 5e8 {
			t.Fatalf("ExpiresAt ns=%d", got)
		}
	})
}

func TestVerify_Attacks(t *testing.T) {
	es, ed, rs := testKeys(t)
	srv := newJWKSServer(t, es, ed, rs)
	iss := srv.Issuer("acme")
	v := newVerifier(t, srv)
	valid := mint(t, es, iss)
	now := time.Now()

	esDER, err := x509.MarshalPKIXPublicKey(es.priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	esPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: esDER})
	rsDER, err := x509.MarshalPKIXPublicKey(rs.priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	rsPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsDER})
	hmacToken := func(kid string, secret []byte) string {
		tk := jwt.NewWithClaims(jwt.SigningMethodHS256, baseClaims(iss, now))
		tk.Header["kid"], tk.Header["typ"] = kid, "at+jwt"
		s, err := tk.SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	noneToken := func(alg string) string {
		tk := jwt.NewWithClaims(jwt.SigningMethodNone, baseClaims(iss, now))
		tk.Header["kid"], tk.Header["typ"], tk.Header["alg"] = es.kid, "at+jwt", alg
		s, err := tk.SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	attackerJWK := func(k testKey) map[string]any {
		b, err := jwks.Marshal([]jwks.PublicKey{k.public()})
		if err != nil {
			t.Fatal(err)
		}
		var set struct{ Keys []map[string]any }
		if err := json.Unmarshal(b, &set); err != nil {
			t.Fatal(err)
		}
		return set.Keys[0]
	}
	parts := strings.Split(valid, ".")
	tampered := func() string {
		raw, _ := b64.DecodeString(parts[1])
		var c map[string]any
		_ = json.Unmarshal(raw, &c)
		c["role"], c["scope"] = "admin", "*:*"
		raw, _ = json.Marshal(c)
		return parts[0] + "." + b64.EncodeToString(raw) + "." + parts[2]
	}
	esHdr := `"kid":"es-1","typ":"at+jwt"`
	claimsJSON := func(extra string) string {
		return fmt.Sprintf(`{"iss":%q,"sub":"key-1","aud":%q,"exp":%d%s}`, iss, iss, now.Add(time.Minute).Unix(), extra)
	}

	for _, tc := range []struct {
		name  string
		token string
		want  error
	}{
		{"TamperedPayload", tampered(), jwks.ErrSignature},
		{"TamperedSignature", parts[0] + "." + parts[1] + "." + b64.EncodeToString(make([]byte, 64)), jwks.ErrSignature},
		{"SignatureDropped", parts[0] + "." + parts[1] + ".", jwks.ErrSignature},
		{"AttackerKeyWithOurKid", mint(t, attackerES, iss, hdr("kid", es.kid)), jwks.ErrSignature},
		{"AlgNone", noneToken("none"), jwks.ErrUnsupportedAlg},
		{"AlgNoneCase", noneToken("NoNe"), jwks.ErrUnsupportedAlg},
		{"AlgNoneWithSignature", noneToken("none") + parts[2], jwks.ErrUnsupportedAlg},
		{"HS256PublicKeyPEM", hmacToken(es.kid, esPEM), jwks.ErrUnsupportedAlg},
		{"HS256PublicKeyDER", hmacToken(es.kid, esDER), jwks.ErrUnsupportedAlg},
		{"HS256RSAPublicKeyPEM", hmacToken(rs.kid, rsPEM), jwks.ErrUnsupportedAlg},
		{"HS256RSAPublicKeyDER", hmacToken(rs.kid, rsDER), jwks.ErrUnsupportedAlg},
		{"RS256OnES256Kid", mint(t, rs, iss, hdr("kid", es.kid)), jwks.ErrUnsupportedAlg},
		{"ES256OnEdDSAKid", mint(t, es, iss, hdr("kid", ed.kid)), jwks.ErrUnsupportedAlg},
		{"EdDSAOnRS256Kid", mint(t, ed, iss, hdr("kid", rs.kid)), jwks.ErrUnsupportedAlg},
		{"PS256", signRaw(t, testKey{method: jwt.SigningMethodPS256, priv: rs.priv}, `{"alg":"PS256",`+esHdr+`}`, claimsJSON("")), jwks.ErrUnsupportedAlg},
		{"NoAlg", signRaw(t, es, `{`+esHdr+`}`, claimsJSON("")), jwks.ErrUnsupportedAlg},
		{"AlgNotString", signRaw(t, es, `{"alg":1,`+esHdr+`}`, claimsJSON("")), jwks.ErrMalformed},
		{"EmbeddedJWK", mint(t, attackerES, iss, hdr("jwk", attackerJWK(attackerES))), jwks.ErrForbiddenHeader},
		{"EmbeddedJWKOurKid", mint(t, attackerES, iss, hdr("jwk", attackerJWK(attackerES)), hdr("kid", es.kid)), jwks.ErrForbiddenHeader},
		{"X5U", mint(t, attackerRS, iss, hdr("x5u", "https://attacker.example/cert.pem")), jwks.ErrForbiddenHeader},
		{"X5C", mint(t, attackerRS, iss, hdr("x5c", []string{"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"})), jwks.ErrForbiddenHeader},
		{"X5T", mint(t, es, iss, hdr("x5t", "abc")), jwks.ErrForbiddenHeader},
		{"X5TS256", mint(t, es, iss, hdr("x5t#S256", "abc")), jwks.ErrForbiddenHeader},
		{"Crit", mint(t, es, iss, hdr("crit", []string{"exp"}), hdr("exp", 1)), jwks.ErrForbiddenHeader},
		{"CritEmpty", mint(t, es, iss, hdr("crit", []string{})), jwks.ErrForbiddenHeader},
		{"B64", mint(t, es, iss, hdr("b64", false)), jwks.ErrForbiddenHeader},
		{"CaseVariantJKU", mint(t, es, iss, hdr("JKU", "https://attacker.example/jwks.json")), jwks.ErrForbiddenHeader},
		{"CaseVariantAlg", mint(t, es, iss, hdr("ALG", "none")), jwks.ErrForbiddenHeader},
		{"TypJWT", mint(t, es, iss, hdr("typ", "JWT")), jwks.ErrWrongType},
		{"TypMissing", mint(t, es, iss, hdr("typ", nil)), jwks.ErrWrongType},
		{"TypOther", mint(t, es, iss, hdr("typ", "application/jwt")), jwks.ErrWrongType},
		{"TypNotString", mint(t, es, iss, hdr("typ", 1)), jwks.ErrMalformed},
		{"KidTraversal", mint(t, es, iss, hdr("kid", "../../etc/passwd")), jwks.ErrUnknownKey},
		{"KidUnknown", mint(t, es, iss, hdr("kid", "es-9")), jwks.ErrUnknownKey},
		{"KidMissing", mint(t, es, iss, hdr("kid", nil)), jwks.ErrUnknownKey},
		{"KidEmpty", mint(t, es, iss, hdr("kid", "")), jwks.ErrUnknownKey},
		{"DuplicateHeaderAlg", signRaw(t, es, `{"alg":"ES256",`+esHdr+`,"alg":"ES256"}`, claimsJSON("")), jwks.ErrMalformed},
		{"DuplicateHeaderEscaped", signRaw(t, es, `{"alg":"ES256",`+esHdr+`,"\u0061lg":"none"}`, claimsJSON("")), jwks.ErrMalformed},
		{"DuplicateHeaderKid", signRaw(t, es, `{"alg":"ES256",`+esHdr+`,"kid":"rs-1"}`, claimsJSON("")), jwks.ErrMalformed},
		{"HeaderNotObject", signRaw(t, es, `["alg","ES256"]`, claimsJSON("")), jwks.ErrMalformed},
		{"HeaderTrailingData", signRaw(t, es, `{"alg":"ES256",`+esHdr+`}{}`, claimsJSON("")), jwks.ErrMalformed},
		{"DuplicateClaimIss", signRaw(t, es, `{"alg":"ES256",`+esHdr+`}`, claimsJSON(`,"iss":"https://attacker.example"`)), jwks.ErrMalformed},
		{"DuplicateCustomClaim", signRaw(t, es, `{"alg":"ES256",`+esHdr+`}`, claimsJSON(`,"x":1,"x":2`)), jwks.ErrMalformed},
		{"ClaimsNotObject", signRaw(t, es, `{"alg":"ES256",`+esHdr+`}`, `"hello"`), jwks.ErrMalformed},
		{"ClaimsInvalidJSON", signRaw(t, es, `{"alg":"ES256",`+esHdr+`}`, `{"iss":`), jwks.ErrMalformed},
		{"ClaimsInvalidUTF8", signRaw(t, es, `{"alg":"ES256",`+esHdr+`}`, claimsJSON(`,"x":"`+"\xff"+`"`)), jwks.ErrMalformed},
		{"ExpNotNumber", mint(t, es, iss, claim("exp", "tomorrow")), jwks.ErrMalformed},
		{"ExpNegative", mint(t, es, iss, claim("exp", -1)), jwks.ErrMalformed},
		{"ExpHuge", mint(t, es, iss, claim("exp", 1e300)), jwks.ErrMalformed},
		{"ExpMissing", mint(t, es, iss, claim("exp", nil)), jwks.ErrMalformed},
		{"SubMissing", mint(t, es, iss, claim("sub", nil)), jwks.ErrMalformed},
		{"SubNotString", mint(t, es, iss, claim("sub", 7)), jwks.ErrMalformed},
		{"AudNotStrings", mint(t, es, iss, claim("aud", []any{1})), jwks.ErrMalformed},
		{"IssMissing", mint(t, es, iss, claim("iss", nil)), jwks.ErrIssuer},
		{"IssOther", mint(t, es, "https://attacker.example/orgs/acme"), jwks.ErrIssuer},
		{"IssPrefix", mint(t, es, iss+"x"), jwks.ErrIssuer},
		{"IssTrailingSlash", mint(t, es, iss+"/"), jwks.ErrIssuer},
		{"IssOtherOrg", mint(t, es, srv.Issuer("globex")), jwks.ErrIssuer},
		{"AudWrong", mint(t, es, iss, claim("aud", "https://api.example")), jwks.ErrAudience},
		{"AudWrongArray", mint(t, es, iss, claim("aud", []string{"https://a.example", "https://b.example"})), jwks.ErrAudience},
		{"AudEmptyArray", mint(t, es, iss, claim("aud", []string{})), jwks.ErrAudience},
		{"AudMissing", mint(t, es, iss, claim("aud", nil)), jwks.ErrAudience},
		{"Expired", mint(t, es, iss, claim("exp", now.Add(-2*time.Minute).Unix())), jwks.ErrExpired},
		{"ExpiredJustPastLeeway", mint(t, es, iss, claim("exp", now.Add(-31*time.Second).Unix())), jwks.ErrExpired},
		{"NotBeforeFuture", mint(t, es, iss, claim("nbf", now.Add(2*time.Minute).Unix())), jwks.ErrNotYetValid},
		{"IssuedInFuture", mint(t, es, iss, claim("iat", now.Add(2*time.Minute).Unix())), jwks.ErrNotYetValid},
		{"JWE", "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.OKOawDo13gRp2ojaHV7LFpZcgV7T6DVZKTyKOMTYUmKoTCVJRgckCL9kiMT03JGeipsEdY3mx_etLbbWSrFr05kLzcSr4qKAq7YN7e9jwQRb23nfa6c9d-StnImGyFDbSv04uVuxIp5Zms1gNxKKK2Da14B8S4rzVRltdYwam_lDp5XnZAYpQdb76FdIKLaVmqgfwX7XWRxv2322i-vDxRfqNzo_tETKzpVLzfiwQyeyPGLBIO56YJ7eObdv0je81860ppamavo35UgoRdbYaBcoh9QcfylQr66oc6vFWXRcZ_ZT2LawVCWTIy3brGPi6UklfCpIMfIjf7iGdXKHzg.48V1_ALb6US04U3b.5eym8TW_c8SuK0ltJ3rpYIzOeDQz7TALvtu6UG9oMo4vpzs9tX_EFShS8iB7j6jiSdiwkIr3ajwQzaBtQD_A.XFBoMYUZodetZdvTiFvSkQ", jwks.ErrMalformed},
		{"JSONSerialization", `{"payload":"` + parts[1] + `","signatures":[{"protected":"` + parts[0] + `","signature":"` + parts[2] + `"}]}`, jwks.ErrMalformed},
		{"FlattenedJSONSerialization", `{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`, jwks.ErrMalformed},
		{"Empty", "", jwks.ErrMalformed},
		{"Dot", ".", jwks.ErrMalformed},
		{"Dots", "..", jwks.ErrMalformed},
		{"FourParts", valid + ".x", jwks.ErrMalformed},
		{"TwoParts", parts[0] + "." + parts[1], jwks.ErrMalformed},
		{"Garbage", "garbage", jwks.ErrMalformed},
		{"GarbageParts", "a.b.c", jwks.ErrMalformed},
		{"BearerPrefix", "Bearer " + valid, jwks.ErrMalformed},
		{"Whitespace", " " + valid, jwks.ErrMalformed},
		{"Newline", parts[0] + "\n." + parts[1] + "." + parts[2], jwks.ErrMalformed},
		{"Padding", parts[0] + "=." + parts[1] + "." + parts[2], jwks.ErrMalformed},
		{"StdAlphabet", strings.ReplaceAll(strings.ReplaceAll(valid, "-", "+"), "_", "/") + "+", jwks.ErrMalformed},
		{"NonCanonicalBase64", parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-1] + "B", jwks.ErrMalformed},
		{"TooLong", valid + strings.Repeat("A", jwks.MaxTokenSize), jwks.ErrMalformed},
		{"HeaderNotBase64JSON", b64.EncodeToString([]byte("hello")) + "." + parts[1] + "." + parts[2], jwks.ErrMalformed},
		{"Unicode", "é.é.é", jwks.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), tc.token)
			wantRefused(t, err, tc.want, tc.token)
		})
	}

	t.Run("WithinLeewayAccepted", func(t *testing.T) {
		for name, m := range map[string]tokenMod{
			"exp": claim("exp", now.Add(-20*time.Second).Unix()),
			"nbf": claim("nbf", now.Add(20*time.Second).Unix()),
			"iat": claim("iat", now.Add(20*time.Second).Unix()),
		} {
			if _, err := v.Verify(context.Background(), mint(t, es, iss, m)); err != nil {
				t.Errorf("%s within leeway: %v", name, err)
			}
		}
	})
	t.Run("OnlyOwnJWKSFetched", func(t *testing.T) {
		for _, p := range srv.Paths() {
			if p != "/orgs/acme/.well-known/jwks.json" {
				t.Errorf("server was asked for %q", p)
			}
		}
	})
}

func TestVerify_JKUNeverFetched(t *testing.T) {
	es, _, _ := testKeys(t)
	srv := newJWKSServer(t, es)
	evil := newJWKSServer(t, attackerES)
	v := newVerifier(t, srv)
	iss := srv.Issuer("acme")
	for _, m := range []tokenMod{
		hdr("jku", evil.Issuer("acme")+"/.well-known/jwks.json"),
		hdr("x5u", evil.URL+"/cert.pem"),
	} {
		token := mint(t, attackerES, iss, m)
		_, err := v.Verify(context.Background(), token)
		wantRefused(t, err, jwks.ErrForbiddenHeader, token)
		token = mint(t, attackerES, iss, m, hdr("kid", es.kid))
		_, err = v.Verify(context.Background(), token)
		wantRefused(t, err, jwks.ErrForbiddenHeader, token)
	}
	if got := evil.hits.Load(); got != 0 {
		t.Fatalf("the jku/x5u server got %d requests, want 0", got)
	}
	if got := srv.hits.Load(); got != 0 {
		t.Fatalf("the issuer got %d requests for a token refused by its header, want 0", got)
	}
}

func TestVerify_IssuerNotAllowedNoFetch(t *testing.T) {
	es, _, _ := testKeys(t)
	a := newJWKSServer(t, es)
	b := newJWKSServer(t, es)
	v := newVerifier(t, b) // allows only b's acme
	for _, iss := range []string{a.Issuer("acme"), b.Issuer("globex"), a.URL} {
		token := mint(t, es, iss, claim("aud", b.Issuer("acme")))
		_, err := v.Verify(context.Background(), token)
		wantRefused(t, err, jwks.ErrIssuer, token)
	}
	if got := a.hits.Load(); got != 0 {
		t.Errorf("issuer A's server got %d requests, want 0", got)
	}
	if got := b.hits.Load(); got != 0 {
		t.Errorf("issuer B's server got %d requests for tokens of other issuers, want 0", got)
	}
}

func TestVerify_SeveralIssuers(t *testing.T) {
	es, ed, rs := testKeys(t)
	a := newJWKSServer(t, es)
	b := newJWKSServer(t, ed, rs)
	v, err := jwks.NewVerifier(
		jwks.WithIssuer(a.Issuer("acme")),
		jwks.WithIssuer(b.Issuer("acme"), b.Issuer("globex")),
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		k   testKey
		iss string
	}{{es, a.Issuer("acme")}, {ed, b.Issuer("acme")}, {rs, b.Issuer("globex")}} {
		c, err := v.Verify(context.Background(), mint(t, tc.k, tc.iss))
		if err != nil {
			t.Fatalf("%s: %v", tc.iss, err)
		}
		if c.Issuer != tc.iss {
			t.Fatalf("Issuer=%q, want %q", c.Issuer, tc.iss)
		}
	}
	// Each issuer's keys are its own: a's key does not verify b's tokens.
	token := mint(t, es, b.Issuer("acme"))
	_, err = v.Verify(context.Background(), token)
	wantRefused(t, err, jwks.ErrUnknownKey, token)
}

func TestVerify_IssuerFunc(t *testing.T) {
	es, _, _ := testKeys(t)
	srv := newJWKSServer(t, es)
	asked := 0
	v, err := jwks.NewVerifier(jwks.WithHTTPClient(srv.Client()), jwks.WithIssuerFunc(func(iss string) bool {
		asked++
		org, ok := strings.CutPrefix(iss, srv.URL+"/orgs/")
		return ok && org != "" && !strings.Contains(org, "/")
	}))
	if err != nil {
		t.Fatal(err)
	}
	for _, org := range []string{"acme", "globex"} {
		if _, err := v.Verify(context.Background(), mint(t, es, srv.Issuer(org))); err != nil {
			t.Fatalf("%s: %v", org, err)
		}
	}
	token := mint(t, es, srv.Issuer("acme/../x"))
	_, err = v.Verify(context.Background(), token)
	wantRefused(t, err, jwks.ErrIssuer, token)
	if asked != 3 {
		t.Fatalf("issuer func asked %d times, want 3", asked)
	}
}

func TestVerify_Audience(t *testing.T) {
	es, _, _ := testKeys(t)
	srv := newJWKSServer(t, es)
	iss := srv.Issuer("acme")
	v := newVerifier(t, srv, jwks.WithAudience("https://api.example"))
	if _, err := v.Verify(context.Background(), mint(t, es, iss, claim("aud", []string{"https://other.example", "https://api.example"}))); err != nil {
		t.Fatal(err)
	}
	// With WithAudience, the issuer is no longer an acceptable audience.
	token := mint(t, es, iss)
	_, err := v.Verify(context.Background(), token)
	wantRefused(t, err, jwks.ErrAudience, token)
}

func TestVerify_LeewayAndClock(t *testing.T) {
	es, _, _ := testKeys(t)
	srv := newJWKSServer(t, es)
	iss := srv.Issuer("acme")
	clock := newFakeClock()
	v := newVerifier(t, srv, jwks.WithClock(clock.Now), jwks.WithLeeway(0))
	token := mint(t, es, iss, claim("exp", clock.Now().Add(time.Minute).Unix()))
	if _, err := v.Verify(context.Background(), token); err != nil {
		t.Fatal(err)
	}
	clock.Advance(61 * time.Second)
	_, err := v.Verify(context.Background(), token)
	wantRefused(t, err, jwks.ErrExpired, token)
}

func TestVerify_RefreshOnUnknownKid(t *testing.T) {
	es, _, _ := testKeys(t)
	srv := newJWKSServer(t, es)
	iss := srv.Issuer("acme")
	clock := newFakeClock()
	v := newVerifier(t, srv, jwks.WithClock(clock.Now))
	if _, err := v.Verify(context.Background(), mint(t, es, iss)); err != nil {
		t.Fatal(err)
	}
	srv.Publish(t, es, esKey2) // rotation: es-2 is published

	// Within MinRefreshInterval of the last fetch, the new kid is not
	// looked for yet.
	token := mint(t, esKey2, iss)
	_, err := v.Verify(context.Background(), token)
	wantRefused(t, err, jwks.ErrUnknownKey, token)
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("fetches=%d, want 1", got)
	}

	clock.Advance(jwks.DefaultMinRefreshInterval)
	c, err := v.Verify(context.Background(), token)
	if err != nil {
		t.Fatal(err)
	}
	if c.KeyID != esKey2.kid || srv.hits.Load() != 2 {
		t.Fatalf("KeyID=%q fetches=%d", c.KeyID, srv.hits.Load())
	}
	// Known kids need no fetch.
	if _, err := v.Verify(context.Background(), mint(t, es, iss)); err != nil || srv.hits.Load() != 2 {
		t.Fatalf("err=%v fetches=%d", err, srv.hits.Load())
	}
}

func TestVerify_UnknownKidFlood(t *testing.T) {
	es, _, _ := testKeys(t)
	t.Run("FakeClock", func(t *testing.T) {
		srv := newJWKSServer(t, es)
		iss := srv.Issuer("acme")
		clock := newFakeClock()
		const interval = 10 * time.Second
		v := newVerifier(t, srv, jwks.WithClock(clock.Now), jwks.WithMinRefreshInterval(interval))
		start := clock.Now()
		for i := range 1000 {
			token := mint(t, attackerES, iss, hdr("kid", fmt.Sprintf("junk-%d-%x", i, time.Now().UnixNano())))
			_, err := v.Verify(context.Background(), token)
			wantRefused(t, err, jwks.ErrUnknownKey, token)
			clock.Advance(37 * time.Millisecond)
		}
		elapsed := clock.Now().Sub(start)
		limit := int64((elapsed+interval-1)/interval) + 1
		if got := srv.hits.Load(); got > limit || got < 2 {
			t.Fatalf("1000 junk kids over %v caused %d fetches, want 2..%d", elapsed, got, limit)
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		srv := newJWKSServer(t, es)
		iss := srv.Issuer("acme")
		const interval = 20 * time.Millisecond
		v := newVerifier(t, srv, jwks.WithMinRefreshInterval(interval))
		tokens := make([]string, 1000)
		for i := range tokens {
			tokens[i] = mint(t, attackerES, iss, hdr("kid", fmt.Sprintf("junk-%d", i)))
		}
		var next atomic.Int64
		start := time.Now()
		done := make(chan struct{})
		for range 8 {
			go func() {
				defer func() { done <- struct{}{} }()
				for {
					i := next.Add(1) - 1
					if i >= int64(len(tokens)) {
						return
					}
					if _, err := v.Verify(context.Background(), tokens[i]); !errors.Is(err, jwks.ErrUnknownKey) {
						t.Errorf("err=%v, want ErrUnknownKey", err)
					}
				}
			}()
		}
		for range 8 {
			<-done
		}
		elapsed := time.Since(start)
		limit := int64((elapsed+interval-1)/interval) + 1
		if got := srv.hits.Load(); got > limit {
			t.Fatalf("1000 junk kids over %v caused %d fetches, want at most %d", elapsed, got, limit)
		}
	})
}

func TestVerify_StaleSetServedWhenIssuerFails(t *testing.T) {
	es, _, _ := testKeys(t)
	srv := newJWKSServer(t, es)
	srv.SetCacheControl("public, max-age=120")
	iss := srv.Issuer("acme")
	clock := newFakeClock()
	v := newVerifier(t, srv, jwks.WithClock(clock.Now))
	if _, err := v.Verify(context.Background(), mint(t, es, iss)); err != nil {
		t.Fatal(err)
	}
	srv.SetFail(true)
	clock.Advance(121 * time.Second) // the cached set has expired
	for range 5 {
		if _, err := v.Verify(context.Background(), mint(t, es, iss)); err != nil {
			t.Fatalf("stale set not served: %v", err)
		}
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("fetches=%d, want 2 (the first, one failed refresh)", got)
	}
	clock.Advance(jwks.DefaultMinRefreshInterval)
	if _, err := v.Verify(context.Background(), mint(t, es, iss)); err != nil {
		t.Fatal(err)
	}
	if got := srv.hits.Load(); got != 3 {
		t.Fatalf("fetches=%d, want 3 (retried after MinRefreshInterval)", got)
	}
	srv.SetFail(false)
	clock.Advance(jwks.DefaultMinRefreshInterval)
	if _, err := v.Verify(context.Background(), mint(t, es, iss)); err != nil || srv.hits.Load() != 4 {
		t.Fatalf("err=%v fetches=%d, want a good fetch", err, srv.hits.Load())
	}
}

func TestVerify_KeysUnavailable(t *testing.T) {
	es, _, _ := testKeys(t)
	srv := newJWKSServer(t, es)
	srv.SetFail(true)
	iss := srv.Issuer("acme")
	clock := newFakeClock()
	v := newVerifier(t, srv, jwks.WithClock(clock.Now))
	token := mint(t, es, iss)
	for range 3 {
		_, err := v.Verify(context.Background(), token)
		wantRefused(t, err, jwks.ErrKeysUnavailable, token)
	}
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("fetches=%d, want 1: failures are not retried within MinRefreshInterval", got)
	}
	srv.SetFail(false)
	clock.Advance(jwks.DefaultMinRefreshInterval)
	if _, err := v.Verify(context.Background(), token); err != nil {
		t.Fatal(err)
	}
}

func TestNewVerifier_Errors(t *testing.T) {
	set, err := jwks.NewKeySet(nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, opts := range map[string][]jwks.Option{
		"NoIssuer":             nil,
		"EmptyIssuerList":      {jwks.WithIssuer()},
		"EmptyIssuer":          {jwks.WithIssuer("")},
		"IssuerNotURL":         {jwks.WithIssuer("acme")},
		"IssuerNotHTTP":        {jwks.WithIssuer("file:///etc/passwd")},
		"NilIssuerFunc":        {jwks.WithIssuerFunc(nil)},
		"NegativeLeeway":       {jwks.WithIssuer("https://x.example"), jwks.WithLeeway(-time.Second)},
		"HugeLeeway":           {jwks.WithIssuer("https://x.example"), jwks.WithLeeway(time.Hour)},
		"EmptyAudience":        {jwks.WithIssuer("https://x.example"), jwks.WithAudience("")},
		"NilSource":            {jwks.WithIssuer("https://x.example"), jwks.WithSource(nil)},
		"NilClock":             {jwks.WithIssuer("https://x.example"), jwks.WithClock(nil)},
		"SourceAndHTTPClient":  {jwks.WithIssuer("https://x.example"), jwks.WithSource(jwks.StaticKeySet(set)), jwks.WithHTTPClient(http.DefaultClient)},
		"SourceAndMinRefresh":  {jwks.WithIssuer("https://x.example"), jwks.WithSource(jwks.StaticKeySet(set)), jwks.WithMinRefreshInterval(time.Second)},
		"SourceAndMaxResponse": {jwks.WithIssuer("https://x.example"), jwks.WithSource(jwks.StaticKeySet(set)), jwks.WithMaxResponseSize(10)},
	} {
		if _, err := jwks.NewVerifier(opts...); err == nil {
			t.Errorf("%s: NewVerifier succeeded", name)
		}
	}
	// Any issuer string is fine with a Source that is not remote.
	if _, err := jwks.NewVerifier(jwks.WithIssuer("acme"), jwks.WithSource(jwks.StaticKeySet(set)), jwks.WithClock(time.Now)); err != nil {
		t.Fatal(err)
	}
}

func TestVerify_InProcessSource(t *testing.T) {
	es, ed, _ := testKeys(t)
	set, err := jwks.NewKeySet([]jwks.PublicKey{es.public()})
	if err != nil {
		t.Fatal(err)
	}
	const iss = "http://keymint.internal/orgs/acme"
	var refreshes atomic.Int64
	src := jwks.SourceFunc(func(ctx context.Context, issuer string, refresh bool) (*jwks.KeySet, error) {
		if refresh {
			refreshes.Add(1)
		}
		return jwks.StaticSource{iss: set}.KeySet(ctx, issuer, refresh)
	})
	v, err := jwks.NewVerifier(jwks.WithIssuer(iss), jwks.WithSource(src))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), mint(t, es, iss)); err != nil {
		t.Fatal(err)
	}
	token := mint(t, ed, iss)
	_, err = v.Verify(context.Background(), token)
	wantRefused(t, err, jwks.ErrUnknownKey, token)
	if refreshes.Load() != 1 {
		t.Fatalf("refreshes=%d, want 1", refreshes.Load())
	}

	// A StaticSource without the issuer: keys unavailable.
	v, err = jwks.NewVerifier(jwks.WithIssuer(iss), jwks.WithSource(jwks.StaticSource{}))
	if err != nil {
		t.Fatal(err)
	}
	token = mint(t, es, iss)
	_, err = v.Verify(context.Background(), token)
	wantRefused(t, err, jwks.ErrKeysUnavailable, token)
}

func TestVerify_ScopesNeverGrantedWhenMalformed(t *testing.T) {
	es, _, _ := testKeys(t)
	set, _ := jwks.NewKeySet([]jwks.PublicKey{es.public()})
	const iss = "https://keymint.example/orgs/acme"
	v, err := jwks.NewVerifier(jwks.WithIssuer(iss), jwks.WithSource(jwks.StaticKeySet(set)))
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(context.Background(), mint(t, es, iss, claim("scope", "*:* ADMIN devices:read: :read devices:")))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Scopes.String(), "*:*"; got != want {
		t.Fatalf("Scopes=%q, want %q", got, want)
	}
	c, err = v.Verify(context.Background(), mint(t, es, iss, claim("scope", "Devices:READ   devices:read")))
	if err != nil {
		t.Fatal(err)
	}
	if c.Allows("devices:write") || !c.Allows("devices/1:read") || len(c.Scopes) != 1 {
		t.Fatalf("Scopes=%v", c.Scopes)
	}
	if !c.Scopes.Allows(keys.MustParseScope("devices:read")) {
		t.Fatal("devices:read not allowed")
	}
	var nilClaims *jwks.Claims
	if nilClaims.Allows("devices:read") || nilClaims.HasAudience(iss) {
		t.Fatal("nil Claims allow")
	}
}

func TestVerify_ContextCancelledWaitingForFetch(t *testing.T) {
	es, _, _ := testKeys(t)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	iss := srv.URL + "/orgs/acme"
	v, err := jwks.NewVerifier(jwks.WithIssuer(iss), jwks.WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	token := mint(t, es, iss)
	_, err = v.Verify(ctx, token)
	wantRefused(t, err, jwks.ErrKeysUnavailable, token)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err=%v, want DeadlineExceeded", err)
	}
}
