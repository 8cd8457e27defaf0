package handlers

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/keymint/keymint/issuer"
	"github.com/keymint/keymint/keys"
)

// exchangeRequest is the optional body (POST) or query (GET) of an exchange.
type exchangeRequest struct {
	Scope    string          `json:"scope"`
	Audience string          `json:"audience"`
	TTL      json.RawMessage `json:"ttl"`
}

// tokenResponse is the body of a successful exchange.
type tokenResponse struct {
	Token     string    `json:"token"`
	TokenType string    `json:"token_type"`
	ExpiresIn int64     `json:"expires_in"`
	ExpiresAt time.Time `json:"expires_at"`
	Scope     string    `json:"scope"`
}

// exchange trades the key's own secret for a short-lived JWT.
func (s *Server) exchange(c echo.Context) error {
	noStore(c)
	if err := rejectSecretInQuery(c); err != nil {
		return err
	}
	secret := credential(c)
	if secret == "" {
		return errNoCredential
	}
	var req exchangeRequest
	var ttlText string
	if c.Request().Method == http.MethodPost && isForm(c) {
		req.Scope, req.Audience, ttlText = c.FormValue("scope"), c.FormValue("audience"), c.FormValue("ttl")
	} else if c.Request().Method == http.MethodPost {
		if err := decodeJSON(c, &req, true); err != nil {
			return err
		}
		ttlText = strings.Trim(string(req.TTL), `"`)
	} else {
		q := c.QueryParams()
		req.Scope, req.Audience, ttlText = q.Get("scope"), q.Get("audience"), q.Get("ttl")
	}
	ttl, err := parseTTL(ttlText)
	if err != nil {
		return err
	}
	tok, _, err := s.svc.Exchange(c.Request().Context(), issuer.ExchangeRequest{
		KeyID: c.Param("id"), Secret: secret, Addr: clientAddr(c),
		Scope: req.Scope, Audience: req.Audience, TTL: ttl,
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, tokenResponse{
		Token: tok.Raw, TokenType: "Bearer", ExpiresIn: int64(tok.ExpiresAt.Sub(tok.IssuedAt) / time.Second),
		ExpiresAt: tok.ExpiresAt.UTC(), Scope: tok.Scope,
	})
}

func isForm(c echo.Context) bool {
	return strings.HasPrefix(c.Request().Header.Get(echo.HeaderContentType), echo.MIMEApplicationForm)
}

// parseTTL reads a ttl given as whole seconds ("300") or a duration ("5m").
func parseTTL(v string) (time.Duration, error) {
	if v == "" || v == "null" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 || n > int64(keys.MaxTokenTTL/time.Second) {
			return 0, fieldProblem("ttl", "must be between 1 and %d seconds", int64(keys.MaxTokenTTL/time.Second))
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := keys.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fieldProblem("ttl", "must be whole seconds (300) or a duration (5m)")
	}
	return d, nil
}
