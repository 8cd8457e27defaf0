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
	"sync/atomic"
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

func newAuditEvent(tb testing.TB, org string) keys.AuditEvent {
	tb.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		tb.Fatalf("uuid.NewV7: %v", err)
	}
	return keys.AuditEvent{ID: id.String(), Org: org, Time: t0, Actor: "root", Action: keys.AuditOrgUpdate}
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
	admin := mustCreateOrg(t, db, "acme", 10)
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
	if err := db.DeleteAPIKey(ctx, admin.ID, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("DeleteAPIKey: err=%v, want context.Canceled", err)
	}
	if _, err := db.GetAPIKey(context.Background(), admin.ID); err != nil {
		t.Fatalf("GetAPIKey after a cancelled DeleteAPIKey: %v", err)
	}
	if _, err := db.ListTombstones(ctx, time.Time{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("ListTombstones: err=%v, want context.Canceled", err)
	}
	e := newAuditEvent(t, "acme")
	for _, events := range [][]keys.AuditEvent{{e}, nil} {
		if err := db.AppendAudit(ctx, events); !errors.Is(err, context.Canceled) {
			t.Fatalf("AppendAudit(%d events): err=%v, want context.Canceled", len(events), err)
		}
	}
	if _, err := db.ListAudit(ctx, "acme", storage.AuditListOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("ListAudit: err=%v, want context.Canceled", err)
	}
	if es, err := db.ListAudit(context.Background(), "acme", storage.AuditListOptions{}); err != nil || len(es) != 0 {
		t.Fatalf("ListAudit after a cancelled AppendAudit=%v, %v; want none", es, err)
	}
}

// TestAppendAuditInvalid checks that AppendAudit refuses an event without
// an id, or whose org id could reach into another org's range, and then
// writes none of the batch.
func TestAppendAuditInvalid(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, filepath.Join(t.TempDir(), "keymint.db"), nil)
	mustCreateOrg(t, db, "acme", 10)
	tests := []struct {
		name   string
		change func(*keys.AuditEvent)
	}{
		{"NoID", func(e *keys.AuditEvent) { e.ID = "" }},
		{"NULInOrg", func(e *keys.AuditEvent) { e.Org = "acme\x00evil" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			good, bad := newAuditEvent(t, "acme"), newAuditEvent(t, "acme")
			tt.change(&bad)
			if err := db.AppendAudit(ctx, []keys.AuditEvent{good, bad}); err == nil {
				t.Fatalf("AppendAudit: err=nil, want an error")
			}
			es, err := db.ListAudit(ctx, "acme", storage.AuditListOptions{})
			if err != nil {
				t.Fatalf("ListAudit: %v", err)
			}
			if got, want := len(es), 0; got != want {
				t.Fatalf("len(ListAudit)=%d, want %d", got, want)
			}
		})
	}
}

// TestTombstoneRetention checks that DeleteAPIKey dates tombstones with
// Options.Now and prunes those older than TombstoneRetention, and only
// those.
func TestTombstoneRetention(t *testing.T) {
	ctx := context.Background()
	now := t0
	db := mustOpen(t, filepath.Join(t.TempDir(), "keymint.db"), &bolt.Options{Now: func() time.Time { return now }})
	mustCreateOrg(t, db, "acme", 10)
	ks := make([]keys.APIKey, 3)
	for i := range ks {
		ks[i] = newAPIKey(t, "acme")
		if err := db.CreateAPIKey(ctx, ks[i]); err != nil {
			t.Fatalf("CreateAPIKey: %v", err)
		}
	}
	deleteAt := func(i int, at time.Time) {
		t.Helper()
		now = at
		if err := db.DeleteAPIKey(ctx, ks[i].ID, nil); err != nil {
			t.Fatalf("DeleteAPIKey #%d: %v", i, err)
		}
	}
	check := func(want map[string]time.Time) {
		t.Helper()
		got, err := db.ListTombstones(ctx, time.Time{})
		if err != nil {
			t.Fatalf("ListTombstones: %v", err)
		}
		if len(got) != len(want) {
			t.Fatalf("ListTombstones=%v, want %v", got, want)
		}
		for id, w := range want {
			if g, ok := got[id]; !ok || !g.Equal(w) {
				t.Fatalf("ListTombstones=%v, want %v", got, want)
			}
		}
	}

	t1 := t0.Add(time.Nanosecond) // nanoseconds survive
	deleteAt(0, t1)
	check(map[string]time.Time{ks[0].ID: t1})
	t2 := t1.Add(bolt.TombstoneRetention) // exactly at the edge: kept
	deleteAt(1, t2)
	check(map[string]time.Time{ks[0].ID: t1, ks[1].ID: t2})
	t3 := t2.Add(time.Nanosecond) // now ks[0]'s tombstone is too old
	deleteAt(2, t3)
	check(map[string]time.Time{ks[1].ID: t2, ks[2].ID: t3})

	// A refused delete prunes nothing: it writes nothing at all.
	k := newAPIKey(t, "acme")
	if err := db.CreateAPIKey(ctx, k); err != nil {
		t.Fatalf("CreateAPIKey: %v", err)
	}
	now = t3.Add(30 * 24 * time.Hour)
	errNo := errors.New("no")
	if err := db.DeleteAPIKey(ctx, k.ID, func(keys.APIKey) error { return errNo }); err != errNo {
		t.Fatalf("DeleteAPIKey: err=%v, want %v", err, errNo)
	}
	check(map[string]time.Time{ks[1].ID: t2, ks[2].ID: t3})
}

// TestReopenAuditTombstones checks that audit events and tombstones
// survive Close and Open.
func TestReopenAuditTombstones(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keymint.db")
	db, err := bolt.Open(path, &bolt.Options{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	admin := mustCreateOrg(t, db, "acme", 10)
	e := newAuditEvent(t, "acme")
	if err := db.AppendAudit(ctx, []keys.AuditEvent{e}); err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	if err := db.DeleteAPIKey(ctx, admin.ID, nil); err != nil {
		t.Fatalf("DeleteAPIKey: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	db = mustOpen(t, path, nil)
	es, err := db.ListAudit(ctx, "acme", storage.AuditListOptions{})
	if err != nil {
		t.Fatalf("ListAudit: %v", err)
	}
	if len(es) != 1 || es[0].ID != e.ID || es[0].Action != e.Action {
		t.Fatalf("ListAudit=%+v, want [%+v]", es, e)
	}
	ts, err := db.ListTombstones(ctx, time.Time{})
	if err != nil {
		t.Fatalf("ListTombstones: %v", err)
	}
	if got, ok := ts[admin.ID]; !ok || len(ts) != 1 || !got.Equal(t0) {
		t.Fatalf("ListTombstones=%v, want %s at %v", ts, admin.ID, t0)
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

// BenchmarkCreateAPIKeyParallel measures key creates from 32 concurrent
// writers, with fsync, under batch settings: size 1 is one commit per
// create (plain Update), bbolt's defaults (1000, 10 ms), and ours.
// Each writer has its own org, so the max_keys count stays short.
func BenchmarkCreateAPIKeyParallel(b *testing.B) {
	for _, bc := range []struct {
		name  string
		size  int
		delay time.Duration
	}{
		{"solo", 1, time.Millisecond},
		{"bbolt-default-1000x10ms", 1000, 10 * time.Millisecond},
		{"64x1ms-default", bolt.DefaultMaxBatchSize, bolt.DefaultMaxBatchDelay},
		{"64x500us", 64, 500 * time.Microsecond},
		{"64x2ms", 64, 2 * time.Millisecond},
		{"64x5ms", 64, 5 * time.Millisecond},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			db := mustOpen(b, filepath.Join(b.TempDir(), "create.db"), &bolt.Options{MaxBatchSize: bc.size, MaxBatchDelay: bc.delay})
			var next atomic.Int64
			b.SetParallelism(16) // 32 writers on 2 CPUs
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				org := fmt.Sprintf("org-%d", next.Add(1))
				mustCreateOrg(b, db, org, 1_000_000)
				n := 0
				for pb.Next() {
					if n%500 == 0 && n > 0 { // keep the live-key count short
						org = fmt.Sprintf("org-%d", next.Add(1))
						mustCreateOrg(b, db, org, 1_000_000)
					}
					if err := db.CreateAPIKey(ctx, newAPIKey(b, org)); err != nil {
						b.Error(err)
						return
					}
					n++
				}
			})
		})
	}
}
