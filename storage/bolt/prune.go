package bolt

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"go.etcd.io/bbolt"

	"github.com/keymint/keymint/keys"
)

// maxPrunePerTx bounds the entries one Prune call deletes, so a first prune
// of a long history does not hold the write lock for long; callers repeat
// while it returns the bound.
const maxPrunePerTx = 10_000

// PruneAudit deletes audit events recorded before before (by the time in
// their UUIDv7 id), at most maxPrunePerTx in one transaction, and returns
// how many it deleted. Each org's events are ordered by id, so it reads
// only the events it deletes plus one per org.
func (db *DB) PruneAudit(ctx context.Context, before time.Time) (int, error) {
	n, err := db.prune(ctx, bucketAudit, func(rest []byte) bool {
		id, err := uuid.ParseBytes(rest)
		if err != nil || id.Version() != 7 {
			return false
		}
		sec, nsec := id.Time().UnixTime()
		return time.Unix(sec, nsec).Before(before)
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: prune audit: %w", err)
	}
	return n, nil
}

// PruneUsage deletes usage days before the day of before, like PruneAudit.
func (db *DB) PruneUsage(ctx context.Context, before time.Time) (int, error) {
	cutoff := []byte(keys.UsageDate(before))
	n, err := db.prune(ctx, bucketUsage, func(rest []byte) bool {
		date, _, _ := bytes.Cut(rest, []byte{0})
		return bytes.Compare(date, cutoff) < 0
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: prune usage: %w", err)
	}
	return n, nil
}

// prune deletes, in one transaction, the entries of a bucket keyed
// org \x00 rest, in rest order per org, for which old(rest) holds,
// stopping in each org at the first entry that is not old.
func (db *DB) prune(ctx context.Context, bucket []byte, old func(rest []byte) bool) (int, error) {
	n := 0
	err := db.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucket)
		var doomed [][]byte
		c := b.Cursor()
		for k, _ := c.First(); k != nil && len(doomed) < maxPrunePerTx; {
			org, rest, ok := bytes.Cut(k, []byte{0})
			if ok && old(rest) {
				doomed = append(doomed, bytes.Clone(k))
				k, _ = c.Next()
				continue
			}
			// The rest of this org is newer: go to the next org.
			next := append(bytes.Clone(org), 1)
			k, _ = c.Seek(next)
		}
		for _, k := range doomed {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(doomed)
		return nil
	})
	return n, err
}
