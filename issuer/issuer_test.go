package issuer_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keymint/keymint/issuer"
	"github.com/keymint/keymint/jwks"
	"github.com/keymint/keymint/keys"
	"github.com/keymint/keymint/storage"
	"github.com/keymint/keymint/storage/bolt"
)

func newService(tb testing.TB, now func() time.Time) (*issuer.Service, *bolt.DB) {
	tb.Helper()
	db, err := bolt.Open(filepath.Join(tb.TempDir(), "keymint.db"), nil)
	if err != nil {
		tb.Fatal(err)
	}
	m, _ := issuer.NewMasterKey(bytes.Repeat([]byte{7}, 32))
	svc, err := issuer.New(issuer.Config{Store: db, Master: m, PublicURL: "https://keymint.test", Now: now})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { svc.Close(); db.Close() })
	return svc, db
}

// TestRoundTrip: a token minted by issuer verifies with jwks against the
// published keys, for every algorithm.
func TestRoundTrip(t *testing.T) {
	for _, alg := range []string{keys.AlgES256, keys.AlgEdDSA, keys.AlgRS256} {
		t.Run(alg, func(t *testing.T) {
			ctx := context.Background()
			svc, _ := newService(t, nil)
			b, err := svc.Bootstrap(ctx, issuer.BootstrapRequest{ID: "rt", Name: "rt", Alg: alg, By: issuer.Principal{Root: true}})
			if err != nil {
				t.Fatal(err)
			}
			tok, _, err := svc.Exchange(ctx, issuer.ExchangeRequest{KeyID: b.Admin.ID, Secret: b.Secret.String()})
			if err != nil {
				t.Fatal(err)
			}
			pub, err := svc.Keyring().Published(ctx, "rt")
			if err != nil {
				t.Fatal(err)
			}
			if got, want := len(pub.Keys), 2; got != want { // active + pre-published next
				t.Fatalf("published keys=%d, want %d", got, want)
			}
			in := make([]jwks.PublicKey, len(pub.Keys))
			for i, k := range pub.Keys {
				in[i] = jwks.PublicKey{KID: k.KID, Alg: k.Alg, Key: k.Key}
			}
			set, err := jwks.NewKeySet(in)
			if err != nil {
				t.Fatal(err)
			}
			iss := svc.IssuerURL("rt")
			v, err := jwks.NewVerifier(jwks.WithIssuer(iss), jwks.WithSource(jwks.StaticKeySet(set)))
			if err != nil {
				t.Fatal(err)
			}
			c, err := v.Verify(ctx, tok.Raw)
			if err != nil {
				t.Fatal(err)
			}
			if c.KeyID != b.SigningKey.KID || c.Subject != b.Admin.ID || c.Role != "admin" || c.Scope != "*:*" {
				t.Fatalf("claims %+v", c)
			}
		})
	}
}

func TestTokenNeverOutlivesKey(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	svc, _ := newService(t, func() time.Time { return now })
	b, err := svc.Bootstrap(ctx, issuer.BootstrapRequest{ID: "short", Name: "s", By: issuer.Principal{Root: true}})
	if err != nil {
		t.Fatal(err)
	}
	p := issuer.Principal{Org: "short", KeyID: b.Admin.ID, Scopes: keys.Scopes{keys.MustParseScope("*:*")}}
	exp := now.Add(5 * time.Minute)
	c, err := svc.CreateKey(ctx, p, keys.KeySpec{Name: "brief", Type: keys.TypeSecret, Role: "viewer", ExpiresAt: &exp})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := svc.Exchange(ctx, issuer.ExchangeRequest{KeyID: c.Key.ID, Secret: c.Secret.String()})
	if err != nil {
		t.Fatal(err)
	}
	if !tok.ExpiresAt.Equal(exp) {
		t.Fatalf("token exp=%v, want the key's expiry %v", tok.ExpiresAt, exp)
	}
}

func TestMasterKey(t *testing.T) {
	ctx := context.Background()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "keymint.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a, _ := issuer.NewMasterKey(bytes.Repeat([]byte{1}, 32))
	b, _ := issuer.NewMasterKey(bytes.Repeat([]byte{2}, 32))
	if err := issuer.CheckMasterKey(ctx, db, a); err != nil {
		t.Fatal(err)
	}
	if err := issuer.CheckMasterKey(ctx, db, a); err != nil {
		t.Fatalf("same key again: %v", err)
	}
	if err := issuer.CheckMasterKey(ctx, db, b); !errors.Is(err, issuer.ErrWrongMasterKey) {
		t.Fatalf("other key: err=%v, want ErrWrongMasterKey", err)
	}
	sealed, _ := a.Seal([]byte("private"), []byte("acme/kid1"))
	if _, err := b.Open(sealed, []byte("acme/kid1")); err == nil {
		t.Fatal("opened with another master key")
	}
	if _, err := a.Open(sealed, []byte("acme/kid2")); err == nil {
		t.Fatal("opened a key sealed for another kid")
	}
	if pt, err := a.Open(sealed, []byte("acme/kid1")); err != nil || string(pt) != "private" {
		t.Fatalf("Open=%q, %v", pt, err)
	}
	if _, err := issuer.NewMasterKey([]byte("short")); err == nil {
		t.Fatal("a short master key was accepted")
	}
}

// BenchmarkMint is one exchange through the service (lookup, hash
// compare, mint), per algorithm.
func BenchmarkMint(b *testing.B) {
	for _, alg := range []string{keys.AlgES256, keys.AlgEdDSA, keys.AlgRS256} {
		b.Run(alg, func(b *testing.B) {
			ctx := context.Background()
			svc, _ := newService(b, nil)
			bs, err := svc.Bootstrap(ctx, issuer.BootstrapRequest{ID: "bench", Name: "b", Alg: alg, By: issuer.Principal{Root: true}})
			if err != nil {
				b.Fatal(err)
			}
			req := issuer.ExchangeRequest{KeyID: bs.Admin.ID, Secret: bs.Secret.String()}
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := svc.Exchange(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// countingStore counts calls of every method that writes. Audit batches
// come from the background writer, never from a request; they are
// counted apart.
type countingStore struct {
	storage.Store
	writes, audits atomic.Int64
}

func (c *countingStore) CreateAPIKey(ctx context.Context, k keys.APIKey) error {
	c.writes.Add(1)
	return c.Store.CreateAPIKey(ctx, k)
}

func (c *countingStore) UpdateAPIKey(ctx context.Context, id string, fn func(keys.APIKey) (keys.APIKey, error)) (keys.APIKey, error) {
	c.writes.Add(1)
	return c.Store.UpdateAPIKey(ctx, id, fn)
}

func (c *countingStore) UpdateOrg(ctx context.Context, id string, fn func(keys.Org) (keys.Org, error)) (keys.Org, error) {
	c.writes.Add(1)
	return c.Store.UpdateOrg(ctx, id, fn)
}

func (c *countingStore) UpdateSigningKeys(ctx context.Context, org string, fn func([]keys.SigningKey) ([]keys.SigningKey, error)) ([]keys.SigningKey, error) {
	c.writes.Add(1)
	return c.Store.UpdateSigningKeys(ctx, org, fn)
}

func (c *countingStore) AppendAudit(ctx context.Context, evs []keys.AuditEvent) error {
	c.audits.Add(1)
	return c.Store.AppendAudit(ctx, evs)
}

func (c *countingStore) AddUsage(ctx context.Context, d []keys.UsageDay, last map[string]time.Time) error {
	c.writes.Add(1)
	return c.Store.AddUsage(ctx, d, last)
}

func (c *countingStore) InitSetting(ctx context.Context, name string, v []byte) ([]byte, error) {
	c.writes.Add(1)
	return c.Store.InitSetting(ctx, name, v)
}

// TestExchangeOpensNoWriteTransaction: exchanges, successful or not, only
// read; usage is counted in memory and reaches the store on flush.
func TestExchangeOpensNoWriteTransaction(t *testing.T) {
	ctx := context.Background()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "keymint.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cs := &countingStore{Store: db}
	m, _ := issuer.NewMasterKey(bytes.Repeat([]byte{7}, 32))
	svc, err := issuer.New(issuer.Config{Store: cs, Master: m, PublicURL: "https://keymint.test", UsageFlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	b, err := svc.Bootstrap(ctx, issuer.BootstrapRequest{ID: "ro", Name: "ro", By: issuer.Principal{Root: true}})
	if err != nil {
		t.Fatal(err)
	}
	before := cs.writes.Load()
	for i := 0; i < 100; i++ {
		if _, _, err := svc.Exchange(ctx, issuer.ExchangeRequest{KeyID: b.Admin.ID, Secret: b.Secret.String()}); err != nil {
			t.Fatal(err)
		}
	}
	if got := cs.writes.Load() - before; got != 0 {
		t.Fatalf("100 exchanges made %d write calls, want 0", got)
	}
	// The counts are not lost: Close flushes them in one write.
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	if got := cs.writes.Load() - before; got != 1 {
		t.Fatalf("Close made %d write calls, want 1 (the usage flush)", got)
	}
	days, err := db.ListUsage(ctx, "ro", b.Admin.ID, keys.UsageDate(time.Now()), keys.UsageDate(time.Now()))
	if err != nil || len(days) != 1 || days[0].Exchanges != 100 {
		t.Fatalf("stored usage %+v, %v; want 100 exchanges today", days, err)
	}
}

// TestClaimsJSON: the hand-written claims encoding is valid JSON that
// round-trips every value, escapes included, with custom claims spliced in.
func TestClaimsJSON(t *testing.T) {
	ctx := context.Background()
	svc, _ := newService(t, nil)
	aud := "https://api.example.com/zürich \"quoted\" <tag> \\ end"
	b, err := svc.Bootstrap(ctx, issuer.BootstrapRequest{ID: "enc", Name: "enc", By: issuer.Principal{Root: true},
		Policy: keys.PolicyPatch{Audiences: []string{aud}}})
	if err != nil {
		t.Fatal(err)
	}
	p := issuer.Principal{Org: "enc", KeyID: b.Admin.ID, Scopes: keys.Scopes{keys.MustParseScope("*:*")}}
	exp := time.Now().Add(time.Hour)
	c, err := svc.CreateKey(ctx, p, keys.KeySpec{Name: "k", Type: keys.TypeSecret, Role: "viewer", ExpiresAt: &exp,
		Claims: []byte(` { "team" : "plätform", "n": [1, {"x": null}] } `)})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := svc.Exchange(ctx, issuer.ExchangeRequest{KeyID: c.Key.ID, Secret: c.Secret.String(), Audience: aud})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tok.Raw, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(payload, &got); err != nil {
		t.Fatalf("claims are not JSON: %v\n%s", err, payload)
	}
	want := map[string]any{"aud": aud, "sub": c.Key.ID, "client_id": c.Key.ID, "org": "enc", "role": "viewer",
		"scope": "*:read", "team": "plätform", "iss": "https://keymint.test/orgs/enc"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("claim %s=%v, want %v", k, got[k], v)
		}
	}
	if n, ok := got["n"].([]any); !ok || len(n) != 2 {
		t.Errorf("custom claim n=%v", got["n"])
	}
	if got["exp"].(float64)-got["iat"].(float64) != 900 || got["nbf"] != got["iat"] {
		t.Errorf("times exp=%v iat=%v nbf=%v", got["exp"], got["iat"], got["nbf"])
	}
}

// TestRetention: a service started past the retention of old audit
// events and usage days prunes them, and keeps what is recent.
func TestRetention(t *testing.T) {
	ctx := context.Background()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "keymint.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	m, _ := issuer.NewMasterKey(bytes.Repeat([]byte{7}, 32))
	svc, err := issuer.New(issuer.Config{Store: db, Master: m, PublicURL: "https://keymint.test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Bootstrap(ctx, issuer.BootstrapRequest{ID: "old", Name: "old", By: issuer.Principal{Root: true}}); err != nil {
		t.Fatal(err)
	}
	svc.Close()
	old := time.Now().AddDate(0, 0, -500)
	if err := db.AddUsage(ctx, []keys.UsageDay{{Org: "old", KeyID: "k", Date: keys.UsageDate(old), Exchanges: 3}}, nil); err != nil {
		t.Fatal(err)
	}
	if evs, _ := db.ListAudit(ctx, "old", storage.AuditListOptions{}); len(evs) != 1 {
		t.Fatalf("audit before=%d events, want 1", len(evs))
	}
	later := time.Now().Add(issuer.DefaultRetention + time.Hour)
	svc2, err := issuer.New(issuer.Config{Store: db, Master: m, PublicURL: "https://keymint.test", Now: func() time.Time { return later }})
	if err != nil {
		t.Fatal(err)
	}
	svc2.Close() // waits for the pruning started at New
	if evs, _ := db.ListAudit(ctx, "old", storage.AuditListOptions{}); len(evs) != 0 {
		t.Fatalf("audit after the retention=%d events, want 0", len(evs))
	}
	if days, _ := db.ListUsage(ctx, "old", "", keys.UsageDate(old), keys.UsageDate(later)); len(days) != 0 {
		t.Fatalf("usage after the retention=%v, want none", days)
	}
}
