package jwks_test

import (
	"context"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwk"
	jwxjwt "github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/keymint/keymint/jwks"
)

// BenchmarkVerify measures Verify with the key set cached (warm) and with
// a fresh Verifier that first fetches the JWKS from a local server (cold).
// Compare warm with BenchmarkRawJWX.
func BenchmarkVerify(b *testing.B) {
	es, ed, rs := testKeys(b)
	srv := newJWKSServer(b, es, ed, rs)
	iss := srv.Issuer("acme")
	ctx := context.Background()
	for _, k := range []testKey{es, ed, rs} {
		token := mint(b, k, iss)
		b.Run(k.alg, func(b *testing.B) {
			b.Run("warm", func(b *testing.B) {
				v := newVerifier(b, srv)
				if _, err := v.Verify(ctx, token); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := v.Verify(ctx, token); err != nil {
						b.Fatal(err)
					}
				}
			})
			if k.alg != jwks.AlgES256 {
				return
			}
			b.Run("cold", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					v := newVerifier(b, srv)
					if _, err := v.Verify(ctx, token); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkRawJWX verifies the same tokens with jwx's own jwt.Parse and
// the same three-key set: the baseline for BenchmarkVerify/*/warm. (It
// checks less: not typ, iss, aud or duplicate members.)
func BenchmarkRawJWX(b *testing.B) {
	es, ed, rs := testKeys(b)
	data, err := jwks.Marshal([]jwks.PublicKey{es.public(), ed.public(), rs.public()})
	if err != nil {
		b.Fatal(err)
	}
	set, err := jwk.Parse(data)
	if err != nil {
		b.Fatal(err)
	}
	const iss = "https://keymint.example/orgs/acme"
	for _, k := range []testKey{es, ed, rs} {
		token := mint(b, k, iss)
		b.Run(k.alg, func(b *testing.B) {
			if _, err := jwxjwt.Parse([]byte(token), jwxjwt.WithKeySet(set)); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := jwxjwt.Parse([]byte(token), jwxjwt.WithKeySet(set)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
