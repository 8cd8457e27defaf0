package handlers

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/keymint/keymint/issuer"
)

// pageParams reads limit and cursor, shared by every paginated list.
func pageParams(c echo.Context) (limit int, cursor string, err error) {
	q := c.QueryParams()
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 200 {
			return 0, "", fieldProblem("limit", "must be a whole number between 1 and 200")
		}
	}
	if v := q.Get("cursor"); v != "" {
		if _, err := uuid.Parse(v); err != nil {
			return 0, "", fieldProblem("cursor", "is not a cursor from a Link header")
		}
		cursor = v
	}
	return limit, cursor, nil
}

// setNextLink sets the Link rel="next" header of a page: the same query
// with the cursor moved past last.
func setNextLink(c echo.Context, path, last string) {
	next := url.Values{}
	for name, vals := range c.QueryParams() {
		if name != "cursor" && len(vals) > 0 {
			next.Set(name, vals[0])
		}
	}
	next.Set("cursor", last)
	c.Response().Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, path, next.Encode()))
}

func (s *Server) listAudit(c echo.Context) error {
	limit, cursor, err := pageParams(c)
	if err != nil {
		return err
	}
	evs, more, err := s.svc.ListAudit(c.Request().Context(), principal(c), issuer.AuditRequest{
		KeyID: c.QueryParam("key_id"), Action: c.QueryParam("action"), Limit: limit, After: cursor,
	})
	if err != nil {
		return err
	}
	if more {
		setNextLink(c, "/api/v1/audit", evs[len(evs)-1].ID)
	}
	return c.JSON(http.StatusOK, evs)
}
