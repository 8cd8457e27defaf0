// Package storage declares keymint's persistence interface and its
// sentinel errors. Implementations live in subpackages (storage/bolt);
// storage/storagetest is the conformance suite every implementation must
// pass.
package storage

import (
	"context"
	"errors"

	"github.com/keymint/keymint/keys"
)

// Sentinels. Implementations wrap them with context; match with errors.Is.
var (
	// ErrNotFound: no object has this id.
	ErrNotFound = errors.New("storage: not found")
	// ErrExists: an object with this id already exists.
	ErrExists = errors.New("storage: already exists")
	// ErrConflict: the write would break an invariant (such as the org's
	// max_keys) given the state it found.
	ErrConflict = errors.New("storage: conflict")
)

// ErrKeyLimit is returned by CreateAPIKey when the org already holds
// max_keys keys that are not revoked. It wraps ErrConflict.
var ErrKeyLimit = &limitError{}

type limitError struct{}

func (*limitError) Error() string        { return "storage: org is at its max_keys limit" }
func (*limitError) Is(target error) bool { return target == ErrConflict }

// Store is keymint's persistence. Every method is safe for concurrent use,
// and every write is atomic: it commits whole or not at all.
type Store interface {
	// CreateOrg stores a new org together with its first signing keys and
	// its first admin key, in one transaction. It returns ErrExists if
	// the org id is taken (and then writes nothing).
	CreateOrg(ctx context.Context, org keys.Org, signing []keys.SigningKey, admin keys.APIKey) error
	// GetOrg returns ErrNotFound if no org has this id.
	GetOrg(ctx context.Context, id string) (keys.Org, error)
	// ListOrgs returns every org, ordered by id.
	ListOrgs(ctx context.Context) ([]keys.Org, error)
	// UpdateOrg runs fn on the stored org and stores its result, in one
	// transaction; fn may be called more than once. It returns
	// ErrNotFound if no org has this id, or fn's error (unwrapped
	// unchanged) if fn fails, writing nothing.
	UpdateOrg(ctx context.Context, id string, fn func(keys.Org) (keys.Org, error)) (keys.Org, error)

	// CreateAPIKey stores a new key. In the same transaction it counts the
	// org's keys that are not revoked and returns ErrKeyLimit if that
	// count has reached the org's policy.max_keys, so concurrent creates
	// can never exceed it. It returns ErrNotFound if the org does not
	// exist and ErrExists if the key id is taken.
	CreateAPIKey(ctx context.Context, k keys.APIKey) error
	// GetAPIKey returns ErrNotFound if no key has this id.
	GetAPIKey(ctx context.Context, id string) (keys.APIKey, error)
	// ListAPIKeys returns up to opts.Limit keys of org ordered by id
	// (UUIDv7, so creation order), starting after opts.After, that pass
	// opts.Filter. A missing org yields an empty list.
	ListAPIKeys(ctx context.Context, org string, opts ListOptions) ([]keys.APIKey, error)
	// UpdateAPIKey runs fn on the stored key and stores its result, in one
	// transaction; fn may be called more than once, and must not change
	// the key's id or org. It returns ErrNotFound, or fn's error unchanged.
	UpdateAPIKey(ctx context.Context, id string, fn func(keys.APIKey) (keys.APIKey, error)) (keys.APIKey, error)
	// DeleteAPIKey removes a key; ErrNotFound if there is none.
	DeleteAPIKey(ctx context.Context, id string) error

	// ListSigningKeys returns the org's signing keys ordered by
	// created_at, oldest first; an unknown org yields an empty list.
	ListSigningKeys(ctx context.Context, org string) ([]keys.SigningKey, error)
	// UpdateSigningKeys replaces the org's whole set of signing keys with
	// fn's result, in one transaction; fn may be called more than once.
	// It returns ErrNotFound if the org does not exist, or fn's error
	// unchanged.
	UpdateSigningKeys(ctx context.Context, org string, fn func([]keys.SigningKey) ([]keys.SigningKey, error)) ([]keys.SigningKey, error)

	// GetSetting returns a server setting; ErrNotFound if unset.
	GetSetting(ctx context.Context, name string) ([]byte, error)
	// InitSetting stores value under name unless the name is already
	// set, and returns the value now stored: the existing one, or value.
	InitSetting(ctx context.Context, name string, value []byte) ([]byte, error)

	// Close releases the store. Calls after Close fail.
	Close() error
}

// ListOptions page and filter ListAPIKeys.
type ListOptions struct {
	// After is the id of the last key of the previous page; "" starts at
	// the beginning.
	After string
	// Limit caps the result; 0 means no cap.
	Limit int
	// Filter, if set, keeps only keys for which it returns true. Keys it
	// drops do not count toward Limit.
	Filter func(keys.APIKey) bool
}
