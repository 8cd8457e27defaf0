package handlers

import (
	"crypto/subtle"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/keymint/keymint/issuer"
	"github.com/keymint/keymint/keys"
)

const principalKey = "keymint.principal"

// credential returns the caller's credential: X-API-Key, else the
// Authorization Bearer value, else the secret of HTTP Basic client
// credentials. It returns errNoCredential if there is none, and
// errUnauthenticated for Basic credentials whose id does not name the
// secret's own key.
func credential(c echo.Context) (string, error) {
	if v := strings.TrimSpace(c.Request().Header.Get("X-API-Key")); v != "" {
		return v, nil
	}
	if id, secret, ok := basicCredentials(c); ok {
		if s, err := keys.ParseSecret(secret); err != nil || s.KeyID != id {
			return "", errUnauthenticated
		}
		return secret, nil
	}
	scheme, v, ok := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
	if v = strings.TrimSpace(v); !ok || !strings.EqualFold(scheme, "Bearer") || v == "" {
		return "", errNoCredential
	}
	return v, nil
}

func (s *Server) isRoot(cred string) bool {
	return subtle.ConstantTimeCompare([]byte(cred), []byte(s.rootKey)) == 1
}

// authenticate resolves the caller into an issuer.Principal: the root key,
// an API key secret, or a keymint JWT checked by the same jwks.Verifier
// downstream services use.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := rejectSecretInQuery(c); err != nil {
			return err
		}
		cred, err := credential(c)
		if err != nil {
			return err
		}
		var p issuer.Principal
		switch {
		case s.isRoot(cred):
			p = issuer.Principal{Root: true}
		case keys.LooksLikeSecret(cred):
			if p, err = s.svc.AuthenticateSecret(c.Request().Context(), cred, clientAddr(c)); err != nil {
				return err
			}
		default:
			claims, err := s.tokens.verify(c.Request().Context(), cred)
			if err != nil {
				return err
			}
			org, ok := s.svc.IssuerOrg(claims.Issuer)
			if !ok || org != claims.Org || !s.svc.KeyUsable(claims.Subject) {
				return errUnauthenticated
			}
			p = issuer.Principal{Org: org, KeyID: claims.Subject, Scopes: claims.Scopes}
		}
		p.Addr = clientAddr(c)
		c.Set(principalKey, p)
		return next(c)
	}
}

// requireRoot admits only the operator's root key.
func (s *Server) requireRoot(next echo.HandlerFunc) echo.HandlerFunc {
	return s.authenticate(func(c echo.Context) error {
		if !principal(c).Root {
			return forbidden("Only the operator's root key may do this.")
		}
		return next(c)
	})
}

func principal(c echo.Context) issuer.Principal {
	p, _ := c.Get(principalKey).(issuer.Principal)
	return p
}

// secretParams are query parameter names clients commonly put keys in.
var secretParams = []string{"api_key", "apikey", "key", "secret", "client_secret", "access_token", "token", "x-api-key"}

// rejectSecretInQuery refuses a request whose URL carries a secret.
func rejectSecretInQuery(c echo.Context) error {
	if c.Request().URL.RawQuery == "" {
		return nil // the common case; parsing would allocate
	}
	q := c.Request().URL.Query()
	for name, vals := range q {
		for _, p := range secretParams {
			if strings.EqualFold(name, p) {
				return errSecretInQuery
			}
		}
		for _, v := range vals {
			if keys.LooksLikeSecret(v) {
				return errSecretInQuery
			}
		}
	}
	return nil
}
