package bolt

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/keymint/keymint/keys"
)

// TombstoneRetention is how long the DB keeps the tombstone of a deleted
// key. DeleteAPIKey prunes older tombstones in its own transaction, so the
// tombstones bucket holds about one retention period's worth of deletions.
// A reader of ListTombstones that falls further behind than this may miss
// deletions and should resynchronise from ListAPIKeys.
const TombstoneRetention = 7 * 24 * time.Hour

// putTombstone records that key id was deleted at t.
func putTombstone(tx *bbolt.Tx, id string, t time.Time) error {
	return tx.Bucket(bucketTombs).Put([]byte(id), []byte(t.UTC().Format(time.RFC3339Nano)))
}

// pruneTombstones deletes every tombstone dated before cutoff. It scans
// the whole bucket, which TombstoneRetention keeps small, and deletes after
// the scan rather than through the cursor, which could skip entries.
func pruneTombstones(tx *bbolt.Tx, cutoff time.Time) error {
	return pruneDated(tx.Bucket(bucketTombs), cutoff)
}

// pruneDated deletes every entry of a bucket of id → time (tombstones,
// denials) dated before cutoff.
func pruneDated(b *bbolt.Bucket, cutoff time.Time) error {
	var old [][]byte
	err := b.ForEach(func(k, v []byte) error {
		t, err := parseTombstone(k, v)
		if err != nil {
			return err
		}
		if t.Before(cutoff) {
			old = append(old, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range old {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// parseTombstone decodes the deletion time stored under key id.
func parseTombstone(id, v []byte) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, string(v))
	if err != nil {
		return time.Time{}, fmt.Errorf("decode tombstone %q: %w", id, err)
	}
	return t, nil
}

// ListTombstones returns the ids of the keys deleted at or after since,
// with their deletion times in UTC; an empty, non-nil map if there are
// none. It scans every tombstone, of which there are at most
// TombstoneRetention's worth; older deletions may be missing.
func (db *DB) ListTombstones(ctx context.Context, since time.Time) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		return collectDated(ctx, tx.Bucket(bucketTombs), since, out)
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: list tombstones: %w", err)
	}
	return out, nil
}

// ListDenials returns the ids of keys deleted, revoked or disabled at or
// after since (and not re-enabled since), with the time of that change.
// It reads only the tombstones and denials buckets, which retention keeps
// small, never the keys themselves.
func (db *DB) ListDenials(ctx context.Context, since time.Time) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		if err := collectDated(ctx, tx.Bucket(bucketDenials), since, out); err != nil {
			return err
		}
		return collectDated(ctx, tx.Bucket(bucketTombs), since, out)
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: list denials: %w", err)
	}
	return out, nil
}

// collectDated adds the entries of an id → time bucket dated at or after
// since to out.
func collectDated(ctx context.Context, b *bbolt.Bucket, since time.Time, out map[string]time.Time) error {
	n := 0
	return b.ForEach(func(k, v []byte) error {
		if n++; n%ctxCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		t, err := parseTombstone(k, v)
		if err != nil {
			return err
		}
		if !t.Before(since) {
			out[string(k)] = t
		}
		return nil
	})
}

// denied reports whether k's tokens must be refused: revoked or disabled.
func denied(k keys.APIKey) bool { return k.RevokedAt != nil || !k.Enabled }

// noteDenial keeps the denials bucket in step with a key's change: a key
// becoming revoked or disabled is recorded at now, a key enabled again is
// removed. Entries older than TombstoneRetention are pruned.
func noteDenial(tx *bbolt.Tx, cur, next keys.APIKey, now time.Time) error {
	b := tx.Bucket(bucketDenials)
	switch was, is := denied(cur), denied(next); {
	case is && !was:
		if err := b.Put([]byte(next.ID), []byte(now.UTC().Format(time.RFC3339Nano))); err != nil {
			return err
		}
		return pruneDated(b, now.Add(-TombstoneRetention))
	case was && !is:
		return b.Delete([]byte(next.ID))
	}
	return nil
}
