package bolt_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keymint/keymint/keys"
	"github.com/keymint/keymint/storage"
	"github.com/keymint/keymint/storage/bolt"
	"github.com/keymint/keymint/storage/storagetest"
)

var benchLarge = flag.Bool("bench-large", false, "also run benchmarks on 1M keys (or set KEYMINT_BENCH_LARGE=1)")

// mustOpen opens a DB at path and closes it when the test ends.
func mustOpen(tb testing.TB, path string, opts *bolt.Options) *bolt.DB {
	tb.Helper()
	db, err := bolt.Open(path, opts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return db
}

// newStore is a fresh DB in the test's temporary directory.
func newStore(t *testing.T) storage.Store {
	return mustOpen(t, filepath.Join(t.TempDir(), "keymint.db"), nil)
}

func TestStore(t *testing.T) {
	storagetest.Run(t, newStore)
}

func TestStoreConcurrent(t *testing.T) {
	storagetest.RunConcurrent(t, newStore)
}

var t0 = time.Date(2025, time.March, 14, 15, 9, 26, 0, time.UTC)

func newOrg(id string, maxKeys int) keys.Org {
	p := keys.Policy{
		MaxKeys: maxKeys, MaxKeyLifetime: keys.Duration(365 * 24 * time.Hour), RequireExpiry: true,
		TokenTTL: keys.Duration(15 * time.Minute), Audiences: []string{"https://api.example.com"},
		ExpiryWarning: keys.Duration(14 * 24 * time.Hour),
	}
	return keys.Org{ID: id, Name: "Org " + id, Alg: keys.AlgES256, CreatedAt: t0, UpdatedAt: t0, Policy: p}
}

func newAPIKey(tb testing.TB, org string) keys.APIKey {
	tb.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		tb.Fatalf("uuid.NewV7: %v", err)
	}
	hash := sha256.Sum256(id[:])
	exp := t0.Add(365 * 24 * time.Hour)
	return keys.APIKey{
		ID: id.String(), Org: org, Name: "key " + id.String(), Type: keys.TypeSecret, Role: "developer",
		Scopes: []string{"devices:read"}, AllowedCIDRs: []string{}, ExpiresAt: &exp, Enabled: true,
		CreatedBy: "root", UpdatedBy: "root", CreatedAt: t0, UpdatedAt: t0,
		MaskedValue: "km_sk_…abcd", SecretHash: hash[:],
	}
}

// mustCreateOrg creates an org with one signing key and an admin key.
func mustCreateOrg(tb testing.TB, db *bolt.DB, id string, maxKeys int) keys.APIKey {
	tb.Helper()
	admin := newAPIKey(tb, id)
	sk := keys.SigningKey{KID: id + "-kid", Org: id, Alg: keys.AlgES256, Status: keys.SigningActive,
		PublicKey: []byte("pub"), Sealed: []byte("sealed"), CreatedAt: t0}
	if err := db.CreateOrg(context.Background(), newOrg(id, maxKeys), []keys.SigningKey{sk}, admin); err != nil {
		tb.Fatalf("CreateOrg(%q): %v", id, err)
	}
	return admin
}

// TestReopen checks that everything written survives Close and Open, the
// max_keys index included.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keymint.db")
	db, err := bolt.Open(path, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	admin := mustCreateOrg(t, db, "acme", 3)
	k := newAPIKey(t, "acme")
	if err := db.CreateAPIKey(ctx, k); err != nil {
		t.Fatalf("CreateAPIKey: %v", err)
	}
	if _, err := db.InitSetting(ctx, "check", []byte("v1")); err != nil {
		t.Fatalf("InitSetting: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	db = mustOpen(t, path, nil)
	if got, want := db.Path(), path; got != want {
		t.Fatalf("Path()=%q, want %q", got, want)
	}
	org, err := db.GetOrg(ctx, "acme")
	if err != nil {
		t.Fatalf("GetOrg after reopen: %v", err)
	}
	if got, want := org.Policy.MaxKeys, 3; got != want {
		t.Fatalf("MaxKeys=%d, want %d", got, want)
	}
	got, err := db.GetAPIKey(ctx, k.ID)
	if err != nil {
		t.Fatalf("GetAPIKey after reopen: %v", err)
	}
	if got, want := got.Name, k.Name; got != want {
		t.Fatalf("Name=%q, want %q", got, want)
	}
	list, err := db.ListAPIKeys(ctx, "acme", storage.ListOptions{})
	if err != nil {
		t.Fatalf("ListAPIKeys: %v", err)
	}
	if got, want := len(list), 2; got != want {
		t.Fatalf("len(ListAPIKeys)=%d, want %d", got, want)
	}
	if got, want := list[0].ID, admin.ID; got != want {
		t.Fatalf("first key=%s, want the admin key %s", got, want)
	}
	sks, err := db.ListSigningKeys(ctx, "acme")
	if err != nil {
		t.Fatalf("ListSigningKeys: %v", err)
	}
	if got, want := len(sks), 1; got != want {
		t.Fatalf("len(ListSigningKeys)=%d, want %d", got, want)
	}
	v, err := db.GetSetting(ctx, "check")
	if err != nil {
		t.Fatalf("GetSetting: %v", err)
	}
	if got, want := string(v), "v1"; got != want {
		t.Fatalf("GetSetting=%q, want %q", got, want)
	}
	// The index survived too: one more key fits, then the limit holds.
	if err := db.CreateAPIKey(ctx, newAPIKey(t, "acme")); err != nil {
		t.Fatalf("CreateAPIKey: %v", err)
	}
	if err := db.CreateAPIKey(ctx, newAPIKey(t, "acme")); !errors.Is(err, storage.ErrKeyLimit) {
		t.Fatalf("CreateAPIKey past max_keys: err=%v, want ErrKeyLimit", err)
	}
}

func TestFileMode(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "keymint.db"), nil)
	fi, err := os.Stat(db.Path())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fi.Mode().Perm(), os.FileMode(0o600); got != want {
		t.Fatalf("mode=%v, want %v", got, want)
	}
}

// TestOpenLocked checks that a second Open of a file in use gives up after
// its Timeout instead of hanging.
func TestOpenLocked(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "keymint.db"), nil)
	start := time.Now()
	db2, err := bolt.Open(db.Path(), &bolt.Options{Timeout: 100 * time.Millisecond})
	if err == nil {
		db2.Close()
		t.Fatalf("second Open: err=nil, want a lock timeout")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("second Open took %v, want about 100ms", d)
	}
}

func TestCloseTwice(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "keymint.db"), nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := db.GetSetting(context.Background(), "x"); err == nil || errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetSetting after Close: err=%v, want a closed-database error", err)
	}
}

// TestContextDone checks that a cancelled context stops a call before it
// reads or writes anything.
func TestContextDone(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "keymint.db"), nil)
	mustCreateOrg(t, db, "acme", 10)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	k := newAPIKey(t, "acme")
	if err := db.CreateAPIKey(ctx, k); !errors.Is(err, context.Canceled) {
		t.Fatalf("CreateAPIKey: err=%v, want context.Canceled", err)
	}
	if _, err := db.GetAPIKey(context.Background(), k.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetAPIKey: err=%v, want ErrNotFound", err)
	}
	if _, err := db.GetOrg(ctx, "acme"); !errors.Is(err, context.Canceled) {
		t.Fatalf("GetOrg: err=%v, want context.Canceled", err)
	}
	if _, err := db.ListAPIKeys(ctx, "acme", storage.ListOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("ListAPIKeys: err=%v, want context.Canceled", err)
	}
}

// TestUpdateOrgChangeID checks that UpdateOrg refuses to rename an org.
func TestUpdateOrgChangeID(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, filepath.Join(t.TempDir(), "keymint.db"), nil)
	mustCreateOrg(t, db, "acme", 10)
	_, err := db.UpdateOrg(ctx, "acme", func(o keys.Org) (keys.Org, error) {
		o.ID = "beta"
		return o, nil
	})
	if !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("UpdateOrg: err=%v, want ErrConflict", err)
	}
	if _, err := db.GetOrg(ctx, "beta"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetOrg(beta): err=%v, want ErrNotFound", err)
	}
}

// TestCreateOrgAdminOfOtherOrg checks that CreateOrg refuses an admin key
// of another org.
func TestCreateOrgAdminOfOtherOrg(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, filepath.Join(t.TempDir(), "keymint.db"), nil)
	err := db.CreateOrg(ctx, newOrg("acme", 10), nil, newAPIKey(t, "beta"))
	if !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("CreateOrg: err=%v, want ErrConflict", err)
	}
	if _, err := db.GetOrg(ctx, "acme"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetOrg: err=%v, want ErrNotFound", err)
	}
}

// TestUnrevokeAtLimit checks that clearing RevokedAt is refused when the
// org has no free slot, so max_keys holds for updates too.
func TestUnrevokeAtLimit(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, filepath.Join(t.TempDir(), "keymint.db"), nil)
	admin := mustCreateOrg(t, db, "acme", 2)
	revoke := func(k keys.APIKey) (keys.APIKey, error) {
		at := t0.Add(time.Hour)
		k.RevokedAt = &at
		return k, nil
	}
	unrevoke := func(k keys.APIKey) (keys.APIKey, error) {
		k.RevokedAt = nil
		return k, nil
	}
	if _, err := db.UpdateAPIKey(ctx, admin.ID, revoke); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	for range 2 {
		if err := db.CreateAPIKey(ctx, newAPIKey(t, "acme")); err != nil {
			t.Fatalf("CreateAPIKey: %v", err)
		}
	}
	if _, err := db.UpdateAPIKey(ctx, admin.ID, unrevoke); !errors.Is(err, storage.ErrKeyLimit) {
		t.Fatalf("unrevoke at max_keys: err=%v, want ErrKeyLimit", err)
	}
	if k, err := db.GetAPIKey(ctx, admin.ID); err != nil || k.RevokedAt == nil {
		t.Fatalf("admin key after refused unrevoke: RevokedAt=%v, err=%v; want still revoked", k.RevokedAt, err)
	}
	// Updating a revoked key without unrevoking it is fine.
	if _, err := db.UpdateAPIKey(ctx, admin.ID, func(k keys.APIKey) (keys.APIKey, error) {
		k.Name = "renamed"
		return k, nil
	}); err != nil {
		t.Fatalf("rename revoked key at max_keys: %v", err)
	}
}

func TestImportAPIKeys(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, filepath.Join(t.TempDir(), "keymint.db"), nil)
	mustCreateOrg(t, db, "acme", 2)

	batch := make([]keys.APIKey, 5)
	for i := range batch {
		batch[i] = newAPIKey(t, "acme")
	}
	t.Run("ErrNotFound", func(t *testing.T) {
		bad := append(batch[:2:2], newAPIKey(t, "nope"))
		if err := db.ImportAPIKeys(ctx, bad); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("ImportAPIKeys: err=%v, want ErrNotFound", err)
		}
		if _, err := db.GetAPIKey(ctx, batch[0].ID); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("GetAPIKey of a key of a failed import: err=%v, want ErrNotFound", err)
		}
	})
	t.Run("ErrExists", func(t *testing.T) {
		bad := append(batch[:2:2], batch[0])
		if err := db.ImportAPIKeys(ctx, bad); !errors.Is(err, storage.ErrExists) {
			t.Fatalf("ImportAPIKeys: err=%v, want ErrExists", err)
		}
		if _, err := db.GetAPIKey(ctx, batch[0].ID); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("GetAPIKey of a key of a failed import: err=%v, want ErrNotFound", err)
		}
	})
	t.Run("OK", func(t *testing.T) {
		if err := db.ImportAPIKeys(ctx, batch); err != nil {
			t.Fatalf("ImportAPIKeys past max_keys: %v", err)
		}
		list, err := db.ListAPIKeys(ctx, "acme", storage.ListOptions{})
		if err != nil {
			t.Fatalf("ListAPIKeys: %v", err)
		}
		if got, want := len(list), 1+len(batch); got != want {
			t.Fatalf("len(ListAPIKeys)=%d, want %d", got, want)
		}
		// Imported keys count toward max_keys afterwards.
		if err := db.CreateAPIKey(ctx, newAPIKey(t, "acme")); !errors.Is(err, storage.ErrKeyLimit) {
			t.Fatalf("CreateAPIKey: err=%v, want ErrKeyLimit", err)
		}
	})
}

// BenchmarkGetAPIKey looks keys up in random order in a file holding 1k,
// 100k and, with -bench-large or KEYMINT_BENCH_LARGE=1, 1M keys.
func BenchmarkGetAPIKey(b *testing.B) {
	sizes := []int{1_000, 100_000}
	if *benchLarge || os.Getenv("KEYMINT_BENCH_LARGE") == "1" {
		sizes = append(sizes, 1_000_000)
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("keys=%s", count(n)), func(b *testing.B) {
			db, ids := populate(b, n)
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := db.GetAPIKey(ctx, ids[i%len(ids)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// populate fills a fresh DB with n keys across 10 orgs, 10k keys per
// transaction, and returns it with the key ids shuffled.
func populate(tb testing.TB, n int) (*bolt.DB, []string) {
	tb.Helper()
	ctx := context.Background()
	db := mustOpen(tb, filepath.Join(tb.TempDir(), "bench.db"), &bolt.Options{UnsafeNoSync: true})
	const orgs, batchSize = 10, 10_000
	for i := range orgs {
		mustCreateOrg(tb, db, fmt.Sprintf("org-%d", i), keys.DefaultMaxKeys)
	}
	ids := make([]string, 0, n)
	batch := make([]keys.APIKey, 0, batchSize)
	for i := range n {
		k := newAPIKey(tb, fmt.Sprintf("org-%d", i%orgs))
		batch = append(batch, k)
		ids = append(ids, k.ID)
		if len(batch) == batchSize || i == n-1 {
			if err := db.ImportAPIKeys(ctx, batch); err != nil {
				tb.Fatalf("ImportAPIKeys: %v", err)
			}
			batch = batch[:0]
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	return db, ids
}

// count formats 1000 as "1k" and 1000000 as "1M".
func count(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1_000 && n%1_000 == 0:
		return fmt.Sprintf("%dk", n/1_000)
	}
	return fmt.Sprint(n)
}
