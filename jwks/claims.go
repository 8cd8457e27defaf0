package jwks

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/keymint/keymint/keys"
)

// Claims are the verified claims of a keymint access token (RFC 9068 plus
// keymint's own).
type Claims struct {
	Issuer    string   // iss: {public_url}/orgs/{org}
	Subject   string   // sub: the API key id
	ClientID  string   // client_id: the API key id
	Org       string   // org
	Role      string   // role
	ID        string   // jti
	Audience  []string // aud, a string or an array in the token
	ExpiresAt time.Time
	IssuedAt  time.Time // zero if the token has no iat
	NotBefore time.Time // zero if the token has no nbf

	// Scope is the scope claim as sent: space-separated scopes.
	Scope string
	// Scopes are the parsed scopes of Scope. A scope that does not parse
	// is dropped, never granted.
	Scopes keys.Scopes

	// KeyID is the kid of the key that signed the token.
	KeyID string

	// Custom holds the claims other than the ones above (the API key's
	// custom claims), as encoding/json decodes them; nil if there are none.
	Custom map[string]any
}

// Allows reports whether the token's scopes grant permission, a
// "resource:action" scope such as "devices/42:read". It is false if
// permission does not parse.
func (c *Claims) Allows(permission string) bool {
	if c == nil {
		return false
	}
	p, err := keys.ParseScope(permission)
	if err != nil {
		return false
	}
	return c.Scopes.Allows(p)
}

// HasAudience reports whether aud is one of the token's audiences.
func (c *Claims) HasAudience(aud string) bool {
	return c != nil && slices.Contains(c.Audience, aud)
}

// The claims that have fields in Claims; everything else is Custom.
const (
	claimIss = 1 << iota
	claimSub
	claimAud
	claimExp
	claimNbf
	claimIat
	claimJti
	claimClientID
	claimOrg
	claimRole
	claimScope
)

func claimBit(name string) int {
	switch name {
	case "iss":
		return claimIss
	case "sub":
		return claimSub
	case "aud":
		return claimAud
	case "exp":
		return claimExp
	case "nbf":
		return claimNbf
	case "iat":
		return claimIat
	case "jti":
		return claimJti
	case "client_id":
		return claimClientID
	case "org":
		return claimOrg
	case "role":
		return claimRole
	case "scope":
		return claimScope
	}
	return 0
}

var (
	errClaimsJSON   = invalid(ErrMalformed, "claims set is not a JSON object")
	errClaimType    = invalid(ErrMalformed, "claim of the wrong type")
	errClaimDup     = invalid(ErrMalformed, "duplicate claim")
	errClaimsTooBig = invalid(ErrMalformed, "too many custom claims")
)

// maxCustomClaims bounds the members a claims set may have beyond
// keymint's own (the API key's custom claims are at most 2 KiB).
const maxCustomClaims = 64

// parsed holds what parseClaims reads besides the Claims fields.
type parsed struct {
	seen      int // claim bits
	custom    bool
	exp       time.Time
	nbf, iat  time.Time
	audSingle string
}

// parseClaims decodes the claims set s into c, once, refusing duplicate
// members. Strings in c are substrings of s.
func parseClaims(s string, c *Claims) (p parsed, err error) {
	var customNames [16]string
	var extra map[string]bool // names past customNames
	nCustom := 0
	sc := scanner{s: s}
	err = sc.members(func(name string) error {
		bit := claimBit(name)
		if bit == 0 {
			for _, prev := range customNames[:min(nCustom, len(customNames))] {
				if prev == name {
					return errClaimDup
				}
			}
			if nCustom >= len(customNames) {
				if extra == nil {
					extra = make(map[string]bool)
				}
				if extra[name] {
					return errClaimDup
				}
				extra[name] = true
			} else {
				customNames[nCustom] = name
			}
			nCustom++
			if nCustom > maxCustomClaims {
				return errClaimsTooBig
			}
			p.custom = true
			return sc.skip(0)
		}
		if p.seen&bit != 0 {
			return errClaimDup
		}
		p.seen |= bit
		var err error
		switch bit {
		case claimIss:
			c.Issuer, err = sc.str()
		case claimSub:
			c.Subject, err = sc.str()
		case claimJti:
			c.ID, err = sc.str()
		case claimClientID:
			c.ClientID, err = sc.str()
		case claimOrg:
			c.Org, err = sc.str()
		case claimRole:
			c.Role, err = sc.str()
		case claimScope:
			c.Scope, err = sc.str()
		case claimExp:
			p.exp, err = sc.numericDate()
		case claimNbf:
			p.nbf, err = sc.numericDate()
		case claimIat:
			p.iat, err = sc.numericDate()
		case claimAud:
			err = parseAudience(&sc, c, &p)
		}
		if err != nil {
			return errClaimType
		}
		return nil
	})
	if err == errJSON {
		err = errClaimsJSON
	}
	return p, err
}

// parseAudience reads aud, a string or an array of strings. A single
// string is kept in p.audSingle so that Verify can check it before
// allocating Claims.Audience.
func parseAudience(sc *scanner, c *Claims, p *parsed) error {
	if sc.peek() == '"' {
		v, err := sc.str()
		p.audSingle = v
		return err
	}
	if !sc.consume('[') {
		return errJSON
	}
	if sc.consume(']') {
		c.Audience = []string{}
		return nil
	}
	for {
		v, err := sc.str()
		if err != nil {
			return err
		}
		c.Audience = append(c.Audience, v)
		if sc.consume(',') {
			continue
		}
		if sc.consume(']') {
			return nil
		}
		return errJSON
	}
}

// parseScopes parses the space-separated scope claim, dropping scopes
// that do not parse.
func parseScopes(scope string) keys.Scopes {
	n := 0
	for range strings.FieldsSeq(scope) {
		n++
	}
	if n == 0 {
		return nil
	}
	out := make(keys.Scopes, 0, n)
	for f := range strings.FieldsSeq(scope) {
		if sc, err := keys.ParseScope(f); err == nil {
			out = append(out, sc)
		}
	}
	return out
}

// customClaims decodes the members of the claims set that have no field
// in Claims. Duplicates were refused by parseClaims.
func customClaims(payload string) (map[string]any, error) {
	var m map[string]any
	if err := json.Unmarshal([]byte(payload), &m); err != nil {
		return nil, err
	}
	for name := range m {
		if claimBit(name) != 0 {
			delete(m, name)
		}
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}
