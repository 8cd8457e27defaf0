package keys

import (
	"errors"
	"fmt"
	"strings"
)

// MaxScopes is the most scopes one key may hold.
const MaxScopes = 50

// ErrInvalidScope is wrapped by every scope parse error.
var ErrInvalidScope = errors.New("keys: invalid scope")

// Scope is a parsed "resource:action" pair. A resource is one or more
// "/"-separated segments, each [a-z0-9_.-]+ or "*"; an action is a word
// ([a-z0-9_]+) or "*".
type Scope struct {
	Resource []string
	Action   string
}

// ParseScope parses s, returning an error wrapping ErrInvalidScope.
func ParseScope(s string) (Scope, error) {
	i := strings.IndexByte(s, ':')
	if i < 0 {
		return Scope{}, fmt.Errorf("%w %q: want resource:action", ErrInvalidScope, s)
	}
	res, action := s[:i], s[i+1:]
	if action != "*" && !isWord(action) {
		return Scope{}, fmt.Errorf("%w %q: action must be a word or *", ErrInvalidScope, s)
	}
	segs := strings.Split(res, "/")
	for _, seg := range segs {
		if seg != "*" && !isSegment(seg) {
			return Scope{}, fmt.Errorf("%w %q: resource segment %q must be [a-z0-9_.-]+ or *", ErrInvalidScope, s, seg)
		}
	}
	return Scope{Resource: segs, Action: action}, nil
}

// MustParseScope is ParseScope for constants; it panics on error.
func MustParseScope(s string) Scope {
	sc, err := ParseScope(s)
	if err != nil {
		panic(err)
	}
	return sc
}

func isWord(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func isSegment(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// String returns the canonical "resource:action" form.
func (s Scope) String() string {
	return strings.Join(s.Resource, "/") + ":" + s.Action
}

// Matches reports whether s grants other. other may be a concrete
// permission ("devices/42:read") or itself a pattern; a "*" in other is
// granted only by a "*" in s, so Matches doubles as scope containment.
//
// The actions must be equal or s's must be "*"; s's resource must be no
// longer than other's (a parent grants its children), and each of s's
// segments must equal other's segment at the same place or be "*".
func (s Scope) Matches(other Scope) bool {
	if s.Action != "*" && s.Action != other.Action {
		return false
	}
	if len(s.Resource) > len(other.Resource) {
		return false
	}
	for i, seg := range s.Resource {
		if seg != "*" && seg != other.Resource[i] {
			return false
		}
	}
	return true
}

// Scopes is a set of scopes.
type Scopes []Scope

// ParseScopes parses each string; the error names the first bad one.
func ParseScopes(ss []string) (Scopes, error) {
	out := make(Scopes, 0, len(ss))
	for _, s := range ss {
		sc, err := ParseScope(s)
		if err != nil {
			return nil, err
		}
		out = append(out, sc)
	}
	return out, nil
}

// Allows reports whether any scope in ss grants the permission.
func (ss Scopes) Allows(permission Scope) bool {
	for _, s := range ss {
		if s.Matches(permission) {
			return true
		}
	}
	return false
}

// Covers reports whether ss grants every scope of other: the caller holding
// ss may hand out other without escalating.
func (ss Scopes) Covers(other Scopes) bool {
	for _, o := range other {
		if !ss.Allows(o) {
			return false
		}
	}
	return true
}

// Strings returns the canonical string of each scope.
func (ss Scopes) Strings() []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.String()
	}
	return out
}

// String joins the scopes with spaces, as the OAuth2 "scope" claim does.
func (ss Scopes) String() string { return strings.Join(ss.Strings(), " ") }

// Dedup returns ss without repeats, keeping first occurrences in order.
func (ss Scopes) Dedup() Scopes {
	seen := make(map[string]bool, len(ss))
	out := make(Scopes, 0, len(ss))
	for _, s := range ss {
		k := s.String()
		if !seen[k] {
			seen[k] = true
			out = append(out, s)
		}
	}
	return out
}

// keymint's own permissions.
var (
	PermAPIKeysRead      = MustParseScope("api_keys:read")
	PermAPIKeysWrite     = MustParseScope("api_keys:write")
	PermSigningKeysRead  = MustParseScope("signing_keys:read")
	PermSigningKeysAdmin = MustParseScope("signing_keys:admin")
	PermUsageRead        = MustParseScope("usage:read")
	PermAuditRead        = MustParseScope("audit:read")
	PermOrgRead          = MustParseScope("org:read")
	PermOrgAdmin         = MustParseScope("org:admin")
)
