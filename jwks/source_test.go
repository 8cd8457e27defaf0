package jwks_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keymint/keymint/jwks"
)

func TestRemoteSource_CacheLifetime(t *testing.T) {
	es, _, _ := testKeys(t)
	for _, tc := range []struct {
		cacheControl string
		ttl          time.Duration
	}{
		{"", jwks.DefaultCacheTTL},
		{"public, max-age=120", 120 * time.Second},
		{"max-age=600, public", 10 * time.Minute},
		{"max-age=5", jwks.MinCacheTTL},
		{"max-age=0", jwks.MinCacheTTL},
		{"max-age=999999999999", jwks.MaxCacheTTL},
		{"max-age=junk", jwks.DefaultCacheTTL},
		{"no-store", jwks.MinCacheTTL},
		{"no-cache, max-age=600", jwks.MinCacheTTL},
		{`MAX-AGE="300"`, 5 * time.Minute},
	} {
		t.Run(tc.cacheControl, func(t *testing.T) {
			srv := newJWKSServer(t, es)
			srv.SetCacheControl(tc.cacheControl)
			clock := newFakeClock()
			src := jwks.NewRemoteSource(jwks.WithHTTPClient(srv.Client()), jwks.WithClock(clock.Now))
			iss := srv.Issuer("acme")
			get := func() {
				t.Helper()
				set, err := src.KeySet(context.Background(), iss, false)
				if err != nil || set.Len() != 1 {
					t.Fatalf("set=%v err=%v", set, err)
				}
			}
			get()
			clock.Advance(tc.ttl - time.Second)
			get()
			if got := srv.hits.Load(); got != 1 {
				t.Fatalf("fetches=%d before the lifetime ran out, want 1", got)
			}
			clock.Advance(time.Second)
			get()
			if got := srv.hits.Load(); got != 2 {
				t.Fatalf("fetches=%d after the lifetime ran out, want 2", got)
			}
		})
	}
}

func TestRemoteSource_SharedFetch(t *testing.T) {
	es, _, _ := testKeys(t)
	var hits atomic.Int64
	release := make(chan struct{})
	body, err := jwks.Marshal([]jwks.PublicKey{es.public()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		<-release
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	src := jwks.NewRemoteSource(jwks.WithHTTPClient(srv.Client()))
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			set, err := src.KeySet(context.Background(), srv.URL, true)
			if err != nil || set.Len() != 1 {
				t.Errorf("set=%v err=%v", set, err)
			}
		}()
	}
	time.Sleep(20 * time.Millisecond) // let the callers pile up
	close(release)
	wg.Wait()
	if got := hits.Load(); got != 1 {
		t.Fatalf("50 concurrent callers caused %d fetches, want 1", got)
	}
}

func TestRemoteSource_Limits(t *testing.T) {
	es, _, _ := testKeys(t)
	body, _ := jwks.Marshal([]jwks.PublicKey{es.public()})
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		opts    []jwks.RemoteOption
		ok      bool
	}{
		{"OK", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/orgs/acme/.well-known/jwks.json" {
				http.NotFound(w, r)
				return
			}
			_, _ = w.Write(body)
		}, nil, true},
		{"AtSizeCap", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(body) }, []jwks.RemoteOption{jwks.WithMaxResponseSize(int64(len(body)))}, true},
		{"OverSizeCap", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(body) }, []jwks.RemoteOption{jwks.WithMaxResponseSize(int64(len(body)) - 1)}, false},
		{"OverDefaultCap", func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(`{"keys":[],"pad":"`))
			_, _ = w.Write([]byte(strings.Repeat("A", jwks.DefaultMaxResponseSize)))
			_, _ = w.Write([]byte(`"}`))
		}, nil, false},
		{"Status404", http.NotFound, nil, false},
		{"NotJSON", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("<html>")) }, nil, false},
		{"PrivateKey", func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(`{"keys":[{"kty":"oct","kid":"a","k":"c2VjcmV0"}]}`))
		}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			t.Cleanup(srv.Close)
			src := jwks.NewRemoteSource(append([]jwks.RemoteOption{jwks.WithHTTPClient(srv.Client())}, tc.opts...)...)
			set, err := src.KeySet(context.Background(), srv.URL+"/orgs/acme", false)
			if tc.ok != (err == nil) {
				t.Fatalf("set=%v err=%v, want ok=%v", set, err, tc.ok)
			}
		})
	}
}

func TestJWKSURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://keymint.example/orgs/acme":  "https://keymint.example/orgs/acme/.well-known/jwks.json",
		"https://keymint.example/orgs/acme/": "https://keymint.example/orgs/acme/.well-known/jwks.json",
	} {
		if got := jwks.JWKSURL(in); got != want {
			t.Errorf("JWKSURL(%q)=%q, want %q", in, got, want)
		}
	}
}
