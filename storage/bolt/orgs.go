package bolt

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.etcd.io/bbolt"

	"github.com/keymint/keymint/keys"
	"github.com/keymint/keymint/storage"
)

// CreateOrg stores org, its signing keys and its first admin key in one
// transaction. It returns an error wrapping storage.ErrExists if the org
// id or the admin key id is taken, and one wrapping storage.ErrConflict if
// admin.Org is not org.ID; either way it writes nothing. It does not check
// org.Policy.MaxKeys, but once stored the admin key takes one of its
// slots like any other live key.
func (db *DB) CreateOrg(ctx context.Context, org keys.Org, signing []keys.SigningKey, admin keys.APIKey) error {
	err := db.update(ctx, func(tx *bbolt.Tx) error {
		if admin.Org != org.ID {
			return fmt.Errorf("admin key belongs to org %q: %w", admin.Org, storage.ErrConflict)
		}
		orgs := tx.Bucket(bucketOrgs)
		id := []byte(org.ID)
		if orgs.Get(id) != nil {
			return storage.ErrExists
		}
		if tx.Bucket(bucketAPIKeys).Get([]byte(admin.ID)) != nil {
			return fmt.Errorf("admin key %q: %w", admin.ID, storage.ErrExists)
		}
		if err := putJSON(orgs, id, org); err != nil {
			return err
		}
		if _, err := putSigningKeys(tx, org.ID, signing); err != nil {
			return err
		}
		return putAPIKey(tx, admin)
	})
	if err != nil {
		return fmt.Errorf("bolt: create org %q: %w", org.ID, err)
	}
	return nil
}

// GetOrg returns the org; an error wrapping storage.ErrNotFound if there is
// none.
func (db *DB) GetOrg(ctx context.Context, id string) (keys.Org, error) {
	var org keys.Org
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		return getJSON(tx.Bucket(bucketOrgs), []byte(id), &org)
	})
	if err != nil {
		return keys.Org{}, fmt.Errorf("bolt: get org %q: %w", id, err)
	}
	return org, nil
}

// ListOrgs returns every org, ordered by id.
func (db *DB) ListOrgs(ctx context.Context) ([]keys.Org, error) {
	out := []keys.Org{}
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketOrgs).Cursor()
		n := 0
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if n++; n%ctxCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			var org keys.Org
			if err := decode(k, v, &org); err != nil {
				return err
			}
			out = append(out, org)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: list orgs: %w", err)
	}
	return out, nil
}

// UpdateOrg runs fn on the stored org and stores its result in one
// transaction, calling fn exactly once. It returns an error wrapping
// storage.ErrNotFound if there is no such org, fn's error unchanged if fn
// fails, and an error wrapping storage.ErrConflict if fn changed the id;
// in each case it writes nothing.
func (db *DB) UpdateOrg(ctx context.Context, id string, fn func(keys.Org) (keys.Org, error)) (keys.Org, error) {
	var out keys.Org
	var fnErr error
	err := db.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketOrgs)
		var cur keys.Org
		if err := getJSON(b, []byte(id), &cur); err != nil {
			return err
		}
		next, err := fn(cur)
		if err != nil {
			fnErr = err
			return err
		}
		if next.ID != id {
			return fmt.Errorf("updater changed the id to %q: %w", next.ID, storage.ErrConflict)
		}
		if err := putJSON(b, []byte(id), next); err != nil {
			return err
		}
		out = next
		return nil
	})
	if fnErr != nil {
		return keys.Org{}, fnErr
	}
	if err != nil {
		return keys.Org{}, fmt.Errorf("bolt: update org %q: %w", id, err)
	}
	return out, nil
}

// ListSigningKeys returns the org's signing keys ordered by CreatedAt,
// oldest first. An unknown org yields an empty list.
func (db *DB) ListSigningKeys(ctx context.Context, org string) ([]keys.SigningKey, error) {
	out := []keys.SigningKey{}
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		err := getJSON(tx.Bucket(bucketSigning), []byte(org), &out)
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: list signing keys of %q: %w", org, err)
	}
	if out == nil {
		out = []keys.SigningKey{}
	}
	return out, nil
}

// UpdateSigningKeys replaces the org's signing keys with fn's result,
// sorted by CreatedAt, in one transaction, calling fn exactly once. It
// returns the keys as stored. It returns an error wrapping
// storage.ErrNotFound if the org does not exist, or fn's error unchanged
// if fn fails; in both cases it writes nothing.
func (db *DB) UpdateSigningKeys(ctx context.Context, org string, fn func([]keys.SigningKey) ([]keys.SigningKey, error)) ([]keys.SigningKey, error) {
	var out []keys.SigningKey
	var fnErr error
	err := db.update(ctx, func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketOrgs).Get([]byte(org)) == nil {
			return storage.ErrNotFound
		}
		cur := []keys.SigningKey{}
		if err := getJSON(tx.Bucket(bucketSigning), []byte(org), &cur); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		next, err := fn(cur)
		if err != nil {
			fnErr = err
			return err
		}
		out, err = putSigningKeys(tx, org, next)
		return err
	})
	if fnErr != nil {
		return nil, fnErr
	}
	if err != nil {
		return nil, fmt.Errorf("bolt: update signing keys of %q: %w", org, err)
	}
	return out, nil
}

// putSigningKeys stores a copy of ks sorted by CreatedAt (stable, so keys
// created in the same instant keep their order) and returns that copy.
func putSigningKeys(tx *bbolt.Tx, org string, ks []keys.SigningKey) ([]keys.SigningKey, error) {
	sorted := make([]keys.SigningKey, len(ks))
	copy(sorted, ks)
	slices.SortStableFunc(sorted, func(a, b keys.SigningKey) int {
		return a.CreatedAt.Compare(b.CreatedAt)
	})
	if err := putJSON(tx.Bucket(bucketSigning), []byte(org), sorted); err != nil {
		return nil, err
	}
	return sorted, nil
}

// GetSetting returns a copy of the setting's value; an error wrapping
// storage.ErrNotFound if it is unset.
func (db *DB) GetSetting(ctx context.Context, name string) ([]byte, error) {
	var out []byte
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		v, ok := getSetting(tx, name)
		if !ok {
			return storage.ErrNotFound
		}
		out = v
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: get setting %q: %w", name, err)
	}
	return out, nil
}

// InitSetting stores value under name unless name is set already, and
// returns the value now stored: the existing one, or value.
func (db *DB) InitSetting(ctx context.Context, name string, value []byte) ([]byte, error) {
	var out []byte
	err := db.update(ctx, func(tx *bbolt.Tx) error {
		if v, ok := getSetting(tx, name); ok {
			out = v
			return nil
		}
		out = append([]byte{}, value...)
		return tx.Bucket(bucketSettings).Put([]byte(name), out)
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: init setting %q: %w", name, err)
	}
	return out, nil
}

// getSetting returns a copy of the value under name and whether it is set.
// It seeks with a cursor rather than calling Get so that an empty value
// still counts as set.
func getSetting(tx *bbolt.Tx, name string) ([]byte, bool) {
	k, v := tx.Bucket(bucketSettings).Cursor().Seek([]byte(name))
	if k == nil || string(k) != name {
		return nil, false
	}
	return append([]byte{}, v...), true
}
