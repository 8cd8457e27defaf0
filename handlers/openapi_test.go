package handlers_test

import (
	"bytes"
	"context"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"

	"github.com/keymint/keymint/handlers"
)

func loadOpenAPI(tb testing.TB) *openapi3.T {
	tb.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(handlers.OpenAPIDocument())
	if err != nil {
		tb.Fatalf("load openapi.json: %v", err)
	}
	return doc
}

// TestOpenAPIDocument: the document is valid OpenAPI 3, and each operation
// documents the responses every route of its kind can give.
func TestOpenAPIDocument(t *testing.T) {
	doc := loadOpenAPI(t)
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not valid OpenAPI 3: %v", err)
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			name := method + " " + path
			if op.OperationID == "" || op.Summary == "" || len(op.Tags) == 0 {
				t.Errorf("%s: wants an operationId, a summary and a tag", name)
			}
			if op.Security == nil {
				t.Errorf("%s: wants security (an empty list if public)", name)
			}
			has := func(status string) bool { return op.Responses.Value(status) != nil }
			if op.RequestBody != nil && !has("413") {
				t.Errorf("%s: takes a body but documents no 413", name)
			}
			if op.Security != nil && len(*op.Security) > 0 && !has("401") {
				t.Errorf("%s: needs a credential but documents no 401", name)
			}
			if strings.Contains(path, "{") && !strings.HasPrefix(path, "/api/v1/apikeys/{id}/token") && !has("404") {
				t.Errorf("%s: takes an id but documents no 404", name)
			}
		}
	}
}

// echoPath turns an echo route path into an OpenAPI path template.
var echoParam = regexp.MustCompile(`:([A-Za-z0-9_]+)`)

func echoPath(p string) string { return echoParam.ReplaceAllString(p, "{$1}") }

// TestOpenAPIRoutes: every route the server registers has an operation in
// the document, and every operation a route, so the two cannot drift.
func TestOpenAPIRoutes(t *testing.T) {
	_, svc := newServer(t)
	srv, err := handlers.New(handlers.Config{
		Service: svc, RootKey: rootKey,
		Metrics: handlers.NewMetrics(nil), // /metrics exists only with metrics configured
	})
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for _, r := range srv.Echo().Routes() {
		if r.Method == echo.RouteNotFound {
			continue // a group's catch-all, so its middleware sees unknown paths
		}
		served[r.Method+" "+echoPath(r.Path)] = true
	}
	documented := map[string]bool{}
	for path, item := range loadOpenAPI(t).Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	for _, r := range sortedKeys(served) {
		if !documented[r] {
			t.Errorf("route %s is served but not in handlers/openapi.json", r)
		}
	}
	for _, r := range sortedKeys(documented) {
		if !served[r] {
			t.Errorf("operation %s is in handlers/openapi.json but not served", r)
		}
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestOpenAPIServed: the document and its viewer are public, the viewer
// loads only what the server itself serves, under a CSP.
func TestOpenAPIServed(t *testing.T) {
	srv, _ := newServer(t)
	h := srv.Handler()

	rec := serve(h, "GET", "/openapi.json", "", "")
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("/openapi.json: status=%d Content-Type=%q", rec.Code, rec.Header().Get("Content-Type"))
	}
	if !bytes.Equal(rec.Body.Bytes(), handlers.OpenAPIDocument()) {
		t.Fatal("/openapi.json differs from the embedded document")
	}

	for _, path := range []string{"/docs", "/docs/index.html"} {
		rec = serve(h, "GET", path, "", "")
		if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
			t.Fatalf("%s: status=%d Content-Type=%q", path, rec.Code, rec.Header().Get("Content-Type"))
		}
		page := rec.Body.String()
		if !strings.Contains(page, `spec-url="/openapi.json"`) || !strings.Contains(page, `src="/docs/redoc.standalone.js"`) {
			t.Fatalf("%s does not load the viewer from /docs and the document from /openapi.json:\n%s", path, page)
		}
		if strings.Contains(page, "://") {
			t.Fatalf("%s loads something from another origin:\n%s", path, page)
		}
		csp := rec.Header().Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Fatalf("%s: Content-Security-Policy %q lacks %q", path, csp, want)
			}
		}
	}

	rec = serve(h, "GET", "/docs/redoc.standalone.js", "", "")
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/javascript") {
		t.Fatalf("bundle: status=%d Content-Type=%q", rec.Code, rec.Header().Get("Content-Type"))
	}
	if rec.Body.Len() < 500_000 || !strings.Contains(rec.Body.String(), "ReDoc") {
		t.Fatalf("bundle: %d bytes, not the Redoc standalone bundle", rec.Body.Len())
	}

	for _, path := range []string{"/docs/README.md", "/docs/..%2fopenapi.go", "/docs/LICENSE.redoc"} {
		rec = serve(h, "GET", path, "", "")
		if rec.Code != http.StatusNotFound || rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Fatalf("%s: status=%d Content-Type=%q, want a 404 problem", path, rec.Code, rec.Header().Get("Content-Type"))
		}
	}
}
