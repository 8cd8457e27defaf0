package handlers_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keymint/keymint/handlers"
	"github.com/keymint/keymint/issuer"
	"github.com/keymint/keymint/keys"
	"github.com/keymint/keymint/storage/bolt"
)

const rootKey = "km_root_test-root-key-0123456789abcdefghijklmnop"

// newServer builds the HTTP API over a real bbolt store in a temp dir.
func newServer(tb testing.TB) (*handlers.Server, *issuer.Service) {
	tb.Helper()
	return newServerAt(tb, nil)
}

// newServerAt is newServer on the clock now (nil means time.Now).
func newServerAt(tb testing.TB, now func() time.Time) (*handlers.Server, *issuer.Service) {
	tb.Helper()
	db, err := bolt.Open(filepath.Join(tb.TempDir(), "keymint.db"), nil)
	if err != nil {
		tb.Fatal(err)
	}
	master, err := issuer.NewMasterKey([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		tb.Fatal(err)
	}
	svc, err := issuer.New(issuer.Config{Store: db, Master: master, PublicURL: "http://keymint.test", Now: now})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { svc.Close(); db.Close() })
	srv, err := handlers.New(handlers.Config{Service: svc, RootKey: rootKey, Metrics: handlers.NewMetrics(nil)})
	if err != nil {
		tb.Fatal(err)
	}
	return srv, svc
}

// serve sends one request through the handler.
func serve(h http.Handler, method, path, cred, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.RemoteAddr = "127.0.0.1:40000"
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if cred != "" {
		req.Header.Set("Authorization", "Bearer "+cred)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// bootstrapOrg creates an org and returns its admin key id and secret.
func bootstrapOrg(tb testing.TB, h http.Handler, org, alg string) (id, secret string) {
	tb.Helper()
	rec := serve(h, "POST", "/api/v1/orgs", rootKey, `{"id":"`+org+`","name":"`+org+`","alg":"`+alg+`"}`)
	if rec.Code != http.StatusCreated {
		tb.Fatalf("bootstrap: %d %s", rec.Code, rec.Body)
	}
	var out struct {
		AdminKey struct{ ID, Key string } `json:"admin_key"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		tb.Fatal(err)
	}
	return out.AdminKey.ID, out.AdminKey.Key
}

// BenchmarkExchange measures the exchange handler in-process: request in,
// signed token out, per signing algorithm.
func BenchmarkExchange(b *testing.B) {
	for _, alg := range []string{keys.AlgES256, keys.AlgEdDSA, keys.AlgRS256} {
		b.Run(alg, func(b *testing.B) {
			srv, _ := newServer(b)
			h := srv.Handler()
			id, secret := bootstrapOrg(b, h, "bench-"+strings.ToLower(alg), alg)
			path := "/api/v1/apikeys/" + id + "/token"
			if rec := serve(h, "POST", path, secret, ""); rec.Code != http.StatusOK {
				b.Fatalf("exchange: %d %s", rec.Code, rec.Body)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if rec := serve(h, "POST", path, secret, ""); rec.Code != http.StatusOK {
					b.Fatalf("exchange: %d", rec.Code)
				}
			}
		})
	}
}

// BenchmarkManagementGET measures a management GET authorized by a JWT.
func BenchmarkManagementGET(b *testing.B) {
	for _, alg := range []string{keys.AlgES256, keys.AlgEdDSA, keys.AlgRS256} {
		b.Run(alg, func(b *testing.B) {
			srv, _ := newServer(b)
			h := srv.Handler()
			id, secret := bootstrapOrg(b, h, "mgmt-"+strings.ToLower(alg), alg)
			rec := serve(h, "POST", "/api/v1/apikeys/"+id+"/token", secret, "")
			var tok struct{ Token string }
			json.Unmarshal(rec.Body.Bytes(), &tok)
			path := "/api/v1/apikeys/" + id
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if rec := serve(h, "GET", path, tok.Token, ""); rec.Code != http.StatusOK {
					b.Fatalf("get: %d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}

// BenchmarkExchangeParallel runs exchanges from many goroutines at once,
// so -cpu 1,2 shows how the exchange scales and -mutexprofile where it
// contends (usage counters, caches, deny list).
func BenchmarkExchangeParallel(b *testing.B) {
	srv, _ := newServer(b)
	h := srv.Handler()
	id, secret := bootstrapOrg(b, h, "parallel", keys.AlgES256)
	path := "/api/v1/apikeys/" + id + "/token"
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if rec := serve(h, "POST", path, secret, ""); rec.Code != http.StatusOK {
				b.Errorf("exchange: %d", rec.Code)
				return
			}
		}
	})
}
