package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/keymint/keymint/handlers"
)

// openAPIRouter finds the operation of a request in handlers/openapi.json.
var openAPIRouter = sync.OnceValues(func() (routers.Router, error) {
	doc, err := openapi3.NewLoader().LoadFromData(handlers.OpenAPIDocument())
	if err != nil {
		return nil, fmt.Errorf("load openapi.json: %w", err)
	}
	doc.Servers = nil // match paths on any host: the test server's port varies
	return legacy.NewRouter(doc)
})

var openAPIOptions = &openapi3filter.Options{
	// Authentication is tested elsewhere; here any credential passes.
	AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
	IncludeResponseStatus: true, // an undocumented status is a mismatch
	SkipSettingDefaults:   true, // never rewrite what the test sent
	MultiError:            true,
	// Report the reason, not the whole schema and value.
	SchemaValidationOptions: []openapi3.SchemaValidationOption{openapi3.DisableSchemaErrorDetails()},
}

// checkOpenAPI validates one exchange against the document. The response
// must match its operation. The request must too, unless the server
// refused it: tests send bad requests on purpose, and the server
// answering 4xx is what the document promises. A request the document
// forbids but the server accepts means one of them is wrong.
func checkOpenAPI(req *http.Request, reqBody []byte, status int, header http.Header, body []byte) error {
	router, err := openAPIRouter()
	if err != nil {
		return err
	}
	ctx := context.Background()
	vreq := req.Clone(ctx)
	vreq.Body = io.NopCloser(bytes.NewReader(reqBody))
	route, params, err := router.FindRoute(vreq)
	if err != nil {
		if status == http.StatusNotFound || status == http.StatusMethodNotAllowed {
			return nil // no such route, and the server agrees
		}
		return fmt.Errorf("no operation in handlers/openapi.json, but the server answered %d: %v", status, err)
	}
	op := route.Method + " " + route.Path
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route, Options: openAPIOptions}
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil && status < 400 {
		return fmt.Errorf("operation %s: the server accepted (%d) a request the document forbids: %v", op, status, err)
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: status, Header: header,
		Body: io.NopCloser(bytes.NewReader(body)), Options: openAPIOptions,
	}
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		return fmt.Errorf("operation %s: response %d does not match the document: %v", op, status, err)
	}
	recordOperation(req.Context(), op)
	return nil
}

// openAPITransport validates every request and response it carries
// against handlers/openapi.json; a mismatch fails tb.
type openAPITransport struct {
	tb   testing.TB
	base http.RoundTripper
}

func (t openAPITransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
	}
	out := req.Clone(req.Context())
	out.Body, out.GetBody = http.NoBody, nil
	if reqBody != nil {
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(reqBody)), nil }
		out.Body, _ = out.GetBody()
	}
	resp, err := t.base.RoundTrip(out)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err := checkOpenAPI(req, reqBody, resp.StatusCode, resp.Header, body); err != nil {
		t.tb.Errorf("OpenAPI: %s %s: %v\nresponse body: %.500s", req.Method, req.URL.Path, err, body)
	}
	return resp, nil
}

// openAPIClient is an http.Client whose traffic is validated against the
// OpenAPI document, failing tb on a mismatch.
func openAPIClient(tb testing.TB) *http.Client {
	return &http.Client{Transport: openAPITransport{tb: tb, base: http.DefaultTransport}}
}

// openAPIDo sends req through openAPIClient and returns the status, headers
// and body.
func openAPIDo(tb testing.TB, req *http.Request) (int, http.Header, []byte) {
	tb.Helper()
	resp, err := openAPIClient(tb).Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, resp.Header, data
}

// Operations whose responses validated, for requests whose context
// carries a recorder (TestOpenAPIEveryRoute's).
type opRecorder struct {
	mu  sync.Mutex
	ops map[string]int
}

type opRecorderKey struct{}

func recordOperation(ctx context.Context, op string) {
	if r, ok := ctx.Value(opRecorderKey{}).(*opRecorder); ok {
		r.mu.Lock()
		r.ops[op]++
		r.mu.Unlock()
	}
}

// TestOpenAPIEveryRoute exercises every operation of the OpenAPI document
// against the real server, from a real bootstrap, and requires each
// response (and each accepted request) to validate against it.
func TestOpenAPIEveryRoute(t *testing.T) {
	m := MustRunMain(t, "")
	base := m.URL()
	rec := &opRecorder{ops: map[string]int{}}
	ctx := context.WithValue(context.Background(), opRecorderKey{}, rec)

	// do sends one request and checks its status; body is JSON unless it
	// is url.Values (a form).
	type opt func(*http.Request)
	header := func(k, v string) opt { return func(r *http.Request) { r.Header.Set(k, v) } }
	bearer := func(cred string) opt { return header("Authorization", "Bearer "+cred) }
	do := func(method, path string, body any, want int, opts ...opt) (http.Header, []byte) {
		t.Helper()
		var rd io.Reader
		ct := ""
		switch b := body.(type) {
		case nil:
		case url.Values:
			rd, ct = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
		case string:
			rd, ct = strings.NewReader(b), "application/json"
		default:
			data, err := json.Marshal(b)
			if err != nil {
				t.Fatal(err)
			}
			rd, ct = bytes.NewReader(data), "application/json"
		}
		req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		for _, o := range opts {
			o(req)
		}
		status, h, data := openAPIDo(t, req)
		if status != want {
			t.Fatalf("%s %s: status=%d, want %d; body=%.500s", method, path, status, want, data)
		}
		return h, data
	}
	decode := func(data []byte, v any) {
		t.Helper()
		if err := json.Unmarshal(data, v); err != nil {
			t.Fatalf("%v: %s", err, data)
		}
	}
	root := m.RootKey()
	expires := time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339)

	// Public routes.
	do("GET", "/healthz", nil, 200)
	do("GET", "/readyz", nil, 200)
	do("GET", "/openapi.json", nil, 200)
	do("GET", "/docs", nil, 200)
	do("GET", "/docs/redoc.standalone.js", nil, 200)
	do("GET", "/docs/nothing.js", nil, 404)

	// Orgs.
	do("GET", "/api/v1/orgs", nil, 200, bearer(root)) // none yet
	_, data := do("POST", "/api/v1/orgs", map[string]any{"id": "every", "name": "Every Route", "alg": "EdDSA",
		"policy": map[string]any{"max_keys": 20, "token_ttl": "10m", "audiences": []string{"https://api.every.test"}}}, 201, bearer(root))
	var b struct {
		AdminKey struct{ ID, Key string } `json:"admin_key"`
	}
	decode(data, &b)
	admin := b.AdminKey.Key
	do("POST", "/api/v1/orgs", map[string]any{"id": "every", "name": "again"}, 409, bearer(root))
	do("POST", "/api/v1/orgs", map[string]any{"id": "other", "name": "x"}, 403, bearer(admin))
	do("POST", "/api/v1/orgs", map[string]any{"id": "Not An ID", "name": "x"}, 400, bearer(root))
	do("GET", "/api/v1/orgs", nil, 200, bearer(root))
	do("GET", "/api/v1/orgs", nil, 200, header("X-API-Key", admin))
	do("GET", "/api/v1/orgs/every", nil, 200, bearer(admin))
	do("GET", "/api/v1/orgs/nowhere", nil, 404, bearer(root))
	do("PATCH", "/api/v1/orgs/every", map[string]any{"name": "Every Route Inc", "policy": map[string]any{"expiry_warning": "7d", "max_key_lifetime": "180d"}}, 200, bearer(admin))
	do("PATCH", "/api/v1/orgs/every", map[string]any{"policy": map[string]any{"max_keys": 0}}, 400, bearer(admin))
	do("PATCH", "/api/v1/orgs/every", map[string]any{"policy": map[string]any{"audiences": []string{}}}, 200, bearer(root))
	do("PATCH", "/api/v1/orgs/every", map[string]any{"policy": map[string]any{"audiences": []string{"https://api.every.test"}}}, 200, bearer(root))

	// API keys.
	_, data = do("POST", "/api/v1/apikeys", map[string]any{"name": "deployer", "role": "developer", "scopes": []string{"deploys:write"},
		"allowed_cidrs": []string{"127.0.0.0/8"}, "expires_at": expires, "claims": map[string]any{"team": "platform"}}, 201, bearer(admin))
	var k struct{ ID, Key string }
	decode(data, &k)
	_, data = do("POST", "/api/v1/apikeys", map[string]any{"name": "reader", "role": "viewer", "type": "pk", "expires_at": expires}, 201, bearer(admin))
	var viewer struct{ ID, Key string }
	decode(data, &viewer)
	_, data = do("POST", "/api/v1/apikeys", map[string]any{"name": "narrow", "scopes": []string{"deploys:read"}, "expires_at": expires}, 201, bearer(admin))
	var narrow struct{ ID, Key string }
	decode(data, &narrow)
	do("POST", "/api/v1/apikeys", map[string]any{"name": "x", "role": "viewer", "expires_at": expires}, 403, bearer(viewer.Key))
	do("POST", "/api/v1/apikeys", map[string]any{"name": "x", "role": "nobody", "expires_at": expires}, 400, bearer(admin))
	do("POST", "/api/v1/apikeys", `{"name":"`+strings.Repeat("x", 70<<10)+`"}`, 413, bearer(admin))
	do("POST", "/api/v1/apikeys", "name=x", 415, bearer(admin), header("Content-Type", "text/plain"))
	h, _ := do("GET", "/api/v1/apikeys?limit=1&status=all", nil, 200, bearer(admin))
	if h.Get("Link") == "" {
		t.Fatal("a first page of 1 of 4 keys has no Link header")
	}
	do("GET", "/api/v1/apikeys?q=deploy", nil, 200, header("X-API-Key", admin))
	do("GET", "/api/v1/apikeys?limit=500", nil, 400, bearer(admin))
	do("GET", "/api/v1/apikeys", nil, 401)
	do("GET", "/api/v1/apikeys", nil, 401, bearer("km_sk_not-a-real-secret"))
	do("GET", "/api/v1/apikeys/"+k.ID, nil, 200, bearer(admin))
	do("GET", "/api/v1/apikeys/"+k.ID+"?withValue=true", nil, 400, bearer(admin))
	do("GET", "/api/v1/apikeys/0190b4a2-0000-7000-8000-000000000000", nil, 404, bearer(admin))
	do("PATCH", "/api/v1/apikeys/"+k.ID, map[string]any{"scopes": []string{"deploys:write", "builds:write"}}, 200, bearer(admin))
	do("PATCH", "/api/v1/apikeys/"+k.ID, map[string]any{"colour": "red"}, 400, bearer(admin))
	do("PUT", "/api/v1/apikeys/"+k.ID, map[string]any{"name": "deployer", "role": "developer", "scopes": []string{"deploys:write"},
		"allowed_cidrs": []string{"127.0.0.0/8"}, "expires_at": expires}, 200, bearer(admin))

	// The exchange, and the OAuth2 endpoints.
	_, data = do("GET", "/api/v1/apikeys/"+k.ID+"/token?scope=deploys:write&ttl=60", nil, 200, bearer(k.Key))
	var tok struct{ Token string }
	decode(data, &tok)
	do("POST", "/api/v1/apikeys/"+k.ID+"/token", map[string]any{"scope": "deploys:write", "audience": "https://api.every.test", "ttl": "5m"}, 200, header("X-API-Key", k.Key))
	do("POST", "/api/v1/apikeys/"+k.ID+"/token", url.Values{"ttl": {"120"}}, 200, bearer(k.Key))
	do("POST", "/api/v1/apikeys/"+k.ID+"/token", nil, 200, bearer(k.Key))
	do("POST", "/api/v1/apikeys/"+k.ID+"/token", map[string]any{"scope": "signing_keys:admin"}, 400, bearer(k.Key))
	do("POST", "/api/v1/apikeys/"+k.ID+"/token", nil, 401, bearer(viewer.Key))
	do("GET", "/api/v1/apikeys/"+k.ID+"/token?api_key="+url.QueryEscape(k.Key), nil, 400)
	do("POST", "/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"deploys:write"}}, 200,
		func(r *http.Request) { r.SetBasicAuth(url.QueryEscape(k.ID), url.QueryEscape(k.Key)) })
	do("POST", "/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {k.ID}, "client_secret": {k.Key}}, 200)
	do("POST", "/oauth2/token", url.Values{"grant_type": {"password"}}, 400)
	do("POST", "/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {k.ID}, "client_secret": {viewer.Key}}, 401)
	do("POST", "/oauth2/introspect", url.Values{"token": {tok.Token}}, 200, bearer(admin))
	do("POST", "/oauth2/introspect", url.Values{"token": {"not.a.token"}}, 200,
		func(r *http.Request) { r.SetBasicAuth(url.QueryEscape(k.ID), url.QueryEscape(k.Key)) })
	do("POST", "/oauth2/introspect", url.Values{}, 400, bearer(admin))
	do("POST", "/oauth2/introspect", url.Values{"token": {tok.Token}}, 403, bearer(root))
	do("POST", "/oauth2/introspect", url.Values{"token": {tok.Token}}, 401)

	// Discovery.
	h, _ = do("GET", "/orgs/every/.well-known/jwks.json", nil, 200)
	do("GET", "/orgs/every/.well-known/jwks.json", nil, 304, header("If-None-Match", h.Get("ETag")))
	do("GET", "/orgs/nowhere/.well-known/jwks.json", nil, 404)
	do("GET", "/orgs/every/.well-known/oauth-authorization-server", nil, 200)
	do("GET", "/.well-known/oauth-authorization-server/orgs/every", nil, 200)
	do("GET", "/orgs/every/.well-known/openid-configuration", nil, 200)
	do("GET", "/orgs/nowhere/.well-known/openid-configuration", nil, 404)

	// Signing keys, usage, audit.
	do("GET", "/api/v1/signing-keys", nil, 200, bearer(admin))
	do("POST", "/api/v1/signing-keys/rotate", nil, 200, bearer(admin))
	do("POST", "/api/v1/signing-keys/rotate", nil, 403, bearer(viewer.Key))
	do("GET", "/api/v1/usage", nil, 200, bearer(admin))
	do("GET", "/api/v1/usage?days=7", nil, 200, header("X-API-Key", admin))
	do("GET", "/api/v1/usage?days=1000", nil, 400, bearer(admin))
	do("GET", "/api/v1/apikeys/"+k.ID+"/usage", nil, 200, bearer(admin))
	do("GET", "/api/v1/apikeys/"+viewer.ID+"/usage", nil, 200, bearer(admin))
	do("GET", "/api/v1/apikeys/0190b4a2-0000-7000-8000-000000000000/usage", nil, 404, bearer(admin))
	h, _ = do("GET", "/api/v1/audit?limit=2", nil, 200, bearer(admin))
	if h.Get("Link") == "" {
		t.Fatal("a first page of 2 audit events has no Link header")
	}
	do("GET", "/api/v1/audit?action=key.create&key_id="+k.ID, nil, 200, bearer(admin))
	do("GET", "/api/v1/audit?action=nothing.happened", nil, 200, bearer(admin))
	do("GET", "/api/v1/audit", nil, 403, bearer(narrow.Key))

	// The Arthur-compatible routes.
	_, data = do("POST", "/auth/api_keys", map[string]any{"description": "legacy client", "roles": []string{"viewer"}}, 200, bearer(admin))
	var ak struct{ ID string }
	decode(data, &ak)
	do("POST", "/auth/api_keys", map[string]any{"description": "two roles", "roles": []string{"viewer", "admin"}}, 400, bearer(admin))
	do("GET", "/auth/api_keys", nil, 200, bearer(admin))
	do("DELETE", "/auth/api_keys/deactivate/"+ak.ID, nil, 200, bearer(admin))
	do("DELETE", "/auth/api_keys/deactivate/0190b4a2-0000-7000-8000-000000000000", nil, 404, bearer(admin))

	// The end of a key.
	do("POST", "/api/v1/apikeys/"+k.ID+"/roll", map[string]any{"grace_seconds": 0}, 200, bearer(admin))
	do("POST", "/api/v1/apikeys/"+viewer.ID+"/roll", nil, 200, bearer(admin))
	do("POST", "/api/v1/apikeys/"+k.ID+"/roll", map[string]any{"grace_seconds": -1}, 400, bearer(admin))
	do("POST", "/api/v1/apikeys/"+k.ID+"/revoke", nil, 200, bearer(admin))
	do("POST", "/api/v1/apikeys/"+k.ID+"/roll", nil, 409, bearer(admin))
	do("PATCH", "/api/v1/apikeys/"+k.ID, map[string]any{"name": "too late"}, 409, bearer(admin))
	do("DELETE", "/api/v1/apikeys/"+k.ID, nil, 200, bearer(admin))
	do("DELETE", "/api/v1/apikeys/"+k.ID, nil, 404, bearer(admin))

	// Operations.
	do("GET", "/api/v1/admin/backup", nil, 200, bearer(root))
	do("GET", "/api/v1/admin/backup", nil, 403, bearer(admin))
	do("GET", "/metrics", nil, 200)

	// Every operation of the document was exercised and validated.
	doc, err := openapi3.NewLoader().LoadFromData(handlers.OpenAPIDocument())
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if rec.ops[method+" "+path] == 0 {
				missing = append(missing, method+" "+path)
			}
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("operations never exercised with a valid response:\n  %s", strings.Join(missing, "\n  "))
	}
}

// TestOpenAPITransportCatchesMismatch: the validating transport reports a
// response that breaks the document, a request the server wrongly
// accepted, and a route the document lacks.
func TestOpenAPITransportCatchesMismatch(t *testing.T) {
	get := func(path string) *http.Request {
		req, _ := http.NewRequest("GET", "http://keymint.test"+path, nil)
		return req
	}
	problem := []byte(`{"type":"about:blank","title":"Not Found","status":404,"detail":"No such route."}`)
	for _, tt := range []struct {
		name   string
		req    *http.Request
		status int
		header http.Header
		body   []byte
		want   string // in the error; "" for none
	}{
		{"OK", get("/healthz"), 200, http.Header{"Content-Type": {"application/json"}}, []byte(`{"status":"ok"}`), ""},
		{"BadBody", get("/healthz"), 200, http.Header{"Content-Type": {"application/json"}}, []byte(`{"status":"fine"}`), "does not match"},
		{"UndocumentedStatus", get("/healthz"), 418, http.Header{"Content-Type": {"application/json"}}, []byte(`{}`), "status is not supported"},
		{"WrongContentType", get("/healthz"), 200, http.Header{"Content-Type": {"text/plain"}}, []byte(`ok`), "Content-Type"},
		{"MissingHeader", get("/orgs/acme/.well-known/jwks.json"), 200, http.Header{"Content-Type": {"application/jwk-set+json"}}, []byte(`{"keys":[]}`), "Cache-Control"},
		{"AcceptedBadRequest", get("/api/v1/apikeys?limit=900"), 200, http.Header{"Content-Type": {"application/json"}}, []byte(`[]`), "forbids"},
		{"RefusedBadRequest", get("/api/v1/apikeys?limit=900"), 400, http.Header{"Content-Type": {"application/problem+json"}},
			[]byte(`{"type":"urn:keymint:problem:validation","title":"Invalid request","status":400,"errors":[{"field":"limit","message":"must be between 1 and 200"}]}`), ""},
		{"UnknownRouteServed", get("/api/v1/secret-admin"), 200, http.Header{"Content-Type": {"application/json"}}, []byte(`{}`), "no operation"},
		{"UnknownRoute404", get("/api/v1/secret-admin"), 404, http.Header{"Content-Type": {"application/problem+json"}}, problem, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := checkOpenAPI(tt.req, nil, tt.status, tt.header, tt.body)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected mismatch: %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("no mismatch reported, want one mentioning %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("err=%v, want it to mention %q", err, tt.want)
			}
		})
	}
}
