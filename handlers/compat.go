package handlers

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/keymint/keymint/issuer"
	"github.com/keymint/keymint/keys"
)

// Compatibility routes for clients written against Arthur's documented
// API-key endpoints: GET/POST /auth/api_keys and
// DELETE /auth/api_keys/deactivate/{id}. They map onto keymint keys:
// description is the name, roles must hold exactly one keymint role, the
// key expires after the org's max_key_lifetime, and deactivating revokes.

type arthurKey struct {
	ID            string     `json:"id"`
	Key           string     `json:"key,omitempty"`
	Description   string     `json:"description"`
	IsActive      bool       `json:"is_active"`
	CreatedAt     time.Time  `json:"created_at"`
	DeactivatedAt *time.Time `json:"deactivated_at"`
	Message       string     `json:"message,omitempty"`
}

func newArthurKey(k keys.APIKey, now time.Time) arthurKey {
	return arthurKey{ID: k.ID, Description: k.Name, IsActive: k.Status(now) == keys.StatusActive,
		CreatedAt: k.CreatedAt, DeactivatedAt: k.RevokedAt}
}

func (s *Server) arthurList(c echo.Context) error {
	ks, _, err := s.svc.ListKeys(c.Request().Context(), principal(c), issuer.ListRequest{Status: issuer.StatusAll, Limit: 200})
	if err != nil {
		return err
	}
	now := s.svc.Now()
	out := make([]arthurKey, len(ks))
	for i, k := range ks {
		out[i] = newArthurKey(k, now)
	}
	return c.JSON(http.StatusOK, out)
}

type arthurCreateRequest struct {
	Description string   `json:"description"`
	Roles       []string `json:"roles"`
}

func (s *Server) arthurCreate(c echo.Context) error {
	var req arthurCreateRequest
	if err := decodeJSON(c, &req, false); err != nil {
		return err
	}
	if len(req.Roles) != 1 {
		return fieldProblem("roles", "must hold exactly one role (%s)", "admin, developer or viewer")
	}
	ctx := c.Request().Context()
	p := principal(c)
	if p.Root {
		return forbidden("the root key manages orgs; use an org's API key")
	}
	org, err := s.svc.GetOrg(ctx, p.Org)
	if err != nil {
		return err
	}
	exp := s.svc.Now().UTC().Truncate(time.Second).Add(time.Duration(org.Policy.MaxKeyLifetime))
	created, err := s.svc.CreateKey(ctx, p, keys.KeySpec{
		Name: req.Description, Type: keys.TypeSecret, Role: req.Roles[0], ExpiresAt: &exp,
	})
	if err != nil {
		return compatFields(err)
	}
	out := newArthurKey(created.Key, s.svc.Now())
	out.Key = created.Secret.String()
	out.Message = "API key created. Store the key now: it cannot be shown again."
	noStore(c)
	return c.JSON(http.StatusOK, out)
}

// compatFields renames the fields of a validation error to the ones the
// compatibility request has: description for name, roles for role.
func compatFields(err error) error {
	var ve *keys.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	out := &keys.ValidationError{}
	for _, f := range ve.Fields {
		field := f.Field
		switch field {
		case "name":
			field = "description"
		case "role":
			field = "roles"
		}
		out.Add(field, "%s", f.Message)
	}
	return out
}

func (s *Server) arthurDeactivate(c echo.Context) error {
	k, err := s.svc.RevokeKey(c.Request().Context(), principal(c), c.Param("id"))
	if err != nil {
		return err
	}
	out := newArthurKey(k, s.svc.Now())
	out.Message = "API key deactivated."
	return c.JSON(http.StatusOK, out)
}
