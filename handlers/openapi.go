package handlers

import (
	"bytes"
	"embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// openAPIDocument is the OpenAPI 3.0.3 description of every route of
// routes(), edited by hand. Tests keep it honest: handlers' TestOpenAPIRoutes
// checks both ways that each registered route has an operation and each
// operation a route, and cmd/keymint validates every request and response
// of its end-to-end tests against it (openapi_test.go).
//
//go:embed openapi.json
var openAPIDocument []byte

// docsFS is the API viewer: a page and the vendored Redoc bundle (see
// docs/README.md).
//
//go:embed docs/index.html docs/redoc.standalone.js
var docsFS embed.FS

// docsCSP lets the viewer load only its own script and this server's
// document. Redoc injects its styles (styled-components) and runs its
// search index in a Worker built from a blob: URL.
const docsCSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src blob:; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// docsAssets maps the files under /docs/ to their content types.
var docsAssets = map[string]string{
	"redoc.standalone.js": "text/javascript; charset=utf-8",
}

// OpenAPIDocument returns the OpenAPI 3 document served at /openapi.json.
func OpenAPIDocument() []byte { return bytes.Clone(openAPIDocument) }

func (s *Server) openAPI(c echo.Context) error {
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openAPIDocument)
}

// docs serves the viewer's page.
func (s *Server) docs(c echo.Context) error {
	return serveDocsFile(c, "index.html", echo.MIMETextHTMLCharsetUTF8)
}

// docsAsset serves the viewer's script.
func (s *Server) docsAsset(c echo.Context) error {
	name := c.Param("asset")
	if name == "index.html" {
		return s.docs(c)
	}
	ct, ok := docsAssets[name]
	if !ok {
		return notFound("file")
	}
	return serveDocsFile(c, name, ct)
}

func serveDocsFile(c echo.Context, name, contentType string) error {
	body, err := docsFS.ReadFile("docs/" + name)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Content-Security-Policy", docsCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if contentType != echo.MIMETextHTMLCharsetUTF8 {
		h.Set(echo.HeaderCacheControl, "public, max-age=86400")
	}
	return c.Blob(http.StatusOK, contentType, body)
}
