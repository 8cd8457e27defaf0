package bolt

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"go.etcd.io/bbolt"

	"github.com/keymint/keymint/keys"
	"github.com/keymint/keymint/storage"
)

// auditPrefix is the prefix of every audit entry of org.
func auditPrefix(org string) []byte {
	p := make([]byte, 0, len(org)+1+36)
	p = append(p, org...)
	return append(p, 0)
}

// auditKey is the key of event id of org.
func auditKey(org, id string) []byte {
	return append(auditPrefix(org), id...)
}

// AppendAudit stores events in one transaction, each under its Org and
// ID. It writes none of them and returns an error wrapping
// storage.ErrExists if an event's id is already stored in its org or is
// repeated in events, and a plain error if an event has no ID or its Org
// contains "\x00". An empty events writes nothing and returns nil.
func (db *DB) AppendAudit(ctx context.Context, events []keys.AuditEvent) error {
	if len(events) == 0 {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("bolt: append audit: %w", err)
		}
		return nil
	}
	err := db.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		for i, e := range events {
			if i > 0 && i%ctxCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if e.ID == "" {
				return fmt.Errorf("event #%d has no id", i)
			}
			if strings.IndexByte(e.Org, 0) >= 0 {
				return fmt.Errorf("event %q: org %q contains NUL", e.ID, e.Org)
			}
			k := auditKey(e.Org, e.ID)
			if b.Get(k) != nil {
				return fmt.Errorf("event %q of org %q: %w", e.ID, e.Org, storage.ErrExists)
			}
			if err := putJSON(b, k, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: append audit: %w", err)
	}
	return nil
}

// ListAudit returns up to opts.Limit events of org, newest (highest id)
// first, starting after (older than) opts.After, which it skips itself.
// If opts.KeyID is set it keeps only events whose KeyID or Actor is
// opts.KeyID, and if opts.Action is set only events with that Action;
// events it drops do not count toward Limit. It walks the org's entries
// backwards from opts.After, so a page costs the events it returns plus
// those the filters drop. An unknown org, or no match, yields an empty,
// non-nil list.
func (db *DB) ListAudit(ctx context.Context, org string, opts storage.AuditListOptions) ([]keys.AuditEvent, error) {
	out := []keys.AuditEvent{}
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		prefix := auditPrefix(org)
		// Start just below bound: below After itself, or below
		// org + "\x01", which is above every key of the prefix.
		bound := auditKey(org, opts.After)
		if opts.After == "" {
			bound = append([]byte(org), 1)
		}
		c := tx.Bucket(bucketAudit).Cursor()
		var k, v []byte
		if k, _ = c.Seek(bound); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		n := 0
		for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
			if n++; n%ctxCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			var e keys.AuditEvent
			if err := decode(k, v, &e); err != nil {
				return err
			}
			if opts.KeyID != "" && e.KeyID != opts.KeyID && e.Actor != opts.KeyID {
				continue
			}
			if opts.Action != "" && e.Action != opts.Action {
				continue
			}
			out = append(out, e)
			if opts.Limit > 0 && len(out) >= opts.Limit {
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: list audit of %q: %w", org, err)
	}
	return out, nil
}
