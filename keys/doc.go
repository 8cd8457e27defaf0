// Package keys is keymint's domain: orgs and their policy, API keys, the
// secret format, secret hashing, the scope grammar and roles. It does no
// I/O and imports only the standard library and uuid.
//
// # Secrets
//
// A secret is "km_sk_" (or "km_pk_") followed by the unpadded base64url
// encoding of the key id (16 bytes, a UUIDv7), 32 random bytes from
// crypto/rand, and a CRC32-C checksum (4 bytes) of everything before it.
// ParseSecret checks the shape and checksum before any lookup, so a typo
// or a random string never reaches storage. Only an HMAC-SHA256 of the
// secret under a server pepper is stored (Hasher), compared in constant
// time.
//
// # Scopes
//
// A scope is "resource:action". Scope.Matches implements the grant rule of
// the product specification: equal actions or "*", and the scope's
// resource segments a prefix of the permission's, "*" matching any one
// segment. Scopes.Covers is the no-escalation check.
package keys
