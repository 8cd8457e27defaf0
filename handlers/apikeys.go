package handlers

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/keymint/keymint/issuer"
	"github.com/keymint/keymint/keys"
)

// keyView is an API key as the API shows it: never a secret or its hash.
type keyView struct {
	ID           string          `json:"id"`
	Org          string          `json:"org"`
	Name         string          `json:"name"`
	Type         keys.KeyType    `json:"type"`
	Role         string          `json:"role"`
	Scopes       []string        `json:"scopes"`
	AllowedCIDRs []string        `json:"allowed_cidrs"`
	ExpiresAt    *time.Time      `json:"expires_at"`
	Enabled      bool            `json:"enabled"`
	Status       keys.Status     `json:"status"`
	ExpiresSoon  bool            `json:"expires_soon"`
	Claims       json.RawMessage `json:"claims,omitempty"`
	CreatedBy    string          `json:"created_by"`
	UpdatedBy    string          `json:"updated_by"`
	CreatedAt    time.Time       `json:"created_at"`
	UpdatedAt    time.Time       `json:"updated_at"`
	RevokedAt    *time.Time      `json:"revoked_at"`
	LastUsedAt   *time.Time      `json:"last_used_at"`
	MaskedValue  string          `json:"maskedValue"`
}

func newKeyView(k keys.APIKey, p keys.Policy, now time.Time) keyView {
	return keyView{
		ID: k.ID, Org: k.Org, Name: k.Name, Type: k.Type, Role: k.Role,
		Scopes: nonNil(k.Scopes), AllowedCIDRs: nonNil(k.AllowedCIDRs), ExpiresAt: k.ExpiresAt,
		Enabled: k.Enabled, Status: k.Status(now), ExpiresSoon: k.ExpiresSoon(now, time.Duration(p.ExpiryWarning)),
		Claims: k.Claims, CreatedBy: k.CreatedBy, UpdatedBy: k.UpdatedBy, CreatedAt: k.CreatedAt, UpdatedAt: k.UpdatedAt,
		RevokedAt: k.RevokedAt, LastUsedAt: k.LastUsedAt, MaskedValue: k.MaskedValue,
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// createdKey is a key with its secret, shown once.
type createdKey struct {
	keyView
	Key      string   `json:"key"`
	Warnings []string `json:"warnings"`
}

type createKeyRequest struct {
	Name         string          `json:"name"`
	Type         keys.KeyType    `json:"type"`
	Role         string          `json:"role"`
	Scopes       []string        `json:"scopes"`
	AllowedCIDRs []string        `json:"allowed_cidrs"`
	ExpiresAt    json.RawMessage `json:"expires_at"`
	Claims       json.RawMessage `json:"claims"`
}

func (s *Server) createKey(c echo.Context) error {
	var req createKeyRequest
	if err := decodeJSON(c, &req, false); err != nil {
		return err
	}
	_, exp, err := parseTime("expires_at", req.ExpiresAt)
	if err != nil {
		return err
	}
	if req.Type == "" {
		req.Type = keys.TypeSecret
	}
	if string(req.Claims) == "null" {
		req.Claims = nil
	}
	ctx := c.Request().Context()
	created, err := s.svc.CreateKey(ctx, principal(c), keys.KeySpec{
		Name: req.Name, Type: req.Type, Role: req.Role, Scopes: req.Scopes,
		AllowedCIDRs: req.AllowedCIDRs, ExpiresAt: exp, Claims: req.Claims,
	})
	if err != nil {
		return err
	}
	org, err := s.svc.GetOrg(ctx, created.Key.Org)
	if err != nil {
		return err
	}
	noStore(c)
	c.Response().Header().Set(echo.HeaderLocation, "/api/v1/apikeys/"+created.Key.ID)
	return c.JSON(http.StatusCreated, createdKey{
		keyView:  newKeyView(created.Key, org.Policy, s.svc.Now()),
		Key:      created.Secret.String(),
		Warnings: nonNil(created.Warnings),
	})
}

func (s *Server) getKey(c echo.Context) error {
	if c.QueryParam("withValue") == "true" {
		return fieldProblem("withValue", "keymint stores only a one-way hash of each secret, so it cannot return it; the secret was shown once, when the key was created or rolled. Roll the key to get a new one.")
	}
	k, err := s.svc.GetKey(c.Request().Context(), principal(c), c.Param("id"))
	if err != nil {
		return err
	}
	return s.renderKey(c, k, nil)
}

func (s *Server) listKeys(c echo.Context) error {
	limit, cursor, err := pageParams(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	p := principal(c)
	q := c.QueryParams()
	ks, more, err := s.svc.ListKeys(ctx, p, issuer.ListRequest{Status: q.Get("status"), Query: q.Get("q"), Limit: limit, After: cursor})
	if err != nil {
		return err
	}
	org, err := s.svc.GetOrg(ctx, p.Org)
	if err != nil {
		return err
	}
	now := s.svc.Now()
	out := make([]keyView, len(ks))
	for i, k := range ks {
		out[i] = newKeyView(k, org.Policy, now)
	}
	if more {
		setNextLink(c, "/api/v1/apikeys", ks[len(ks)-1].ID)
	}
	return c.JSON(http.StatusOK, out)
}

// updateKeyRequest is the body of PUT and PATCH. json.RawMessage tells an
// absent field from an explicit null.
type updateKeyRequest struct {
	Name         *string         `json:"name"`
	Role         *string         `json:"role"`
	Scopes       json.RawMessage `json:"scopes"`
	AllowedCIDRs json.RawMessage `json:"allowed_cidrs"`
	Enabled      *bool           `json:"enabled"`
	ExpiresAt    json.RawMessage `json:"expires_at"`
}

// updateKey serves PATCH (change the fields given) and PUT (replace every
// mutable field: an absent scopes or allowed_cidrs becomes empty, an
// absent expires_at removes the expiry, an absent enabled means true).
func (s *Server) updateKey(c echo.Context) error {
	var req updateKeyRequest
	if err := decodeJSON(c, &req, false); err != nil {
		return err
	}
	put := c.Request().Method == http.MethodPut
	var patch issuer.KeyPatch
	patch.Name, patch.Role, patch.Enabled = req.Name, req.Role, req.Enabled
	var err error
	if patch.ScopesSet, patch.Scopes, err = stringList("scopes", req.Scopes); err != nil {
		return err
	}
	if patch.CIDRsSet, patch.AllowedCIDRs, err = stringList("allowed_cidrs", req.AllowedCIDRs); err != nil {
		return err
	}
	if patch.ExpiresAtSet, patch.ExpiresAt, err = parseTime("expires_at", req.ExpiresAt); err != nil {
		return err
	}
	if put {
		var v keys.ValidationError
		if req.Name == nil {
			v.Add("name", "required: PUT replaces the key (use PATCH to change some fields)")
		}
		if req.Role == nil {
			v.Add("role", "required: PUT replaces the key (use PATCH to change some fields)")
		}
		if err := v.Err(); err != nil {
			return err
		}
		patch.ScopesSet, patch.CIDRsSet, patch.ExpiresAtSet = true, true, true
		if patch.Enabled == nil {
			t := true
			patch.Enabled = &t
		}
	}
	ctx := c.Request().Context()
	u, err := s.svc.UpdateKey(ctx, principal(c), c.Param("id"), patch)
	if err != nil {
		return err
	}
	return s.renderKey(c, u.Key, nonNil(u.Warnings))
}

// stringList reads an optional JSON array of strings; null means empty.
func stringList(field string, raw json.RawMessage) (bool, []string, error) {
	if raw == nil {
		return false, nil, nil
	}
	var out []string
	if err := json.Unmarshal(raw, &out); err != nil {
		return true, nil, fieldProblem(field, "must be an array of strings")
	}
	return true, nonNil(out), nil
}

// keyWithWarnings is a key and the warnings of the change that made it.
type keyWithWarnings struct {
	keyView
	Warnings []string `json:"warnings"`
}

func (s *Server) renderKey(c echo.Context, k keys.APIKey, warnings []string) error {
	org, err := s.svc.GetOrg(c.Request().Context(), k.Org)
	if err != nil {
		return err
	}
	view := newKeyView(k, org.Policy, s.svc.Now())
	if warnings == nil {
		return c.JSON(http.StatusOK, view)
	}
	return c.JSON(http.StatusOK, keyWithWarnings{keyView: view, Warnings: warnings})
}

func (s *Server) revokeKey(c echo.Context) error {
	k, err := s.svc.RevokeKey(c.Request().Context(), principal(c), c.Param("id"))
	if err != nil {
		return err
	}
	return s.renderKey(c, k, nil)
}

type rollRequest struct {
	GraceSeconds *int64 `json:"grace_seconds"`
}

func (s *Server) rollKey(c echo.Context) error {
	var req rollRequest
	if err := decodeJSON(c, &req, true); err != nil {
		return err
	}
	grace := issuer.DefaultRollGrace
	if req.GraceSeconds != nil {
		if *req.GraceSeconds < 0 || *req.GraceSeconds > int64(issuer.MaxRollGrace/time.Second) {
			return fieldProblem("grace_seconds", "must be between 0 and %d", int64(issuer.MaxRollGrace/time.Second))
		}
		grace = time.Duration(*req.GraceSeconds) * time.Second
	}
	r, err := s.svc.RollKey(c.Request().Context(), principal(c), c.Param("id"), grace)
	if err != nil {
		return err
	}
	org, err := s.svc.GetOrg(c.Request().Context(), r.Key.Org)
	if err != nil {
		return err
	}
	noStore(c)
	return c.JSON(http.StatusOK, createdKey{keyView: newKeyView(r.Key, org.Policy, s.svc.Now()), Key: r.Secret.String(), Warnings: []string{}})
}

func (s *Server) deleteKey(c echo.Context) error {
	if _, err := s.svc.DeleteKey(c.Request().Context(), principal(c), c.Param("id")); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"acknowledged": true, "deletedCount": 1})
}
