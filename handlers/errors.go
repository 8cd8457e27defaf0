package handlers

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/keymint/keymint/issuer"
	"github.com/keymint/keymint/jwks"
	"github.com/keymint/keymint/keys"
	"github.com/keymint/keymint/storage"
)

// Problem is an RFC 9457 problem details body.
type Problem struct {
	Type   string         `json:"type"`
	Title  string         `json:"title"`
	Status int            `json:"status"`
	Detail string         `json:"detail,omitempty"`
	Errors []FieldProblem `json:"errors,omitempty"`

	// challenge, when set, becomes the WWW-Authenticate header.
	challenge string
}

// FieldProblem names one invalid request field.
type FieldProblem struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (p *Problem) Error() string { return p.Title + ": " + p.Detail }

const problemBase = "urn:keymint:problem:"

// Challenges sent with 401 and 403.
const (
	challengeMissing      = `Bearer realm="keymint"`
	challengeInvalid      = `Bearer realm="keymint", error="invalid_token"`
	challengeInsufficient = `Bearer realm="keymint", error="insufficient_scope"`
)

// Problems the handlers raise directly.
var (
	errUnauthenticated = &Problem{
		Type: problemBase + "invalid-credential", Title: "Invalid credential", Status: http.StatusUnauthorized,
		Detail:    "The credential is missing, malformed, unknown, or not valid for this request.",
		challenge: challengeInvalid,
	}
	errNoCredential = &Problem{
		Type: problemBase + "missing-credential", Title: "Missing credential", Status: http.StatusUnauthorized,
		Detail:    "Send an API key secret as 'Authorization: Bearer <secret>' or 'X-API-Key', or a keymint JWT as 'Authorization: Bearer <token>'.",
		challenge: challengeMissing,
	}
	errSecretInQuery = &Problem{
		Type: problemBase + "secret-in-url", Title: "Secret in URL", Status: http.StatusBadRequest,
		Detail: "API key secrets must never be sent in the URL, where proxies and logs keep them. Send it in the Authorization or X-API-Key header, and roll this key: it may have leaked.",
	}
)

// statusTable maps error categories to problems. Anything not listed is a
// 500 whose detail stays in the logs.
var statusTable = []struct {
	err     error
	problem Problem
}{
	{issuer.ErrUnauthenticated, *errUnauthenticated},
	{jwks.ErrInvalidToken, *errUnauthenticated},
	{issuer.ErrAddressNotAllowed, Problem{Type: problemBase + "address-not-allowed", Title: "Address not allowed", Status: http.StatusForbidden,
		Detail: "The client address is outside the key's allowed_cidrs."}},
	{issuer.ErrForbidden, Problem{Type: problemBase + "forbidden", Title: "Forbidden", Status: http.StatusForbidden, challenge: challengeInsufficient}},
	{storage.ErrNotFound, Problem{Type: problemBase + "not-found", Title: "Not found", Status: http.StatusNotFound}},
	{storage.ErrKeyLimit, Problem{Type: problemBase + "key-limit", Title: "Key limit reached", Status: http.StatusConflict,
		Detail: "The org holds max_keys keys that are not revoked; revoke or delete one, or raise the policy."}},
	{storage.ErrExists, Problem{Type: problemBase + "exists", Title: "Already exists", Status: http.StatusConflict}},
	{storage.ErrConflict, Problem{Type: problemBase + "conflict", Title: "Conflict", Status: http.StatusConflict}},
}

// toProblem maps err to the problem the client sees.
func toProblem(err error) (*Problem, bool) {
	var p *Problem
	if errors.As(err, &p) {
		return p, true
	}
	var ve *keys.ValidationError
	if errors.As(err, &ve) {
		return validationProblem(ve.Fields...), true
	}
	var fe *keys.FieldError
	if errors.As(err, &fe) {
		return validationProblem(fe), true
	}
	for _, row := range statusTable {
		if errors.Is(err, row.err) {
			p := row.problem
			if p.Status == http.StatusForbidden && p.Detail == "" {
				p.Detail = publicDetail(err)
			}
			return &p, true
		}
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return &Problem{Type: "about:blank", Title: http.StatusText(he.Code), Status: he.Code, Detail: httpErrorDetail(he)}, true
	}
	return &Problem{Type: "about:blank", Title: "Internal server error", Status: http.StatusInternalServerError,
		Detail: "An internal error occurred; it has been logged."}, false
}

// publicDetail is the message of a permission error: it names the missing
// permission and never carries a credential.
func publicDetail(err error) string {
	msg := err.Error()
	const prefix = "issuer: "
	if len(msg) > len(prefix) && msg[:len(prefix)] == prefix {
		msg = msg[len(prefix):]
	}
	return msg
}

func httpErrorDetail(he *echo.HTTPError) string {
	switch he.Code {
	case http.StatusRequestEntityTooLarge:
		return "The request body is larger than 64 KiB."
	case http.StatusNotFound:
		return "No such route."
	case http.StatusMethodNotAllowed:
		return "The route does not accept this method."
	}
	if m, ok := he.Message.(string); ok {
		return m
	}
	return ""
}

func validationProblem(fields ...*keys.FieldError) *Problem {
	p := &Problem{Type: problemBase + "validation", Title: "Invalid request", Status: http.StatusBadRequest,
		Detail: "One or more fields are invalid."}
	for _, f := range fields {
		p.Errors = append(p.Errors, FieldProblem{Field: f.Field, Message: f.Message})
	}
	if len(fields) == 1 {
		p.Detail = fields[0].Field + ": " + fields[0].Message
	}
	return p
}

func fieldProblem(field, format string, args ...any) *Problem {
	var v keys.ValidationError
	v.Add(field, format, args...)
	return validationProblem(v.Fields...)
}

// errorHandler renders every error as problem details.
func errorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		p, known := toProblem(err)
		if !known {
			log.ErrorContext(c.Request().Context(), "request failed",
				"err", err, "method", c.Request().Method, "route", c.Path(),
				"request_id", c.Response().Header().Get(echo.HeaderXRequestID))
		}
		writeProblem(c, p)
	}
}

func writeProblem(c echo.Context, p *Problem) {
	h := c.Response().Header()
	if p.challenge != "" {
		h.Set("WWW-Authenticate", p.challenge)
	}
	h.Set(echo.HeaderContentType, "application/problem+json")
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(p.Status)
		return
	}
	c.Response().WriteHeader(p.Status)
	_ = jsonEncode(c.Response(), p)
}
