package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/keymint/keymint/keys"
	"github.com/keymint/keymint/storage"
)

// usageKey orders a key's days under its org: org \x00 date \x00 key id,
// so one org's range of dates is one cursor walk.
func usageKey(org, date, keyID string) []byte {
	b := make([]byte, 0, len(org)+len(date)+len(keyID)+2)
	b = append(b, org...)
	b = append(b, 0)
	b = append(b, date...)
	b = append(b, 0)
	return append(b, keyID...)
}

// AddUsage merges deltas into the stored days and advances LastUsedAt, in
// one transaction.
func (db *DB) AddUsage(ctx context.Context, deltas []keys.UsageDay, lastUsed map[string]time.Time) error {
	err := db.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketUsage)
		for _, d := range deltas {
			k := usageKey(d.Org, d.Date, d.KeyID)
			var cur keys.UsageDay
			if err := getJSON(b, k, &cur); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return err
			}
			cur.Org, cur.KeyID, cur.Date = d.Org, d.KeyID, d.Date
			cur.Add(d)
			if err := putJSON(b, k, cur); err != nil {
				return err
			}
		}
		ak := tx.Bucket(bucketAPIKeys)
		for id, t := range lastUsed {
			var k keys.APIKey
			if err := getJSON(ak, []byte(id), &k); err != nil {
				if errors.Is(err, storage.ErrNotFound) {
					continue // deleted since
				}
				return err
			}
			if k.LastUsedAt != nil && !t.After(*k.LastUsedAt) {
				continue
			}
			t := t.UTC()
			k.LastUsedAt = &t
			if err := putJSON(ak, []byte(id), k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: add usage: %w", err)
	}
	return nil
}

// ListUsage returns org's stored days in [from, to], oldest first.
func (db *DB) ListUsage(ctx context.Context, org, keyID, from, to string) ([]keys.UsageDay, error) {
	out := []keys.UsageDay{}
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketUsage).Cursor()
		prefix := append([]byte(org), 0)
		end := usageKey(org, to, "\xff")
		for k, v := c.Seek(usageKey(org, from, "")); k != nil && bytes.HasPrefix(k, prefix) && bytes.Compare(k, end) <= 0; k, v = c.Next() {
			var d keys.UsageDay
			if err := decode(k, v, &d); err != nil {
				return err
			}
			if keyID == "" || d.KeyID == keyID {
				out = append(out, d)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: list usage of %q: %w", org, err)
	}
	return out, nil
}
