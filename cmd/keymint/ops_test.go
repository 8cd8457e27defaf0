package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer collects a server's log output safely across goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runMainWith starts a server after edit has adjusted its configuration.
func runMainWith(tb testing.TB, dataDir string, edit func(*Main)) *Main {
	tb.Helper()
	m := NewMain()
	m.Stderr = io.Discard
	m.Config.Addr = "127.0.0.1:0"
	if dataDir == "" {
		dataDir = tb.TempDir()
	}
	m.Config.DataDir = dataDir
	if edit != nil {
		edit(m)
	}
	if err := m.Run(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}

// sendH is call with extra headers.
func sendH(tb testing.TB, method, u string, headers map[string]string) (int, http.Header, []byte) {
	tb.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body
}

type usageOut struct {
	Org   string `json:"org"`
	KeyID string `json:"key_id"`
	Days  []struct {
		Date      string           `json:"date"`
		Exchanges int64            `json:"exchanges"`
		Failures  map[string]int64 `json:"failures"`
	} `json:"days"`
	TotalExchanges int64      `json:"total_exchanges"`
	TotalFailures  int64      `json:"total_failures"`
	LastUsedAt     *time.Time `json:"last_used_at"`
	Keys           []struct {
		KeyID     string `json:"key_id"`
		Exchanges int64  `json:"exchanges"`
	} `json:"keys"`
}

func getUsage(tb testing.TB, m *Main, cred, path string) usageOut {
	tb.Helper()
	status, _, body := call(tb, "GET", m.URL()+path, cred, nil)
	if status != http.StatusOK {
		tb.Fatalf("GET %s: %d %s", path, status, body)
	}
	var u usageOut
	if err := json.Unmarshal(body, &u); err != nil {
		tb.Fatal(err)
	}
	return u
}

// TestUsage: exchanges and failures are counted per key and day, readable
// per key and per org, and survive a restart.
func TestUsage(t *testing.T) {
	dir := t.TempDir()
	m := runMainWith(t, dir, func(m *Main) { m.Config.UsageFlush = time.Hour })
	b := bootstrap(t, m, "counted", "EdDSA")
	k := createKey(t, m, b.AdminKey.Key, map[string]any{"name": "worker", "role": "viewer"})
	for i := 0; i < 7; i++ {
		exchange(t, m, "POST", k.ID, k.Key, nil)
	}
	wrong := strings.Replace(k.Key, k.Key[10:14], "AAAA", 1)
	for i := 0; i < 3; i++ {
		call(t, "POST", m.URL()+"/api/v1/apikeys/"+k.ID+"/token", wrong, nil)
	}
	today := time.Now().UTC().Format(time.DateOnly)
	check := func(m *Main) {
		t.Helper()
		u := getUsage(t, m, b.AdminKey.Key, "/api/v1/apikeys/"+k.ID+"/usage")
		if u.TotalExchanges != 7 || u.TotalFailures != 3 || len(u.Days) != 1 || u.Days[0].Date != today {
			t.Fatalf("key usage %+v", u)
		}
		if got := u.Days[0].Failures["bad_secret"] + u.Days[0].Failures["malformed"]; got != 3 {
			t.Fatalf("failures %v, want 3", u.Days[0].Failures)
		}
		if u.LastUsedAt == nil || time.Since(*u.LastUsedAt) > time.Minute {
			t.Fatalf("last_used_at=%v", u.LastUsedAt)
		}
		org := getUsage(t, m, b.AdminKey.Key, "/api/v1/usage?days=7")
		if org.TotalExchanges != 7 || len(org.Keys) != 1 || org.Keys[0].KeyID != k.ID {
			t.Fatalf("org usage %+v", org)
		}
	}
	check(m)
	// The shutdown flush writes what the reads above did not: one more.
	exchange(t, m, "POST", k.ID, k.Key, nil)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m2 := runMainWith(t, dir, nil)
	u := getUsage(t, m2, b.AdminKey.Key, "/api/v1/apikeys/"+k.ID+"/usage")
	if u.TotalExchanges != 8 {
		t.Fatalf("after restart total_exchanges=%d, want 8", u.TotalExchanges)
	}
	// usage:read is required, and another org's key is 404.
	viewer := createKey(t, m2, b.AdminKey.Key, map[string]any{"name": "v", "scopes": []string{"devices:read"}})
	if status, _, _ := call(t, "GET", m2.URL()+"/api/v1/usage", viewer.Key, nil); status != http.StatusForbidden {
		t.Fatalf("usage without usage:read: %d, want 403", status)
	}
	other := bootstrap(t, m2, "elsewhere", "ES256")
	if status, _, _ := call(t, "GET", m2.URL()+"/api/v1/apikeys/"+k.ID+"/usage", other.AdminKey.Key, nil); status != http.StatusNotFound {
		t.Fatalf("another org's key usage: %d, want 404", status)
	}
}

// TestFailureRateLimit: an address that keeps failing gets 429 with
// Retry-After, while the key's owner at another address is unaffected.
func TestFailureRateLimit(t *testing.T) {
	m := runMainWith(t, "", func(m *Main) {
		m.Config.FailureLimit, m.Config.FailureWindow = 5, time.Minute
		m.Config.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})
	b := bootstrap(t, m, "limited", "ES256")
	k := createKey(t, m, b.AdminKey.Key, map[string]any{"name": "svc", "role": "viewer"})
	u := m.URL() + "/api/v1/apikeys/" + k.ID + "/token"
	wrong := strings.Replace(k.Key, k.Key[10:14], "AAAA", 1)
	attacker := map[string]string{"X-Forwarded-For": "198.51.100.7", "X-API-Key": wrong}
	for i := 0; i < 5; i++ {
		if status, _, _ := sendH(t, "POST", u, attacker); status != http.StatusUnauthorized {
			t.Fatalf("failure %d: status=%d, want 401", i+1, status)
		}
	}
	status, h, body := sendH(t, "POST", u, attacker)
	if status != http.StatusTooManyRequests {
		t.Fatalf("6th failure: status=%d, want 429; %s", status, body)
	}
	if s, err := strconv.Atoi(h.Get("Retry-After")); err != nil || s < 1 || s > 60 {
		t.Fatalf("Retry-After=%q", h.Get("Retry-After"))
	}
	// Even the right secret waits, from the attacker's address.
	right := map[string]string{"X-Forwarded-For": "198.51.100.7", "X-API-Key": k.Key}
	if status, _, _ := sendH(t, "POST", u, right); status != http.StatusTooManyRequests {
		t.Fatalf("right secret from the limited address: %d, want 429", status)
	}
	// The owner, elsewhere, is never locked out by someone else's failures.
	owner := map[string]string{"X-Forwarded-For": "198.51.100.8", "X-API-Key": k.Key}
	for i := 0; i < 10; i++ {
		if status, _, body := sendH(t, "POST", u, owner); status != http.StatusOK {
			t.Fatalf("owner exchange %d: %d %s", i, status, body)
		}
	}
	// IPv6 neighbours in one /64 share a budget; the OAuth2 endpoint is
	// limited too.
	form := "grant_type=client_credentials&client_id=" + k.ID + "&client_secret=" + wrong
	for i := 0; i < 6; i++ {
		req, _ := http.NewRequest("POST", m.URL()+"/oauth2/token", strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", "2001:db8:1:2::"+strconv.Itoa(i+1))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := http.StatusUnauthorized
		if i == 5 {
			want = http.StatusTooManyRequests
		}
		if resp.StatusCode != want {
			t.Fatalf("oauth2 attempt %d: %d, want %d", i+1, resp.StatusCode, want)
		}
	}
}

var jwtRe = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+`)

// TestLogsHoldNoSecrets runs a whole session, successes and mistakes
// (secrets in the query string, wrong secrets, bad tokens), with text and
// JSON logs, and asserts the log output holds none of the secrets and
// tokens it handled.
func TestLogsHoldNoSecrets(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			var logs lockedBuffer
			m := runMainWith(t, "", func(m *Main) { m.Stderr = &logs; m.Config.LogFormat = format; m.Config.LogLevel = slog.LevelDebug })
			var secrets []string
			b := bootstrap(t, m, "quiet", "ES256")
			secrets = append(secrets, b.AdminKey.Key, m.RootKey())
			k := createKey(t, m, b.AdminKey.Key, map[string]any{"name": "svc", "role": "developer"})
			secrets = append(secrets, k.Key)
			tok := exchange(t, m, "POST", k.ID, k.Key, nil)
			secrets = append(secrets, tok.Token)
			call(t, "GET", m.URL()+"/api/v1/apikeys/"+k.ID, tok.Token, nil)
			call(t, "GET", m.URL()+"/api/v1/apikeys/"+k.ID+"/token?api_key="+k.Key, "", nil)
			call(t, "POST", m.URL()+"/api/v1/apikeys/"+k.ID+"/token", k.Key[:40]+"x", nil)
			call(t, "GET", m.URL()+"/api/v1/apikeys", tok.Token+"x", nil)
			status, _, body := call(t, "POST", m.URL()+"/api/v1/apikeys/"+k.ID+"/roll", b.AdminKey.Key, map[string]any{"grace_seconds": 0})
			if status != http.StatusOK {
				t.Fatalf("roll: %d %s", status, body)
			}
			var rolled struct{ Key string }
			json.Unmarshal(body, &rolled)
			secrets = append(secrets, rolled.Key)
			req, _ := http.NewRequest("POST", m.URL()+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(k.ID, rolled.Key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var oauth struct {
				AccessToken string `json:"access_token"`
			}
			json.NewDecoder(resp.Body).Decode(&oauth)
			resp.Body.Close()
			secrets = append(secrets, oauth.AccessToken)
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			out := logs.String()
			if !strings.Contains(out, "request") {
				t.Fatalf("no request lines logged: %q", out)
			}
			for _, s := range secrets {
				if s == "" {
					t.Fatal("a secret of the session is empty")
				}
				if strings.Contains(out, s) || strings.Contains(out, s[len(s)-20:]) {
					t.Fatalf("the log holds a secret or token ending …%s", s[len(s)-4:])
				}
			}
			if strings.Contains(out, "km_sk_") && !strings.Contains(out, "km_sk_…") || jwtRe.MatchString(out) {
				t.Fatal("the log holds something shaped like a secret or a JWT")
			}
		})
	}
}

// TestMetrics: /metrics serves Prometheus text with keymint's series.
func TestMetrics(t *testing.T) {
	m := runMainWith(t, "", nil)
	b := bootstrap(t, m, "measured", "RS256")
	exchange(t, m, "POST", b.AdminKey.ID, b.AdminKey.Key, nil)
	call(t, "POST", m.URL()+"/api/v1/apikeys/"+b.AdminKey.ID+"/token", "km_sk_bogus", nil)
	status, h, body := call(t, "GET", m.URL()+"/metrics", "", nil)
	if status != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		t.Fatalf("metrics: %d %s", status, h.Get("Content-Type"))
	}
	for _, want := range []string{
		`keymint_exchanges_total{outcome="ok"} 1`,
		`keymint_exchanges_total{outcome="malformed"} 1`,
		`keymint_token_signing_seconds_count{alg="RS256"} 1`,
		`keymint_http_requests_total{code="201",host=`,
		`keymint_http_request_duration_seconds_bucket`,
		`keymint_bbolt_size_bytes`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
