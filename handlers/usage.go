package handlers

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
)

func (s *Server) keyUsage(c echo.Context) error { return s.usage(c, c.Param("id")) }

func (s *Server) orgUsage(c echo.Context) error { return s.usage(c, "") }

// usage reports per-day exchanges and failures over ?days= (default 30).
func (s *Server) usage(c echo.Context, keyID string) error {
	days := 0
	if v := c.QueryParam("days"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fieldProblem("days", "must be a whole number of days")
		}
		days = n
	}
	r, err := s.svc.Usage(c.Request().Context(), principal(c), keyID, days)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}
