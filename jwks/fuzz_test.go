package jwks_test

import (
	"context"
	"errors"
	"testing"

	"github.com/keymint/keymint/jwks"
)

// FuzzVerify checks that Verify never panics and that every refusal
// wraps ErrInvalidToken.
func FuzzVerify(f *testing.F) {
	es, ed, rs := testKeys(f)
	const iss = "https://keymint.example/orgs/acme"
	set, err := jwks.NewKeySet([]jwks.PublicKey{es.public(), ed.public(), rs.public()})
	if err != nil {
		f.Fatal(err)
	}
	v, err := jwks.NewVerifier(jwks.WithIssuer(iss), jwks.WithSource(jwks.StaticKeySet(set)))
	if err != nil {
		f.Fatal(err)
	}
	for _, k := range []testKey{es, ed, rs} {
		f.Add(mint(f, k, iss))
	}
	f.Add(signRaw(f, es, `{"alg":"ES256","kid":"es-1","typ":"at+jwt","x":[{"y":null}]}`, `{"iss":"`+iss+`","sub":"s","aud":"`+iss+`","exp":9999999999,"c":{"d":[1,2.5e3,"\u00e9"]}}`))
	f.Add("")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := v.Verify(context.Background(), token)
		if err != nil {
			if !errors.Is(err, jwks.ErrInvalidToken) || c != nil {
				t.Fatalf("Verify=%v, %v", c, err)
			}
			return
		}
		if c == nil || c.Issuer != iss || c.Subject == "" {
			t.Fatalf("accepted claims %+v", c)
		}
	})
}
