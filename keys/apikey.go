package keys

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// APIKey is a long-lived credential of an org. Only hashes of its secrets
// are ever stored.
type APIKey struct {
	ID           string          `json:"id"`
	Org          string          `json:"org"`
	Name         string          `json:"name"`
	Type         KeyType         `json:"type"`
	Role         string          `json:"role"`
	Scopes       []string        `json:"scopes"`
	AllowedCIDRs []string        `json:"allowed_cidrs"`
	ExpiresAt    *time.Time      `json:"expires_at,omitempty"`
	Enabled      bool            `json:"enabled"`
	Claims       json.RawMessage `json:"claims,omitempty"`
	CreatedBy    string          `json:"created_by"`
	UpdatedBy    string          `json:"updated_by"`
	CreatedAt    time.Time       `json:"created_at"`
	UpdatedAt    time.Time       `json:"updated_at"`
	RevokedAt    *time.Time      `json:"revoked_at,omitempty"`
	LastUsedAt   *time.Time      `json:"last_used_at,omitempty"`
	MaskedValue  string          `json:"masked_value"`

	// SecretHash is the MAC of the current secret. PrevSecretHash, while
	// PrevSecretUntil is in the future, is the MAC of the secret it
	// replaced on a roll.
	SecretHash      []byte     `json:"secret_hash"`
	PrevSecretHash  []byte     `json:"prev_secret_hash,omitempty"`
	PrevSecretUntil *time.Time `json:"prev_secret_until,omitempty"`
}

// Status derives the key's state at now. Revoked wins over disabled, which
// wins over expired.
func (k APIKey) Status(now time.Time) Status {
	switch {
	case k.RevokedAt != nil:
		return StatusRevoked
	case !k.Enabled:
		return StatusDisabled
	case k.ExpiresAt != nil && !now.Before(*k.ExpiresAt):
		return StatusExpired
	default:
		return StatusActive
	}
}

// ExpiresSoon reports whether the key expires within warn of now.
func (k APIKey) ExpiresSoon(now time.Time, warn time.Duration) bool {
	return k.ExpiresAt != nil && k.ExpiresAt.After(now) && k.ExpiresAt.Sub(now) <= warn
}

// EffectiveScopes returns the role's scopes plus the key's own. Stored
// scopes were validated on write; an unparsable one is skipped, never
// granted.
func (k APIKey) EffectiveScopes() Scopes {
	own := make(Scopes, 0, len(k.Scopes))
	for _, s := range k.Scopes {
		if sc, err := ParseScope(s); err == nil {
			own = append(own, sc)
		}
	}
	return EffectiveScopes(k.Role, own)
}

// SecretMatches reports whether s is this key's current secret, or its
// previous one inside the roll grace window. Comparison is constant time.
func (k APIKey) SecretMatches(h *Hasher, s Secret, now time.Time) bool {
	if s.KeyID != k.ID {
		return false
	}
	sum := h.Hash(s)
	cur := hmacEqual(sum, k.SecretHash)
	prev := k.PrevSecretUntil != nil && now.Before(*k.PrevSecretUntil) && hmacEqual(sum, k.PrevSecretHash)
	return cur || prev
}

// MaxClaimsSize is the largest custom claims object, in bytes of JSON.
const MaxClaimsSize = 2048

// reservedClaims may not appear in a key's custom claims: the registered
// JWT claims and keymint's own.
var reservedClaims = map[string]bool{
	"iss": true, "sub": true, "aud": true, "exp": true, "nbf": true, "iat": true, "jti": true,
	"client_id": true, "org": true, "role": true, "scope": true, "scp": true,
	"typ": true, "cnf": true, "azp": true, "auth_time": true, "act": true, "may_act": true,
}

// KeySpec is what a caller may set on a key: the fields of a create, and
// of an update once merged with the stored key.
type KeySpec struct {
	Name         string
	Type         KeyType
	Role         string
	Scopes       []string
	AllowedCIDRs []string
	ExpiresAt    *time.Time
	Claims       json.RawMessage
}

// Normalized returns s with the name trimmed, scopes and CIDRs in
// canonical form where they parse, and claims compacted.
func (s KeySpec) Normalized() KeySpec {
	s.Name = NormalizeName(s.Name)
	if s.Scopes == nil {
		s.Scopes = []string{}
	}
	if s.AllowedCIDRs == nil {
		s.AllowedCIDRs = []string{}
	}
	cidrs := make([]string, len(s.AllowedCIDRs))
	for i, c := range s.AllowedCIDRs {
		cidrs[i] = c
		if p, _, err := ParseCIDR(c); err == nil {
			cidrs[i] = p.String()
		}
	}
	s.AllowedCIDRs = cidrs
	if len(s.Claims) > 0 {
		var b bytes.Buffer
		if json.Compact(&b, s.Claims) == nil {
			s.Claims = b.Bytes()
		}
	}
	return s
}

// Validate checks a normalized spec against the org's policy at now, as
// for a new key (isNew) or an update. It returns a *ValidationError naming
// each bad field, and the warnings to show the caller.
func (s KeySpec) Validate(p Policy, now time.Time, isNew bool) (warnings []string, err error) {
	var v ValidationError
	if msg := checkName(s.Name); msg != "" {
		v.Add("name", "%s", msg)
	}
	if !s.Type.Valid() {
		v.Add("type", "must be sk or pk")
	}
	if _, ok := RoleScopes(s.Role); !ok && s.Role != "" {
		v.Add("role", "unknown role %q; known roles: %s", s.Role, strings.Join(RoleNames(), ", "))
	}
	if s.Role == "" && len(s.Scopes) == 0 {
		v.Add("role", "a key needs a role or at least one scope")
	}
	if len(s.Scopes) > MaxScopes {
		v.Add("scopes", "at most %d scopes", MaxScopes)
	}
	for i, str := range s.Scopes {
		sc, err := ParseScope(str)
		if err != nil {
			v.Add(fmt.Sprintf("scopes[%d]", i), "%q is not resource:action (segments [a-z0-9_.-]+ or *, action a word or *)", str)
			continue
		}
		if s.Type == TypePublishable && sc.Action != "read" {
			v.Add(fmt.Sprintf("scopes[%d]", i), "a pk key may hold only :read scopes")
		}
	}
	if s.Type == TypePublishable {
		if rs, ok := RoleScopes(s.Role); ok {
			for _, sc := range rs {
				if sc.Action != "read" {
					v.Add("role", "a pk key may hold only :read scopes; use role viewer")
					break
				}
			}
		}
	}
	if len(s.AllowedCIDRs) > 100 {
		v.Add("allowed_cidrs", "at most 100 ranges")
	}
	for i, c := range s.AllowedCIDRs {
		_, wild, err := ParseCIDR(c)
		if err != nil {
			v.Add(fmt.Sprintf("allowed_cidrs[%d]", i), "%s", err.Error())
		} else if wild {
			warnings = append(warnings, fmt.Sprintf("allowed_cidrs[%d] %s allows every address of its family", i, c))
		}
	}
	switch {
	case s.ExpiresAt == nil:
		if p.RequireExpiry {
			v.Add("expires_at", "required by the org's policy (require_expiry)")
		}
	case !s.ExpiresAt.After(now):
		if isNew {
			v.Add("expires_at", "must be in the future")
		}
	case s.ExpiresAt.Sub(now) > time.Duration(p.MaxKeyLifetime):
		v.Add("expires_at", "must be within the org's max_key_lifetime (%s) from now", time.Duration(p.MaxKeyLifetime))
	}
	if len(s.Claims) > 0 {
		validateClaims(s.Claims, &v)
	}
	return warnings, v.Err()
}

func validateClaims(raw json.RawMessage, v *ValidationError) {
	if len(raw) > MaxClaimsSize {
		v.Add("claims", "at most %d bytes of JSON", MaxClaimsSize)
		return
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		v.Add("claims", "must be a JSON object")
		return
	}
	for name := range m {
		if reservedClaims[strings.ToLower(name)] {
			v.Add("claims."+name, "is a registered or keymint claim and cannot be set")
		} else if name == "" || len(name) > 100 {
			v.Add("claims", "claim names must be 1 to 100 characters")
		}
	}
}

// Actors recorded as created_by, updated_by and in audit events besides
// API key ids: the operator's root key, and an unauthenticated caller (a
// failed exchange).
const (
	RootActor      = "root"
	AnonymousActor = "anonymous"
)
