// Package jwks publishes keymint's signing keys as a JWK Set and verifies
// keymint access tokens offline against it.
//
// Downstream Go services import it to check the tokens clients bring them
// without calling keymint; keymint's own management routes use the same
// Verifier with an in-process Source. It imports only the standard
// library, github.com/lestrrat-go/jwx/v3 and keymint's keys package (for
// scope matching); the echo middleware lives in the jwksecho subpackage.
//
// # Publishing
//
// Marshal turns public keys into the JWK Set an org serves at
// {issuer}/.well-known/jwks.json:
//
//	b, err := jwks.Marshal([]jwks.PublicKey{{KID: kid, Alg: jwks.AlgES256, Key: &priv.PublicKey}})
//
// Each key gets its kid, its alg and "use":"sig", and nothing but public
// members. Marshal refuses private and symmetric keys outright rather than
// deriving their public half, so a private key handed to it by mistake is
// an error, not a leak. NewKeySet builds a KeySet from the same
// PublicKeys without going through JSON; ParseKeySet parses a served set.
//
// keymint signs with exactly three algorithms, each tied to one key type,
// and a KeySet keeps only keys that pair them correctly: ES256 with ECDSA
// P-256, EdDSA with Ed25519, RS256 with RSA of at least 2048 bits. Other
// algorithms (ES384, ES512, PS256, …) are not accepted, even correctly
// paired: keymint never mints them, and each accepted algorithm would be
// attack surface for nothing. ParseKeySet skips keys it cannot use (no
// kid, no alg, an unknown kty, another use) as RFC 7517 §5 recommends,
// but fails on the whole set if any key is symmetric or carries private
// members, or if a kid appears twice.
//
// # Verifying
//
// A Verifier is made once and shared:
//
//	v, err := jwks.NewVerifier(jwks.WithIssuer("https://keymint.example.com/orgs/acme"))
//	...
//	claims, err := v.Verify(ctx, token)
//	if errors.Is(err, jwks.ErrInvalidToken) { /* 401 */ }
//	if !claims.Allows("devices/42:read") { /* 403 */ }
//
// WithIssuer lists the issuers accepted, exactly; WithIssuerFunc decides
// by function (keymint itself accepts any of its orgs). The expected
// audience is set with WithAudience; without it, it is the token's own
// issuer, which is the audience keymint puts in tokens by default.
//
// Keys come from a Source, by default a RemoteSource, which fetches
// {issuer}/.well-known/jwks.json, caches it for the response's
// Cache-Control max-age (clamped to one minute to one hour, five minutes
// without one), keeps serving the last good set while the issuer is
// unreachable, and fetches an issuer's JWKS at most once per
// MinRefreshInterval (10 s by default) however many tokens with unknown
// kids arrive. StaticKeySet, StaticSource and SourceFunc serve key sets
// from memory.
//
// Every error Verify returns wraps ErrInvalidToken and one specific
// sentinel (ErrMalformed, ErrUnsupportedAlg, ErrForbiddenHeader,
// ErrWrongType, ErrUnknownKey, ErrKeysUnavailable, ErrSignature,
// ErrIssuer, ErrAudience, ErrExpired, ErrNotYetValid), so errors.Is
// matches both. Error messages never contain the token or its claims.
//
// Verify decodes header and claims itself, once each, and checks the
// signature with the jwx verifier for the key's algorithm, looked up when
// the key set is built. A warm Verify costs little more than the
// signature check itself.
//
// # Security rules
//
// Verify follows RFC 8725 (JWT best current practices) and RFC 9068 (JWT
// access tokens). A token must pass all of these, in this order:
//
//   - Compact serialization only: exactly three base64url parts, with no
//     padding, white space or non-canonical encoding. JSON serialization
//     and JWE (five parts) are refused (ErrMalformed).
//   - The header must be a JSON object without duplicate members
//     (ErrMalformed). The headers jwk, jku, x5u, x5c, x5t and x5t#S256 are
//     refused, never trusted or fetched; so are crit and b64, and case
//     variants of any header name Verify knows (ErrForbiddenHeader).
//   - alg must be ES256, EdDSA or RS256: none and HS256/384/512 are
//     refused (ErrUnsupportedAlg); typ must be at+jwt or
//     application/at+jwt, in any case (ErrWrongType); kid is required
//     (ErrUnknownKey).
//   - The claims set must be a JSON object without duplicate members.
//     Its iss, read before the signature is checked and only to choose
//     the key set, must exactly match an allowed issuer before any key set
//     is looked up, so an attacker's iss never causes a fetch (ErrIssuer).
//   - The key is looked up by kid only in that issuer's key set; an unknown
//     kid makes one refresh request to the Source, then fails
//     (ErrUnknownKey). The token's alg must equal the alg the key was
//     published with, so a key is never used with another algorithm: no
//     HS256 keyed with a public key, no RS256 header on an ES256 key
//     (ErrUnsupportedAlg).
//   - The signature must verify (ErrSignature).
//   - exp is required and must not have passed (ErrExpired); nbf and iat,
//     if present, must not lie in the future (ErrNotYetValid); each with
//     the leeway (30 s by default, WithLeeway). aud must contain the
//     expected audience (ErrAudience); sub is required (ErrMalformed).
//
// Scopes in the scope claim that do not parse as keys.Scope are dropped,
// never granted.
//
// # Middleware
//
// RequireScope protects a net/http handler:
//
//	mux.Handle("GET /devices/{id}", jwks.RequireScope(v, "devices:read")(handler))
//
// A request without a bearer token gets 401 with WWW-Authenticate: Bearer;
// one whose token is refused gets 401 with error="invalid_token"; one
// whose token lacks a permission gets 403 with error="insufficient_scope"
// and the required scopes. Refusals carry an RFC 9457
// application/problem+json body with the same detail whatever the reason.
// The handler finds the claims with ClaimsFromContext. Package jwksecho
// does the same for echo.
package jwks
