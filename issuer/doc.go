// Package issuer is keymint's application core. It turns API keys into
// signed JWTs: it bootstraps orgs, creates keys, checks secrets, and mints
// tokens with golang-jwt/jwt/v5.
//
// # Signing keys
//
// Each org has signing keypairs (ES256 by default; EdDSA and RS256 on
// request). Private keys are stored only as PKCS#8 sealed with AES-256-GCM
// under the master key, bound to their org and kid. The Keyring decrypts
// and parses each key once and caches it; minting never touches disk.
//
// # Master key
//
// The master key seals signing keys and derives, by HMAC, the pepper that
// API key secrets are hashed under. CheckMasterKey records a check value
// on first start, so a later start with another master key fails loudly
// instead of serving keys it cannot open.
//
// # Tokens
//
// A token's header is {alg, kid, typ: "at+jwt"} (RFC 9068); its claims are
// iss, sub, client_id, aud, exp, iat, nbf, jti, org, role, scope and the
// key's custom claims. It never outlives its key.
package issuer

import "crypto/rand"

var cryptoRand = rand.Reader
