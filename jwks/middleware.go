package jwks

import (
	"context"
	"net/http"
	"strings"

	"github.com/keymint/keymint/keys"
)

type claimsKey struct{}

// ContextWithClaims returns a copy of ctx carrying c.
func ContextWithClaims(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// ClaimsFromContext returns the claims RequireScope put in the request
// context.
func ClaimsFromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok && c != nil
}

// BearerToken returns the token of an "Authorization: Bearer <token>"
// header. ok is false when the request has no Authorization header or
// uses another scheme. A request with several Authorization headers, or
// an empty token, gets ok true and an empty token, which Verify refuses.
func BearerToken(r *http.Request) (token string, ok bool) {
	values := r.Header.Values("Authorization")
	if len(values) == 0 {
		return "", false
	}
	scheme, rest, _ := strings.Cut(values[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	if len(values) > 1 {
		return "", true
	}
	return strings.TrimSpace(rest), true
}

// Problem bodies (RFC 9457). The detail is the same for every refused
// token: the reason is for the server's logs, not the caller.
const (
	problemMissing   = `{"type":"about:blank","title":"Unauthorized","status":401,"detail":"A bearer token is required."}`
	problemInvalid   = `{"type":"about:blank","title":"Unauthorized","status":401,"detail":"The bearer token is invalid."}`
	problemForbidden = `{"type":"about:blank","title":"Forbidden","status":403,"detail":"The bearer token lacks a required permission."}`
)

func writeProblem(w http.ResponseWriter, status int, challenge, body string) {
	h := w.Header()
	h.Set("WWW-Authenticate", challenge)
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// RequireScope returns net/http middleware that admits a request only
// with a valid "Authorization: Bearer <token>" whose scopes grant every
// one of permissions ("resource:action", matched with keys.Scopes.Allows),
// and passes its claims on in the request context (ClaimsFromContext).
//
//   - No bearer token: 401, WWW-Authenticate: Bearer.
//   - A token Verify refuses: 401, WWW-Authenticate: Bearer error="invalid_token".
//   - A permission not granted: 403, WWW-Authenticate: Bearer
//     error="insufficient_scope", scope="<permissions>".
//
// Refusals have an RFC 9457 application/problem+json body. RequireScope
// panics if v is nil or a permission does not parse: both are
// programming errors that would otherwise refuse every request.
func RequireScope(v *Verifier, permissions ...string) func(http.Handler) http.Handler {
	if v == nil {
		panic("jwks: RequireScope: nil Verifier")
	}
	perms := make(keys.Scopes, len(permissions))
	for i, p := range permissions {
		s, err := keys.ParseScope(p)
		if err != nil {
			panic("jwks: RequireScope: " + err.Error())
		}
		perms[i] = s
	}
	insufficient := `Bearer error="insufficient_scope", scope="` + perms.String() + `"`
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token, ok := BearerToken(r)
			if !ok {
				writeProblem(w, http.StatusUnauthorized, "Bearer", problemMissing)
				return
			}
			claims, err := v.Verify(r.Context(), token)
			if err != nil {
				writeProblem(w, http.StatusUnauthorized, `Bearer error="invalid_token"`, problemInvalid)
				return
			}
			for _, p := range perms {
				if !claims.Scopes.Allows(p) {
					writeProblem(w, http.StatusForbidden, insufficient, problemForbidden)
					return
				}
			}
			next.ServeHTTP(w, r.WithContext(ContextWithClaims(r.Context(), claims)))
		})
	}
}
