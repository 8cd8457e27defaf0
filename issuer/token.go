package issuer

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/keymint/keymint/keys"
)

// TokenType is the JWT "typ" header of every token keymint mints (RFC 9068).
const TokenType = "at+jwt"

// Token is a minted access token.
type Token struct {
	Raw       string
	ExpiresAt time.Time
	IssuedAt  time.Time
	Scope     string
	Audience  string
}

// tokenClaims is the claim set of RFC 9068 plus keymint's own claims and
// the key's custom claims, which are spliced into the JSON object.
type tokenClaims struct {
	jwt.RegisteredClaims
	ClientID string `json:"client_id"`
	Org      string `json:"org"`
	Role     string `json:"role"`
	Scope    string `json:"scope"`

	custom json.RawMessage
}

type plainClaims tokenClaims // without the MarshalJSON method

func (c tokenClaims) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(plainClaims(c))
	if err != nil || len(c.custom) <= 2 {
		return b, err
	}
	// Both are JSON objects; custom names were checked against ours on
	// write, so splicing cannot duplicate a claim.
	custom := bytes.TrimSpace(c.custom)
	if len(custom) <= 2 || custom[0] != '{' {
		return b, nil
	}
	out := make([]byte, 0, len(b)+len(custom))
	out = append(out, b[:len(b)-1]...)
	out = append(out, ',')
	out = append(out, custom[1:]...)
	return out, nil
}

// mintParams are the resolved inputs of one token.
type mintParams struct {
	issuer   string
	audience string
	scope    string
	ttl      time.Duration
	key      keys.APIKey
	now      time.Time
}

// mint signs a token for p with the org's active key. The token never
// outlives the API key.
func (r *Keyring) mint(ctx context.Context, p mintParams) (Token, error) {
	s, err := r.activeSigner(ctx, p.key.Org)
	if err != nil {
		return Token{}, err
	}
	now := p.now.Truncate(time.Second)
	exp := now.Add(p.ttl)
	if p.key.ExpiresAt != nil && p.key.ExpiresAt.Before(exp) {
		exp = p.key.ExpiresAt.Truncate(time.Second)
	}
	claims := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    p.issuer,
			Subject:   p.key.ID,
			Audience:  jwt.ClaimStrings{p.audience},
			ExpiresAt: jwt.NewNumericDate(exp),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        uuid.NewString(),
		},
		ClientID: p.key.ID,
		Org:      p.key.Org,
		Role:     p.key.Role,
		Scope:    p.scope,
		custom:   p.key.Claims,
	}
	t := jwt.NewWithClaims(s.method, claims)
	t.Header["kid"] = s.kid
	t.Header["typ"] = TokenType
	start := time.Now()
	raw, err := t.SignedString(s.key)
	r.observer.Signed(s.alg, time.Since(start))
	if err != nil {
		return Token{}, err
	}
	return Token{Raw: raw, ExpiresAt: exp, IssuedAt: now, Scope: p.scope, Audience: p.audience}, nil
}
