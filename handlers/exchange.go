package handlers

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/netip"
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
	secret, err := credential(c)
	if err != nil {
		return err
	}
	addr := clientAddr(c)
	if err := s.throttled(c, addr); err != nil {
		return err
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
		KeyID: c.Param("id"), Secret: secret, Addr: addr,
		Scope: req.Scope, Audience: req.Audience, TTL: ttl,
	})
	if err != nil {
		s.noteFailure(addr, err)
		return err
	}
	return c.JSON(http.StatusOK, tokenResponse{
		Token: tok.Raw, TokenType: "Bearer", ExpiresIn: int64(tok.ExpiresAt.Sub(tok.IssuedAt) / time.Second),
		ExpiresAt: tok.ExpiresAt.UTC(), Scope: tok.Scope,
	})
}

// isForm reports whether the body is application/x-www-form-urlencoded
// (media types compare case-insensitively).
func isForm(c echo.Context) bool {
	mt, _, err := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	return err == nil && mt == echo.MIMEApplicationForm
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

// throttled answers 429 with Retry-After to an address that has failed too
// many exchanges lately.
func (s *Server) throttled(c echo.Context, addr netip.Addr) error {
	wait := s.limiter.retryAfter(addr)
	if wait == 0 {
		return nil
	}
	if s.metrics != nil {
		s.metrics.limited.Inc()
	}
	c.Response().Header().Set("Retry-After", retryAfterSeconds(wait))
	return &Problem{Type: problemBase + "too-many-failures", Title: "Too many failed exchanges", Status: http.StatusTooManyRequests,
		Detail: "This address has failed too many exchanges; retry after the time in Retry-After."}
}

// noteFailure spends a token of addr's failure budget for a refused
// credential; other errors (bad parameters, a refused address) do not
// count.
func (s *Server) noteFailure(addr netip.Addr, err error) {
	if errors.Is(err, issuer.ErrUnauthenticated) {
		s.limiter.failed(addr)
	}
}
