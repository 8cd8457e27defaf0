package handlers

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/keymint/keymint/keys"
)

// signingKeyView is a signing key as the API shows it: never private.
type signingKeyView struct {
	KID         string                `json:"kid"`
	Alg         string                `json:"alg"`
	Status      keys.SigningKeyStatus `json:"status"`
	CreatedAt   time.Time             `json:"created_at"`
	ActivatedAt *time.Time            `json:"activated_at"`
	RetiredAt   *time.Time            `json:"retired_at"`
	RemoveAfter *time.Time            `json:"remove_after"`
}

func newSigningKeyView(k keys.SigningKey) signingKeyView {
	return signingKeyView{KID: k.KID, Alg: k.Alg, Status: k.Status, CreatedAt: k.CreatedAt,
		ActivatedAt: k.ActivatedAt, RetiredAt: k.RetiredAt, RemoveAfter: k.RemoveAfter}
}

func (s *Server) listSigningKeys(c echo.Context) error {
	ks, err := s.svc.ListSigningKeys(c.Request().Context(), principal(c))
	if err != nil {
		return err
	}
	out := make([]signingKeyView, len(ks))
	for i, k := range ks {
		out[i] = newSigningKeyView(k)
	}
	return c.JSON(http.StatusOK, out)
}

type rotationView struct {
	Active   signingKeyView  `json:"active"`
	Next     *signingKeyView `json:"next"`
	Retiring *signingKeyView `json:"retiring"`
}

func (s *Server) rotateSigningKeys(c echo.Context) error {
	rot, err := s.svc.RotateSigningKeys(c.Request().Context(), principal(c))
	if err != nil {
		return err
	}
	out := rotationView{Active: newSigningKeyView(rot.Active)}
	if rot.Next.KID != "" {
		v := newSigningKeyView(rot.Next)
		out.Next = &v
	}
	if rot.Retiring != nil {
		v := newSigningKeyView(*rot.Retiring)
		out.Retiring = &v
	}
	return c.JSON(http.StatusOK, out)
}
