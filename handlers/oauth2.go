package handlers

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/keymint/keymint/issuer"
	"github.com/keymint/keymint/keys"
)

// oauthError is an RFC 6749 §5.2 error response.
type oauthError struct {
	status      int
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func (e *oauthError) Error() string { return "oauth2: " + e.Code + ": " + e.Description }

func (e *oauthError) render(c echo.Context) error {
	noStore(c)
	if e.status == http.StatusUnauthorized {
		c.Response().Header().Set("WWW-Authenticate", `Basic realm="keymint"`)
	}
	return c.JSON(e.status, e)
}

func oauthErr(status int, code, desc string) *oauthError {
	return &oauthError{status: status, Code: code, Description: desc}
}

// oauthResponse is a successful client_credentials token response.
type oauthResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
}

// oauthToken is the RFC 6749 client_credentials grant: client_id is the
// key id, client_secret the key's secret, by HTTP Basic
// (client_secret_basic) or in the form (client_secret_post).
func (s *Server) oauthToken(c echo.Context) error {
	if err := s.oauthTokenErr(c); err != nil {
		var oe *oauthError
		if errors.As(err, &oe) {
			return oe.render(c)
		}
		return err
	}
	return nil
}

func (s *Server) oauthTokenErr(c echo.Context) error {
	if rejectSecretInQuery(c) != nil {
		return oauthErr(http.StatusBadRequest, "invalid_request", "credentials must not be sent in the URL")
	}
	if !isForm(c) {
		return oauthErr(http.StatusBadRequest, "invalid_request", "the body must be application/x-www-form-urlencoded")
	}
	form, err := c.FormParams()
	if err != nil {
		return oauthErr(http.StatusBadRequest, "invalid_request", "the form could not be read")
	}
	for name, vals := range form {
		if len(vals) > 1 {
			return oauthErr(http.StatusBadRequest, "invalid_request", "parameter "+name+" is repeated")
		}
	}
	switch gt := form.Get("grant_type"); gt {
	case "client_credentials":
	case "":
		return oauthErr(http.StatusBadRequest, "invalid_request", "grant_type is required")
	default:
		return oauthErr(http.StatusBadRequest, "unsupported_grant_type", "only client_credentials is supported")
	}
	id, secret, err := clientCredentials(c, form)
	if err != nil {
		return err
	}
	addr := clientAddr(c)
	if wait := s.limiter.retryAfter(addr); wait > 0 {
		c.Response().Header().Set("Retry-After", retryAfterSeconds(wait))
		return oauthErr(http.StatusTooManyRequests, "temporarily_unavailable", "too many failed attempts from this address")
	}
	aud := form.Get("audience")
	if aud == "" {
		aud = form.Get("resource") // RFC 8707
	}
	tok, _, err := s.svc.Exchange(c.Request().Context(), issuer.ExchangeRequest{
		KeyID: id, Secret: secret, Addr: addr, Scope: form.Get("scope"), Audience: aud,
	})
	s.noteFailure(addr, err)
	var ve *keys.ValidationError
	switch {
	case errors.Is(err, issuer.ErrUnauthenticated):
		return oauthErr(http.StatusUnauthorized, "invalid_client", "client authentication failed")
	case errors.Is(err, issuer.ErrAddressNotAllowed):
		return oauthErr(http.StatusBadRequest, "unauthorized_client", "the client address is outside the key's allowed_cidrs")
	case errors.As(err, &ve):
		if ve.Fields[0].Field == "scope" {
			return oauthErr(http.StatusBadRequest, "invalid_scope", ve.Fields[0].Message)
		}
		return oauthErr(http.StatusBadRequest, "invalid_request", ve.Fields[0].Field+": "+ve.Fields[0].Message)
	case err != nil:
		return err
	}
	noStore(c)
	return c.JSON(http.StatusOK, oauthResponse{
		AccessToken: tok.Raw, TokenType: "Bearer",
		ExpiresIn: int64(tok.ExpiresAt.Sub(tok.IssuedAt) / time.Second), Scope: tok.Scope,
	})
}

// clientCredentials reads the client's id and secret from HTTP Basic
// (each form-urlencoded, RFC 6749 §2.3.1) or from the form; using both is
// an error.
func clientCredentials(c echo.Context, form url.Values) (id, secret string, err error) {
	if id, secret, ok := basicCredentials(c); ok {
		if form.Get("client_secret") != "" {
			return "", "", oauthErr(http.StatusBadRequest, "invalid_request", "use one client authentication method, not two")
		}
		if fid := form.Get("client_id"); fid != "" && fid != id {
			return "", "", oauthErr(http.StatusBadRequest, "invalid_request", "client_id differs from the authenticated client")
		}
		return id, secret, nil
	}
	if strings.TrimSpace(c.Request().Header.Get(echo.HeaderAuthorization)) != "" {
		return "", "", oauthErr(http.StatusUnauthorized, "invalid_client", "authenticate with HTTP Basic or client_secret in the form")
	}
	id, secret = form.Get("client_id"), form.Get("client_secret")
	if id == "" || secret == "" {
		return "", "", oauthErr(http.StatusUnauthorized, "invalid_client", "client_id and client_secret are required")
	}
	return id, secret, nil
}

// basicCredentials reads HTTP Basic client credentials, each
// form-urlencoded (RFC 6749 §2.3.1).
func basicCredentials(c echo.Context) (id, secret string, ok bool) {
	bid, bsecret, ok := c.Request().BasicAuth()
	if !ok {
		return "", "", false
	}
	id, err1 := url.QueryUnescape(bid)
	secret, err2 := url.QueryUnescape(bsecret)
	if err1 != nil || err2 != nil {
		return "", "", true // present but unusable: authentication fails
	}
	return id, secret, true
}

// introspection is an RFC 7662 response.
type introspection struct {
	Active    bool     `json:"active"`
	Scope     string   `json:"scope,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	TokenType string   `json:"token_type,omitempty"`
	Exp       int64    `json:"exp,omitempty"`
	Iat       int64    `json:"iat,omitempty"`
	Nbf       int64    `json:"nbf,omitempty"`
	Sub       string   `json:"sub,omitempty"`
	Aud       []string `json:"aud,omitempty"`
	Iss       string   `json:"iss,omitempty"`
	Jti       string   `json:"jti,omitempty"`
	Org       string   `json:"org,omitempty"`
	Role      string   `json:"role,omitempty"`
}

// introspect answers whether a token is active for the caller's org: it
// verifies like every keymint endpoint does, and a token of a revoked,
// disabled or deleted key, or of another org, is inactive.
func (s *Server) introspect(c echo.Context) error {
	noStore(c)
	p := principal(c)
	if p.Root {
		return forbidden("introspect with a credential of the token's org")
	}
	token := c.FormValue("token")
	if token == "" {
		return oauthErr(http.StatusBadRequest, "invalid_request", "token is required").render(c)
	}
	claims, err := s.tokens.verify(c.Request().Context(), token)
	if err != nil || claims.Org != p.Org || !s.svc.KeyUsable(claims.Subject) {
		return c.JSON(http.StatusOK, introspection{Active: false})
	}
	return c.JSON(http.StatusOK, introspection{
		Active: true, Scope: claims.Scope, ClientID: claims.ClientID, TokenType: "Bearer",
		Exp: claims.ExpiresAt.Unix(), Iat: claims.IssuedAt.Unix(), Nbf: claims.NotBefore.Unix(),
		Sub: claims.Subject, Aud: claims.Audience, Iss: claims.Issuer, Jti: claims.ID,
		Org: claims.Org, Role: claims.Role,
	})
}
