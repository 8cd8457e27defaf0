package bolt

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.etcd.io/bbolt"

	"github.com/keymint/keymint/keys"
	"github.com/keymint/keymint/storage"
)

// TestLiveCountsRebuilt: a database written before the live-key counts
// existed gets them rebuilt at open, and max_keys holds with them.
func TestLiveCountsRebuilt(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	key := func() keys.APIKey {
		return keys.APIKey{ID: uuid.Must(uuid.NewV7()).String(), Org: "acme", Name: "k", Type: keys.TypeSecret,
			Role: "viewer", Enabled: true, CreatedAt: now, UpdatedAt: now, SecretHash: []byte{1}}
	}
	org := keys.Org{ID: "acme", Name: "acme", Alg: keys.AlgES256, CreatedAt: now, Policy: keys.DefaultPolicy()}
	org.Policy.MaxKeys = 4
	if err := db.CreateOrg(ctx, org, nil, key()); err != nil {
		t.Fatal(err)
	}
	revoked := key()
	revoked.RevokedAt = &now
	for _, k := range []keys.APIKey{key(), revoked} {
		if err := db.CreateAPIKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	// Make it look like a database from before the counts.
	if err := db.db.Update(func(tx *bbolt.Tx) error { return tx.DeleteBucket(bucketLiveCounts) }); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db, err = Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var live int
	db.db.View(func(tx *bbolt.Tx) error { live = liveKeys(tx, "acme"); return nil })
	if live != 2 {
		t.Fatalf("rebuilt live count=%d, want 2 (admin + one live; the revoked one does not count)", live)
	}
	if err := db.CreateAPIKey(ctx, key()); err != nil {
		t.Fatalf("third live key: %v", err)
	}
	if err := db.CreateAPIKey(ctx, key()); err != nil {
		t.Fatalf("fourth live key: %v", err)
	}
	if err := db.CreateAPIKey(ctx, key()); !errors.Is(err, storage.ErrKeyLimit) {
		t.Fatalf("fifth live key: err=%v, want ErrKeyLimit", err)
	}
}
