// Package jwksecho adapts the jwks middleware to echo v4.
//
//	v, err := jwks.NewVerifier(jwks.WithIssuer("https://keymint.example.com/orgs/acme"))
//	...
//	e.GET("/devices/:id", getDevice, jwksecho.RequireScope(v, "devices:read"))
//
// Inside the handler, Claims(c) returns the token's claims; they are in
// the request context too (jwks.ClaimsFromContext).
package jwksecho

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/keymint/keymint/jwks"
)

// ContextKey is the echo.Context key under which RequireScope stores the
// *jwks.Claims.
const ContextKey = "github.com/keymint/keymint/jwks/jwksecho.claims"

// RequireScope is jwks.RequireScope for echo: a request without a valid
// bearer token gets 401, one whose token lacks any of permissions gets
// 403, both with WWW-Authenticate and an application/problem+json body,
// written directly (not through echo's HTTPErrorHandler). An admitted
// request has its claims in the echo context (Claims) and in the request
// context (jwks.ClaimsFromContext). It panics if v is nil or a
// permission does not parse.
func RequireScope(v *jwks.Verifier, permissions ...string) echo.MiddlewareFunc {
	mw := jwks.RequireScope(v, permissions...)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			var err error
			mw(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
				claims, _ := jwks.ClaimsFromContext(r.Context())
				c.Set(ContextKey, claims)
				c.SetRequest(r)
				err = next(c)
			})).ServeHTTP(c.Response(), c.Request())
			return err
		}
	}
}

// Claims returns the claims RequireScope stored in c.
func Claims(c echo.Context) (*jwks.Claims, bool) {
	claims, ok := c.Get(ContextKey).(*jwks.Claims)
	return claims, ok && claims != nil
}
