package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Helpers shared by routes_test.go, lifecycle_test.go and cli_test.go.
// They build on MustRunMain, call, bootstrap and assertProblem of
// main_test.go.

// fakeClock is a settable clock, safe for concurrent use: the server reads
// it from its request goroutines while the test advances it.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock(start time.Time) *fakeClock { return &fakeClock{now: start} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// runMain starts the whole service in-process like MustRunMain, after
// configure (which may be nil) has adjusted the Main: its clock, data
// directory, trusted proxies or public URL.
func startMain(tb testing.TB, configure func(*Main)) *Main {
	tb.Helper()
	m := NewMain()
	m.Stderr = io.Discard
	m.Config.Addr = "127.0.0.1:0"
	m.Config.DataDir = tb.TempDir()
	if configure != nil {
		configure(m)
	}
	if err := m.Run(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}

// reply is one HTTP response, read whole.
type reply struct {
	status int
	h      http.Header
	body   []byte
}

func (r reply) String() string { return string(r.body) }

// send sends a request with the given headers. body may be nil, a string
// or []byte (sent as is), an io.Reader (sent without a Content-Length), or
// any other value, sent as JSON.
func httpSend(tb testing.TB, method, u string, hdr map[string]string, body any) reply {
	tb.Helper()
	r, err := httpTrySend(method, u, hdr, body)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// trySend is send for goroutines other than the test's: it returns its
// error instead of failing the test.
func httpTrySend(method, u string, hdr map[string]string, body any) (reply, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	case io.Reader:
		rd = b
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return reply{}, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return reply{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	return reply{status: resp.StatusCode, h: resp.Header, body: data}, nil
}

// bearerHdr and apiKeyHdr are the two ways a credential is sent.
func bearerHdr(cred string) map[string]string {
	if cred == "" {
		return nil
	}
	return map[string]string{"Authorization": "Bearer " + cred}
}

func apiKeyHdr(cred string) map[string]string { return map[string]string{"X-API-Key": cred} }

// as sends a request with cred as a bearer credential.
func callAs(tb testing.TB, cred, method, u string, body any) reply {
	tb.Helper()
	return httpSend(tb, method, u, bearerHdr(cred), body)
}

// problemBody is an RFC 9457 problem details body.
type problemBody struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

// wantProblem checks that r is a problem with status naming every one of
// fields, and returns it.
func wantProblem(tb testing.TB, r reply, status int, fields ...string) problemBody {
	tb.Helper()
	if r.status != status {
		tb.Fatalf("status=%d, want %d; body=%s", r.status, status, r.body)
	}
	if got := r.h.Get("Content-Type"); got != "application/problem+json" {
		tb.Fatalf("Content-Type=%q, want application/problem+json; body=%s", got, r.body)
	}
	var p problemBody
	if err := json.Unmarshal(r.body, &p); err != nil {
		tb.Fatalf("problem body: %v: %s", err, r.body)
	}
	if p.Status != status || p.Title == "" || p.Type == "" {
		tb.Fatalf("problem %s, want status %d with a type and title", r.body, status)
	}
	for _, f := range fields {
		found := false
		for _, e := range p.Errors {
			if e.Field == f {
				found = true
			}
		}
		if !found {
			tb.Fatalf("problem names no field %q: %s", f, r.body)
		}
	}
	return p
}

// wantStatus fails unless r has status.
func wantStatus(tb testing.TB, r reply, status int) {
	tb.Helper()
	if r.status != status {
		tb.Fatalf("status=%d, want %d; body=%s", r.status, status, r.body)
	}
}

// wantUnauthorized checks a 401 problem with a Bearer challenge.
func wantUnauthorized(tb testing.TB, r reply) {
	tb.Helper()
	wantProblem(tb, r, http.StatusUnauthorized)
	if got := r.h.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
		tb.Fatalf("WWW-Authenticate=%q, want a Bearer challenge", got)
	}
}

// keyBody is an API key as the API renders it, with the secret and
// warnings of a create, roll or update.
type keyBody struct {
	ID           string         `json:"id"`
	Org          string         `json:"org"`
	Name         string         `json:"name"`
	Type         string         `json:"type"`
	Role         string         `json:"role"`
	Scopes       []string       `json:"scopes"`
	AllowedCIDRs []string       `json:"allowed_cidrs"`
	ExpiresAt    *time.Time     `json:"expires_at"`
	Enabled      bool           `json:"enabled"`
	Status       string         `json:"status"`
	ExpiresSoon  bool           `json:"expires_soon"`
	Claims       map[string]any `json:"claims"`
	CreatedBy    string         `json:"created_by"`
	UpdatedBy    string         `json:"updated_by"`
	CreatedAt    time.Time      `json:"created_at"`
	UpdatedAt    time.Time      `json:"updated_at"`
	RevokedAt    *time.Time     `json:"revoked_at"`
	MaskedValue  string         `json:"maskedValue"`
	Key          string         `json:"key"`
	Warnings     []string       `json:"warnings"`
}

func decodeAs[T any](tb testing.TB, r reply) T {
	tb.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		tb.Fatalf("decode %T: %v: %s", v, err, r.body)
	}
	return v
}

// inDays is an RFC 3339 time d days after now.
func inDays(now time.Time, d float64) string {
	return now.Add(time.Duration(d * 24 * float64(time.Hour))).UTC().Format(time.RFC3339)
}

// mkKey creates a key with cred and returns it with its secret. A request
// without expires_at gets one 30 days after now.
func mkKey(tb testing.TB, m *Main, cred string, req map[string]any) keyBody {
	tb.Helper()
	if _, ok := req["expires_at"]; !ok {
		req["expires_at"] = inDays(time.Now(), 30)
	}
	r := callAs(tb, cred, "POST", m.URL()+"/api/v1/apikeys", req)
	if r.status != http.StatusCreated {
		tb.Fatalf("create key %v: status=%d body=%s", req, r.status, r.body)
	}
	return decodeAs[keyBody](tb, r)
}

// getKey reads a key back with cred.
func getKeyAs(tb testing.TB, m *Main, cred, id string) keyBody {
	tb.Helper()
	r := callAs(tb, cred, "GET", m.URL()+"/api/v1/apikeys/"+id, nil)
	wantStatus(tb, r, http.StatusOK)
	return decodeAs[keyBody](tb, r)
}

// bootstrapWith creates an org with a policy (nil for the defaults) and
// returns its id, admin key id and admin secret.
func bootstrapWith(tb testing.TB, m *Main, org string, policy map[string]any) (adminID, adminSecret string) {
	tb.Helper()
	body := map[string]any{"id": org, "name": "Org " + org}
	if policy != nil {
		body["policy"] = policy
	}
	r := callAs(tb, m.RootKey(), "POST", m.URL()+"/api/v1/orgs", body)
	if r.status != http.StatusCreated {
		tb.Fatalf("bootstrap %s: status=%d body=%s", org, r.status, r.body)
	}
	b := decodeAs[bootstrapOut](tb, r)
	return b.AdminKey.ID, b.AdminKey.Key
}

// tryExchange posts secret (as a bearer credential) to key id's token
// endpoint and returns the reply, whatever it is.
func tryExchange(tb testing.TB, m *Main, id, secret string) reply {
	tb.Helper()
	return callAs(tb, secret, "POST", m.URL()+"/api/v1/apikeys/"+id+"/token", nil)
}

// jwtFor exchanges a key's secret for a JWT.
func jwtFor(tb testing.TB, m *Main, id, secret string) string {
	tb.Helper()
	return exchange(tb, m, "POST", id, secret, nil).Token
}

var linkNextRe = regexp.MustCompile(`^<([^>]+)>;\s*rel="next"$`)

// nextLink returns the absolute URL of r's Link rel="next", or "".
func nextLink(tb testing.TB, m *Main, r reply) string {
	tb.Helper()
	l := r.h.Get("Link")
	if l == "" {
		return ""
	}
	sm := linkNextRe.FindStringSubmatch(l)
	if sm == nil {
		tb.Fatalf("Link=%q, want <…>; rel=\"next\"", l)
	}
	base, _ := url.Parse(m.URL())
	ref, err := url.Parse(sm[1])
	if err != nil {
		tb.Fatalf("Link target %q: %v", sm[1], err)
	}
	return base.ResolveReference(ref).String()
}

// ids lists the ids of keys (or events) in order.
func idsOf[T interface{ id() string }](xs []T) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = x.id()
	}
	return out
}

func (k keyBody) id() string { return k.ID }
