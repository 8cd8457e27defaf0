package keys

import "sort"

// Roles are named scope bundles. A key's effective scopes are its role's
// scopes plus its own.
var roles = map[string]Scopes{
	"admin":     {MustParseScope("*:*")},
	"developer": {MustParseScope("*:read"), MustParseScope("*:write")},
	"viewer":    {MustParseScope("*:read")},
}

// RoleScopes returns the scopes of a built-in role and whether it exists.
func RoleScopes(role string) (Scopes, bool) {
	s, ok := roles[role]
	return s, ok
}

// RoleNames lists the built-in roles, sorted.
func RoleNames() []string {
	out := make([]string, 0, len(roles))
	for r := range roles {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// EffectiveScopes returns role's scopes followed by own, without repeats.
// An unknown role contributes nothing.
func EffectiveScopes(role string, own Scopes) Scopes {
	rs := roles[role]
	out := make(Scopes, 0, len(rs)+len(own))
	out = append(out, rs...)
	out = append(out, own...)
	return out.Dedup()
}
