package issuer

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"time"

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
}

// tokenClaims is the claim set of RFC 9068 plus keymint's own claims and
// the key's custom claims. It writes its JSON by hand: this runs once per
// exchange, and reflection-based encoding cost more than the rest of
// building the token.
type tokenClaims struct {
	iss, sub, aud, jti string
	exp, nbf, iat      int64
	org, role, scope   string
	custom             json.RawMessage
}

// appendJSON appends the claims as a JSON object to b.
func (c tokenClaims) appendJSON(b []byte) []byte {
	b = append(b, `{"iss":`...)
	b = appendJSONString(b, c.iss)
	b = append(b, `,"sub":`...)
	b = appendJSONString(b, c.sub)
	b = append(b, `,"aud":`...)
	b = appendJSONString(b, c.aud)
	b = append(b, `,"exp":`...)
	b = strconv.AppendInt(b, c.exp, 10)
	b = append(b, `,"nbf":`...)
	b = strconv.AppendInt(b, c.nbf, 10)
	b = append(b, `,"iat":`...)
	b = strconv.AppendInt(b, c.iat, 10)
	b = append(b, `,"jti":`...)
	b = appendJSONString(b, c.jti)
	b = append(b, `,"client_id":`...)
	b = appendJSONString(b, c.sub)
	b = append(b, `,"org":`...)
	b = appendJSONString(b, c.org)
	b = append(b, `,"role":`...)
	b = appendJSONString(b, c.role)
	b = append(b, `,"scope":`...)
	b = appendJSONString(b, c.scope)
	// The custom claims are a JSON object whose names were checked against
	// ours on write, so splicing its members cannot duplicate a claim.
	if custom := bytes.TrimSpace(c.custom); len(custom) > 2 && custom[0] == '{' {
		b = append(b, ',')
		return append(b, bytes.TrimSpace(custom[1:])...)
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string. Plain ASCII is copied;
// anything else goes through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
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
		iss: p.issuer, sub: p.key.ID, aud: p.audience, jti: uuid.NewString(),
		exp: exp.Unix(), nbf: now.Unix(), iat: now.Unix(),
		org: p.key.Org, role: p.key.Role, scope: p.scope, custom: p.key.Claims,
	}
	start := time.Now()
	raw, err := s.sign(claims.appendJSON(nil))
	r.observer.Signed(s.alg, time.Since(start))
	if err != nil {
		return Token{}, err
	}
	return Token{Raw: raw, ExpiresAt: exp, IssuedAt: now, Scope: p.scope}, nil
}
