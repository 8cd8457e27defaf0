package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// maxBody is the largest request body accepted; larger gets 413.
const maxBody = 64 << 10

// decodeJSON reads the request body into v strictly: unknown fields,
// duplicate keys and keys differing only in case are refused (Go's decoder
// would silently keep the last or match case-insensitively), as is
// trailing data. An empty body leaves v as it is when allowEmpty.
func decodeJSON(c echo.Context, v any, allowEmpty bool) error {
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		var he *echo.HTTPError // from the BodyLimit middleware
		if errors.As(err, &mbe) || errors.As(err, &he) && he.Code == http.StatusRequestEntityTooLarge {
			return echo.NewHTTPError(http.StatusRequestEntityTooLarge)
		}
		return fieldProblem("body", "could not read the request body")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if allowEmpty {
			return nil
		}
		return fieldProblem("body", "a JSON object is required")
	}
	if ct := c.Request().Header.Get(echo.HeaderContentType); ct != "" && !strings.HasPrefix(ct, echo.MIMEApplicationJSON) {
		return &Problem{Type: "about:blank", Title: http.StatusText(http.StatusUnsupportedMediaType),
			Status: http.StatusUnsupportedMediaType, Detail: "Send the body as application/json."}
	}
	if err := checkKeys(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonProblem(err)
	}
	if dec.More() {
		return fieldProblem("body", "unexpected data after the JSON object")
	}
	return nil
}

// jsonProblem turns a decode error into a field-level problem.
func jsonProblem(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "body"
		}
		return fieldProblem(field, "must be %s", jsonKind(te.Type.Kind().String()))
	case errors.As(err, &se):
		return fieldProblem("body", "malformed JSON at offset %d", se.Offset)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return fieldProblem(name, "unknown field")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fieldProblem("body", "truncated JSON")
	}
	return fieldProblem("body", "%s", strings.TrimPrefix(err.Error(), "json: "))
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	case "bool":
		return "true or false"
	case "int", "int64", "float64":
		return "a number"
	}
	return "of another type"
}

// checkKeys walks the JSON document and refuses any object holding the
// same key twice, compared case-insensitively.
func checkKeys(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	type frame struct {
		seen    map[string]bool // nil for arrays
		wantKey bool
		path    string // of this object or array
		lastKey string
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return jsonProblem(err)
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.seen != nil && top.wantKey {
			if k, ok := tok.(string); ok {
				lk := strings.ToLower(k)
				if top.seen[lk] {
					return fieldProblem(joinPath(top.path, k), "appears more than once (keys are compared case-insensitively)")
				}
				top.seen[lk] = true
				top.lastKey, top.wantKey = k, false
				continue
			}
		}
		d, isDelim := tok.(json.Delim)
		if isDelim && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			if len(stack) > 0 && stack[len(stack)-1].seen != nil {
				stack[len(stack)-1].wantKey = true
			}
			continue
		}
		if isDelim {
			path := ""
			if top != nil {
				path = top.path
				if top.seen != nil {
					path = joinPath(top.path, top.lastKey)
				}
			}
			f := &frame{path: path}
			if d == '{' {
				f.seen, f.wantKey = map[string]bool{}, true
			}
			stack = append(stack, f)
			continue
		}
		if top != nil && top.seen != nil {
			top.wantKey = true // a scalar value ends the member
		}
	}
}

func joinPath(base, k string) string {
	if base == "" {
		return k
	}
	return base + "." + k
}

// parseTime reads an optional RFC 3339 timestamp field. A missing field
// gives set == false; an explicit null gives set == true and a nil time.
func parseTime(field string, raw json.RawMessage) (set bool, t *time.Time, err error) {
	if raw == nil {
		return false, nil, nil
	}
	if string(raw) == "null" {
		return true, nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return true, nil, fieldProblem(field, "must be an RFC 3339 timestamp string")
	}
	v, perr := time.Parse(time.RFC3339, s)
	if perr != nil {
		return true, nil, fieldProblem(field, "%q is not an RFC 3339 timestamp (like 2027-01-31T00:00:00Z)", s)
	}
	v = v.UTC()
	return true, &v, nil
}
