package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/keymint/keymint/issuer"
	"github.com/keymint/keymint/keys"
)

type createOrgRequest struct {
	ID     string           `json:"id"`
	Name   string           `json:"name"`
	Alg    string           `json:"alg"`
	Policy keys.PolicyPatch `json:"policy"`
}

type bootstrapResponse struct {
	Org        keys.Org        `json:"org"`
	Issuer     string          `json:"issuer"`
	JWKSURI    string          `json:"jwks_uri"`
	SigningKey signingKeyBrief `json:"signing_key"`
	AdminKey   createdKey      `json:"admin_key"`
}

type signingKeyBrief struct {
	KID string `json:"kid"`
	Alg string `json:"alg"`
}

// createOrg bootstraps an org: its signing keypair and first admin key.
func (s *Server) createOrg(c echo.Context) error {
	var req createOrgRequest
	if err := decodeJSON(c, &req, false); err != nil {
		return err
	}
	b, err := s.svc.Bootstrap(c.Request().Context(), issuer.BootstrapRequest{
		ID: req.ID, Name: req.Name, Alg: req.Alg, Policy: req.Policy, By: principal(c),
	})
	if err != nil {
		return err
	}
	iss := s.svc.IssuerURL(b.Org.ID)
	noStore(c)
	c.Response().Header().Set(echo.HeaderLocation, "/api/v1/orgs/"+b.Org.ID)
	return c.JSON(http.StatusCreated, bootstrapResponse{
		Org: b.Org, Issuer: iss, JWKSURI: iss + "/.well-known/jwks.json",
		SigningKey: signingKeyBrief{KID: b.SigningKey.KID, Alg: b.SigningKey.Alg},
		AdminKey: createdKey{
			keyView:  newKeyView(b.Admin, b.Org.Policy, s.svc.Now()),
			Key:      b.Secret.String(),
			Warnings: []string{},
		},
	})
}

func (s *Server) listOrgs(c echo.Context) error {
	orgs, err := s.svc.ListOrgs(c.Request().Context(), principal(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, orgs)
}

// getOrg returns an org to root or to a caller of that org with org:read.
func (s *Server) getOrg(c echo.Context) error {
	org, err := s.svc.ReadOrg(c.Request().Context(), principal(c), c.Param("org"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, org)
}

type patchOrgRequest struct {
	Name   *string          `json:"name"`
	Policy keys.PolicyPatch `json:"policy"`
}

func (s *Server) patchOrg(c echo.Context) error {
	var req patchOrgRequest
	if err := decodeJSON(c, &req, false); err != nil {
		return err
	}
	org, err := s.svc.UpdateOrg(c.Request().Context(), principal(c), c.Param("org"), issuer.OrgPatch{Name: req.Name, Policy: req.Policy})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, org)
}

func notFound(what string) *Problem {
	return &Problem{Type: problemBase + "not-found", Title: "Not found", Status: http.StatusNotFound, Detail: "No such " + what + "."}
}

func forbidden(detail string) *Problem {
	return &Problem{Type: problemBase + "forbidden", Title: "Forbidden", Status: http.StatusForbidden, Detail: detail, challenge: challengeInsufficient}
}
