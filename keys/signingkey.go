package keys

import "time"

// SigningKeyStatus is where a signing key is in its rotation lifecycle.
type SigningKeyStatus string

const (
	// SigningNext is published in the JWKS but signs nothing yet, so that
	// verifiers' cached key sets know it before its first token.
	SigningNext SigningKeyStatus = "next"
	// SigningActive signs every new token of its org. One per org.
	SigningActive SigningKeyStatus = "active"
	// SigningRetiring signs nothing but stays published until every token
	// it signed has expired (RemoveAfter).
	SigningRetiring SigningKeyStatus = "retiring"
)

// SigningKey is an org's token signing keypair. The private key is stored
// only sealed under the master key.
type SigningKey struct {
	KID       string           `json:"kid"`
	Org       string           `json:"org"`
	Alg       string           `json:"alg"`
	Status    SigningKeyStatus `json:"status"`
	PublicKey []byte           `json:"public_key"`  // PKIX, DER
	Sealed    []byte           `json:"private_key"` // PKCS#8 DER sealed with AES-256-GCM
	CreatedAt time.Time        `json:"created_at"`
	// ActivatedAt is when the key started signing; nil while next.
	ActivatedAt *time.Time `json:"activated_at,omitempty"`
	// RetiredAt is when the key stopped signing; RemoveAfter is when it
	// leaves the JWKS. Both nil unless retiring.
	RetiredAt   *time.Time `json:"retired_at,omitempty"`
	RemoveAfter *time.Time `json:"remove_after,omitempty"`
}

// Published reports whether the key belongs in the org's JWKS at now.
func (k SigningKey) Published(now time.Time) bool {
	return k.Status != SigningRetiring || k.RemoveAfter == nil || now.Before(*k.RemoveAfter)
}
