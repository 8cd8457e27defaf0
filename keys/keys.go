package keys

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Domain errors. A FieldError names the offending field and wraps one of
// these, so callers can both show the field and match the category.
var (
	ErrInvalid     = errors.New("keys: invalid value")
	ErrInvalidType = errors.New("keys: type must be sk or pk")
)

// FieldError is a validation failure of one named field.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Unwrap makes errors.Is(err, ErrInvalid) true for every FieldError.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// ValidationError collects the field errors of one request.
type ValidationError struct{ Fields []*FieldError }

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Error()
	}
	return "keys: " + strings.Join(parts, "; ")
}

func (e *ValidationError) Unwrap() error { return ErrInvalid }

// Add records a field error.
func (e *ValidationError) Add(field, format string, args ...any) {
	e.Fields = append(e.Fields, &FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// Err returns e if it holds any field error, else nil.
func (e *ValidationError) Err() error {
	if len(e.Fields) == 0 {
		return nil
	}
	return e
}

// KeyType is "sk" (secret key) or "pk" (publishable key, read scopes only).
type KeyType string

const (
	TypeSecret      KeyType = "sk"
	TypePublishable KeyType = "pk"
)

// Valid reports whether t is a known type.
func (t KeyType) Valid() bool { return t == TypeSecret || t == TypePublishable }

// SecretPrefix is the recognisable prefix of this type's secrets.
func (t KeyType) SecretPrefix() string { return "km_" + string(t) + "_" }

// Status is derived from a key's fields and the time; see APIKey.Status.
type Status string

const (
	StatusActive   Status = "active"
	StatusDisabled Status = "disabled"
	StatusExpired  Status = "expired"
	StatusRevoked  Status = "revoked"
)

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string ("15m0s"); it also accepts a trailing "d" for days ("365d") and a
// bare number of seconds.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *Duration) UnmarshalJSON(b []byte) error {
	var n json.Number
	if err := json.Unmarshal(b, &n); err == nil {
		secs, err := n.Int64()
		if err != nil {
			return fmt.Errorf("duration: %w", err)
		}
		*d = Duration(time.Duration(secs) * time.Second)
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("duration: want a string like \"15m\" or \"30d\", or seconds")
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// ParseDuration is time.ParseDuration plus a "d" (24h) unit.
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("duration %q: want a whole number of days", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: %w", s, err)
	}
	return v, nil
}

// Org is a tenant: its keys, signing keys and policy.
type Org struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Alg       string    `json:"alg"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Policy    Policy    `json:"policy"`
	// Limits are the max_keys and max_key_lifetime the operator (root)
	// last set. An org admin may tighten the policy's values, never
	// raise them past these.
	Limits Limits `json:"operator_limits"`
	// LongerTTLTokensUntil is set when token_ttl is lowered: tokens minted
	// under the longer token_ttl may be valid until then, so a signing-key
	// rotation keeps the retiring key published at least as long.
	LongerTTLTokensUntil *time.Time `json:"longer_ttl_tokens_until,omitempty"`
}

// Limits are operator-set ceilings of an org's policy.
type Limits struct {
	MaxKeys        int      `json:"max_keys"`
	MaxKeyLifetime Duration `json:"max_key_lifetime"`
}

var orgIDRe = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,62}$`)

// ValidOrgID reports whether id is an org slug.
func ValidOrgID(id string) bool { return orgIDRe.MatchString(id) }

// Signing algorithms an org may choose.
const (
	AlgES256 = "ES256"
	AlgEdDSA = "EdDSA"
	AlgRS256 = "RS256"
)

// ValidAlg reports whether alg is one keymint signs with.
func ValidAlg(alg string) bool { return alg == AlgES256 || alg == AlgEdDSA || alg == AlgRS256 }

// Validate checks the org's own fields and its policy.
func (o Org) Validate() error {
	var v ValidationError
	if !ValidOrgID(o.ID) {
		v.Add("id", "must match [a-z0-9][a-z0-9-]{1,62}")
	}
	if msg := checkName(o.Name); msg != "" {
		v.Add("name", "%s", msg)
	}
	if !ValidAlg(o.Alg) {
		v.Add("alg", "must be one of ES256, EdDSA, RS256")
	}
	o.Policy.validate(&v)
	return v.Err()
}

// Policy is an org's rules for its keys and tokens.
type Policy struct {
	MaxKeys        int      `json:"max_keys"`
	MaxKeyLifetime Duration `json:"max_key_lifetime"`
	RequireExpiry  bool     `json:"require_expiry"`
	TokenTTL       Duration `json:"token_ttl"`
	// Audiences tokens may be minted for; empty means the issuer URL.
	Audiences     []string `json:"audiences"`
	ExpiryWarning Duration `json:"expiry_warning"`
}

// Policy limits.
const (
	DefaultMaxKeys        = 50
	DefaultMaxKeyLifetime = 365 * 24 * time.Hour
	DefaultTokenTTL       = 15 * time.Minute
	MaxTokenTTL           = 24 * time.Hour
	DefaultExpiryWarning  = 14 * 24 * time.Hour
)

// DefaultPolicy returns the policy of a new org. Its audiences are empty,
// which means the org's issuer URL, whatever the public URL is then.
func DefaultPolicy() Policy {
	return Policy{
		MaxKeys:        DefaultMaxKeys,
		MaxKeyLifetime: Duration(DefaultMaxKeyLifetime),
		RequireExpiry:  true,
		TokenTTL:       Duration(DefaultTokenTTL),
		Audiences:      []string{},
		ExpiryWarning:  Duration(DefaultExpiryWarning),
	}
}

// PolicyPatch changes some fields of a Policy; nil fields stay as they are.
type PolicyPatch struct {
	MaxKeys        *int      `json:"max_keys,omitempty"`
	MaxKeyLifetime *Duration `json:"max_key_lifetime,omitempty"`
	RequireExpiry  *bool     `json:"require_expiry,omitempty"`
	TokenTTL       *Duration `json:"token_ttl,omitempty"`
	Audiences      []string  `json:"audiences,omitempty"`
	ExpiryWarning  *Duration `json:"expiry_warning,omitempty"`
}

// Apply returns p with the patch's fields set.
func (pp PolicyPatch) Apply(p Policy) Policy {
	if pp.MaxKeys != nil {
		p.MaxKeys = *pp.MaxKeys
	}
	if pp.MaxKeyLifetime != nil {
		p.MaxKeyLifetime = *pp.MaxKeyLifetime
	}
	if pp.RequireExpiry != nil {
		p.RequireExpiry = *pp.RequireExpiry
	}
	if pp.TokenTTL != nil {
		p.TokenTTL = *pp.TokenTTL
	}
	if pp.Audiences != nil {
		p.Audiences = append([]string{}, pp.Audiences...) // [] stays [], never null
	}
	if pp.ExpiryWarning != nil {
		p.ExpiryWarning = *pp.ExpiryWarning
	}
	return p
}

func (p Policy) validate(v *ValidationError) {
	if p.MaxKeys < 1 || p.MaxKeys > 100000 {
		v.Add("policy.max_keys", "must be between 1 and 100000")
	}
	if p.MaxKeyLifetime < Duration(time.Hour) {
		v.Add("policy.max_key_lifetime", "must be at least 1h")
	}
	if p.TokenTTL < Duration(time.Minute) || p.TokenTTL > Duration(MaxTokenTTL) {
		v.Add("policy.token_ttl", "must be between 1m and 24h")
	}
	if p.ExpiryWarning < 0 {
		v.Add("policy.expiry_warning", "must not be negative")
	}
	if len(p.Audiences) > 20 {
		v.Add("policy.audiences", "at most 20 audiences")
	}
	for i, a := range p.Audiences {
		if a == "" || len(a) > 512 || strings.ContainsFunc(a, unicode.IsControl) {
			v.Add(fmt.Sprintf("policy.audiences[%d]", i), "must be a non-empty string of at most 512 characters")
		}
	}
}

// Validate checks the policy's bounds.
func (p Policy) Validate() error {
	var v ValidationError
	p.validate(&v)
	return v.Err()
}

// AudiencesFor returns the audiences tokens may carry, the first being the
// default: the policy's list, or the org's issuer URL when it is empty.
func (p Policy) AudiencesFor(issuer string) []string {
	if len(p.Audiences) == 0 {
		return []string{issuer}
	}
	return p.Audiences
}

// NormalizeName trims space; use before checkName and storing.
func NormalizeName(s string) string { return strings.TrimSpace(s) }

// checkName returns "" for a good name, else why it is bad.
func checkName(s string) string {
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	n := utf8.RuneCountInString(s)
	if n < 1 || n > 200 {
		return "must be 1 to 200 characters after trimming"
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		return "must not contain control characters"
	}
	return ""
}

// ParseCIDR parses an IPv4 or IPv6 prefix; a bare address means a single
// host. It returns the masked prefix and whether it is a wildcard.
func ParseCIDR(s string) (netip.Prefix, bool, error) {
	var p netip.Prefix
	var err error
	if strings.Contains(s, "/") {
		p, err = netip.ParsePrefix(s)
	} else {
		var a netip.Addr
		a, err = netip.ParseAddr(s)
		if err == nil {
			p = netip.PrefixFrom(a, a.BitLen())
		}
	}
	if err != nil {
		return netip.Prefix{}, false, fmt.Errorf("%q is not an IPv4 or IPv6 CIDR", s)
	}
	if p.Addr().Zone() != "" {
		return netip.Prefix{}, false, fmt.Errorf("%q: zones are not allowed", s)
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		// ::ffff:a.b.c.d/n is the IPv4 range a.b.c.d/(n-96).
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	p = p.Masked()
	return p, p.Bits() == 0, nil
}

// AllowedFrom reports whether addr falls in one of cidrs; empty allows all.
// IPv4 and IPv6 are matched independently (an IPv4-mapped IPv6 address is
// treated as IPv4).
func AllowedFrom(cidrs []string, addr netip.Addr) bool {
	if len(cidrs) == 0 {
		return true
	}
	addr = addr.Unmap()
	for _, c := range cidrs {
		p, _, err := ParseCIDR(c)
		if err == nil && p.Contains(addr) {
			return true
		}
	}
	return false
}
