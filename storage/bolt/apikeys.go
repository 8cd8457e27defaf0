package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/keymint/keymint/keys"
	"github.com/keymint/keymint/storage"
)

// Values of the apikeys_by_org index. bbolt only reads them, so sharing
// one slice between transactions is safe.
var (
	flagLive    = []byte{1}
	flagRevoked = []byte{0}
)

// indexPrefix is the prefix of every index entry of org.
func indexPrefix(org string) []byte {
	p := make([]byte, 0, len(org)+1+36)
	p = append(p, org...)
	return append(p, 0)
}

// indexKey is the index entry of key id in org.
func indexKey(org, id string) []byte {
	return append(indexPrefix(org), id...)
}

// putAPIKey stores k and its index entry.
func putAPIKey(tx *bbolt.Tx, k keys.APIKey) error {
	if err := putJSON(tx.Bucket(bucketAPIKeys), []byte(k.ID), k); err != nil {
		return err
	}
	flag := flagLive
	if k.RevokedAt != nil {
		flag = flagRevoked
	}
	return setIndex(tx, k.Org, k.ID, flag)
}

// setIndex writes (or, with a nil flag, deletes) the index entry of key id
// in org, and keeps the org's count of live keys in step with it, so
// CreateAPIKey reads one counter instead of scanning the org's keys.
func setIndex(tx *bbolt.Tx, org, id string, flag []byte) error {
	idx := tx.Bucket(bucketKeyIndex)
	key := indexKey(org, id)
	was := idx.Get(key)
	wasLive := len(was) == 1 && was[0] == flagLive[0]
	isLive := len(flag) == 1 && flag[0] == flagLive[0]
	var err error
	if flag == nil {
		err = idx.Delete(key)
	} else {
		err = idx.Put(key, flag)
	}
	if err != nil || wasLive == isLive {
		return err
	}
	n := liveKeys(tx, org)
	if isLive {
		n++
	} else {
		n--
	}
	return putCount(tx, org, n)
}

// liveKeys is org's number of keys that are not revoked.
func liveKeys(tx *bbolt.Tx, org string) int {
	v := tx.Bucket(bucketLiveCounts).Get([]byte(org))
	if len(v) != 8 {
		return 0
	}
	return int(binary.BigEndian.Uint64(v))
}

func putCount(tx *bbolt.Tx, org string, n int) error {
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], uint64(max(n, 0)))
	return tx.Bucket(bucketLiveCounts).Put([]byte(org), v[:])
}

// countLiveKeys rebuilds every org's live-key count from the index: once,
// when a database written before the counts existed is first opened.
func countLiveKeys(tx *bbolt.Tx) error {
	counts := map[string]int{}
	err := tx.Bucket(bucketKeyIndex).ForEach(func(k, v []byte) error {
		if org, _, ok := bytes.Cut(k, []byte{0}); ok && len(v) == 1 && v[0] == flagLive[0] {
			counts[string(org)]++
		}
		return nil
	})
	if err != nil {
		return err
	}
	for org, n := range counts {
		if err := putCount(tx, org, n); err != nil {
			return err
		}
	}
	return nil
}

// maxKeys reads the org's policy.max_keys, or returns storage.ErrNotFound.
// It decodes only that field.
func maxKeys(tx *bbolt.Tx, org string) (int, error) {
	var o struct {
		Policy struct {
			MaxKeys int `json:"max_keys"`
		} `json:"policy"`
	}
	if err := getJSON(tx.Bucket(bucketOrgs), []byte(org), &o); err != nil {
		return 0, err
	}
	return o.Policy.MaxKeys, nil
}

// CreateAPIKey stores a new key. In the same transaction it checks that
// k.Org exists (else an error wrapping storage.ErrNotFound), that k.ID is
// free (else storage.ErrExists), and that the org holds fewer than
// policy.max_keys keys that are not revoked (else storage.ErrKeyLimit).
// Concurrent creates share commits (DB.Batch; see Options.MaxBatchSize),
// each still checked against the limit inside the shared transaction.
func (db *DB) CreateAPIKey(ctx context.Context, k keys.APIKey) error {
	err := db.batch(ctx, func(tx *bbolt.Tx) error {
		limit, err := maxKeys(tx, k.Org)
		if err != nil {
			return fmt.Errorf("org %q: %w", k.Org, err)
		}
		if tx.Bucket(bucketAPIKeys).Get([]byte(k.ID)) != nil {
			return storage.ErrExists
		}
		if liveKeys(tx, k.Org) >= limit {
			return storage.ErrKeyLimit
		}
		return putAPIKey(tx, k)
	})
	if err != nil {
		return fmt.Errorf("bolt: create api key %q: %w", k.ID, err)
	}
	return nil
}

// GetAPIKey returns the key; an error wrapping storage.ErrNotFound if there
// is none.
func (db *DB) GetAPIKey(ctx context.Context, id string) (keys.APIKey, error) {
	var k keys.APIKey
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		return getJSON(tx.Bucket(bucketAPIKeys), []byte(id), &k)
	})
	if err != nil {
		return keys.APIKey{}, fmt.Errorf("bolt: get api key %q: %w", id, err)
	}
	return k, nil
}

// ListAPIKeys returns up to opts.Limit keys of org in id order, starting
// after opts.After, that pass opts.Filter. It seeks straight to After, so
// a page costs the keys it returns plus those Filter drops. Filter runs
// inside the read transaction and must not call the DB. A missing org
// yields an empty list.
func (db *DB) ListAPIKeys(ctx context.Context, org string, opts storage.ListOptions) ([]keys.APIKey, error) {
	out := []keys.APIKey{}
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		prefix := indexPrefix(org)
		start := prefix
		if opts.After != "" {
			start = indexKey(org, opts.After)
		}
		byID := tx.Bucket(bucketAPIKeys)
		c := tx.Bucket(bucketKeyIndex).Cursor()
		n := 0
		for k, _ := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			if opts.After != "" && bytes.Equal(k, start) {
				continue
			}
			if n++; n%ctxCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			id := k[len(prefix):]
			var ak keys.APIKey
			if err := getJSON(byID, id, &ak); err != nil {
				return fmt.Errorf("index entry %q: %w", k, err)
			}
			if opts.Filter != nil && !opts.Filter(ak) {
				continue
			}
			out = append(out, ak)
			if opts.Limit > 0 && len(out) >= opts.Limit {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: list api keys of %q: %w", org, err)
	}
	return out, nil
}

// UpdateAPIKey runs fn on the stored key and stores its result in one
// transaction, calling fn exactly once, and keeps the key's index entry in
// step with its RevokedAt. It returns the key as stored. It writes nothing
// and returns:
//   - an error wrapping storage.ErrNotFound if there is no such key;
//   - fn's error unchanged if fn fails;
//   - an error wrapping storage.ErrConflict if fn changed the key's ID or
//     Org;
//   - storage.ErrKeyLimit (which wraps ErrConflict), wrapped, if fn clears
//     RevokedAt while the org already holds policy.max_keys live keys.
func (db *DB) UpdateAPIKey(ctx context.Context, id string, fn func(keys.APIKey) (keys.APIKey, error)) (keys.APIKey, error) {
	var out keys.APIKey
	var fnErr error
	err := db.update(ctx, func(tx *bbolt.Tx) error {
		var cur keys.APIKey
		if err := getJSON(tx.Bucket(bucketAPIKeys), []byte(id), &cur); err != nil {
			return err
		}
		next, err := fn(cur)
		if err != nil {
			fnErr = err
			return err
		}
		if next.ID != cur.ID || next.Org != cur.Org {
			return fmt.Errorf("updater changed id/org from %q/%q to %q/%q: %w",
				cur.ID, cur.Org, next.ID, next.Org, storage.ErrConflict)
		}
		if cur.RevokedAt != nil && next.RevokedAt == nil {
			limit, err := maxKeys(tx, cur.Org)
			if err != nil {
				return fmt.Errorf("org %q: %w", cur.Org, err)
			}
			if liveKeys(tx, cur.Org) >= limit {
				return fmt.Errorf("unrevoke: %w", storage.ErrKeyLimit)
			}
		}
		if err := putAPIKey(tx, next); err != nil {
			return err
		}
		if err := noteDenial(tx, cur, next, db.now()); err != nil {
			return err
		}
		out = next
		return nil
	})
	if fnErr != nil {
		return keys.APIKey{}, fnErr
	}
	if err != nil {
		return keys.APIKey{}, fmt.Errorf("bolt: update api key %q: %w", id, err)
	}
	return out, nil
}

// DeleteAPIKey reads the key, calls check on it (unless check is nil), and
// only if check returns nil deletes the key and its index entry and
// records its tombstone, dated by Options.Now, all in one transaction.
// The same transaction prunes tombstones older than TombstoneRetention.
// check runs inside the transaction, is called exactly once, and must not
// call the DB. It returns:
//   - an error wrapping storage.ErrNotFound if there is no such key (check
//     is not called);
//   - check's error unchanged if check fails, writing nothing.
func (db *DB) DeleteAPIKey(ctx context.Context, id string, check func(keys.APIKey) error) error {
	var checkErr error
	err := db.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketAPIKeys)
		var cur keys.APIKey
		if err := getJSON(b, []byte(id), &cur); err != nil {
			return err
		}
		if check != nil {
			if err := check(cur); err != nil {
				checkErr = err
				return err
			}
		}
		if err := b.Delete([]byte(id)); err != nil {
			return err
		}
		if err := setIndex(tx, cur.Org, id, nil); err != nil {
			return err
		}
		// Read the clock inside the transaction: writes run one at a
		// time, so tombstones are dated in the order they commit.
		now := db.now()
		if err := putTombstone(tx, id, now); err != nil {
			return err
		}
		return pruneTombstones(tx, now.Add(-TombstoneRetention))
	})
	if checkErr != nil {
		return checkErr
	}
	if err != nil {
		return fmt.Errorf("bolt: delete api key %q: %w", id, err)
	}
	return nil
}

// ImportAPIKeys writes ks in one transaction without checking any org's
// max_keys: it is for bulk imports (restoring a dump, migrating from
// another store) and for benchmarks that need many keys quickly. It still
// maintains the index, and writes nothing if a key's org does not exist
// (storage.ErrNotFound) or a key id is already stored or repeated in ks
// (storage.ErrExists). Keep each call to some thousands of keys: the whole
// batch is held in memory until it commits.
func (db *DB) ImportAPIKeys(ctx context.Context, ks []keys.APIKey) error {
	err := db.update(ctx, func(tx *bbolt.Tx) error {
		orgs := tx.Bucket(bucketOrgs)
		byID := tx.Bucket(bucketAPIKeys)
		known := map[string]bool{}
		for i, k := range ks {
			if i%ctxCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if !known[k.Org] {
				if orgs.Get([]byte(k.Org)) == nil {
					return fmt.Errorf("key %q: org %q: %w", k.ID, k.Org, storage.ErrNotFound)
				}
				known[k.Org] = true
			}
			if byID.Get([]byte(k.ID)) != nil {
				return fmt.Errorf("key %q: %w", k.ID, storage.ErrExists)
			}
			if err := putAPIKey(tx, k); err != nil {
				return fmt.Errorf("key %q: %w", k.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: import api keys: %w", err)
	}
	return nil
}
