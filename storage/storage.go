// Package storage declares keymint's persistence interface and its
// sentinel errors. Implementations live in subpackages (storage/bolt);
// storage/storagetest is the conformance suite every implementation must
// pass.
package storage

import (
	"context"
	"errors"
	"time"

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
// max_keys keys that are not revoked, and by UpdateAPIKey when fn would
// unrevoke a key of such an org. It wraps ErrConflict.
var ErrKeyLimit = &limitError{}

type limitError struct{}

func (*limitError) Error() string        { return "storage: org is at its max_keys limit" }
func (*limitError) Is(target error) bool { return target == ErrConflict }

// Store is keymint's persistence. Every method is safe for concurrent use,
// and every write is atomic: it commits whole or not at all; a write that
// returns an error writes nothing. List methods return an empty, non-nil
// slice (or map) when nothing matches.
//
// Functions passed to a method (updaters, checks, filters) run inside its
// transaction and must not call the store: a nested call may deadlock.
type Store interface {
	// CreateOrg stores a new org together with its first signing keys and
	// its first admin key, in one transaction. It returns ErrExists if
	// the org id or the admin key id is taken, and ErrConflict if
	// admin.Org is not org.ID; either way it writes nothing. It does not
	// check policy.max_keys, but the admin key takes one of its slots
	// like any other key that is not revoked.
	CreateOrg(ctx context.Context, org keys.Org, signing []keys.SigningKey, admin keys.APIKey) error
	// GetOrg returns ErrNotFound if no org has this id.
	GetOrg(ctx context.Context, id string) (keys.Org, error)
	// ListOrgs returns every org, ordered by id.
	ListOrgs(ctx context.Context) ([]keys.Org, error)
	// UpdateOrg runs fn on the stored org and stores its result, in one
	// transaction; fn may be called more than once, and must not change
	// the org's id. It returns ErrNotFound if no org has this id, fn's
	// error (unwrapped unchanged) if fn fails, and ErrConflict if fn
	// changed the id, writing nothing in each case.
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
	// opts.Filter. A missing org yields an empty list. Revoked keys are
	// listed too.
	ListAPIKeys(ctx context.Context, org string, opts ListOptions) ([]keys.APIKey, error)
	// UpdateAPIKey runs fn on the stored key and stores its result, in one
	// transaction; fn may be called more than once, and must not change
	// the key's id or org. It returns the key as stored. It writes nothing
	// and returns ErrNotFound if there is no such key, fn's error
	// unchanged if fn fails, ErrConflict if fn changed the id or org, and
	// ErrKeyLimit if fn clears RevokedAt while the org already holds
	// policy.max_keys keys that are not revoked.
	UpdateAPIKey(ctx context.Context, id string, fn func(keys.APIKey) (keys.APIKey, error)) (keys.APIKey, error)
	// DeleteAPIKey removes a key in one transaction: it reads the key,
	// calls check (if not nil) and deletes only if check returns nil,
	// returning check's error unchanged otherwise and writing nothing;
	// check may be called more than once. In the same transaction it
	// records a tombstone (id, deletion time). ErrNotFound if there is no
	// such key (check is then not called).
	DeleteAPIKey(ctx context.Context, id string, check func(keys.APIKey) error) error
	// ListTombstones returns the ids of keys deleted at or after since,
	// with their deletion times. A backend keeps tombstones for at least
	// seven days and may drop older ones, so a reader that falls further
	// behind must resynchronise from ListAPIKeys.
	ListTombstones(ctx context.Context, since time.Time) (map[string]time.Time, error)
	// ListDenials returns the ids of keys deleted, revoked or disabled at or
	// after since and not enabled again, with the time of that change. It
	// must not read every key: it is called at start on stores of millions
	// of keys. Backends keep these records at least as long as tombstones.
	ListDenials(ctx context.Context, since time.Time) (map[string]time.Time, error)

	// AppendAudit stores events in one transaction. Each event's ID is a
	// UUIDv7 set by the caller; ErrExists if one is already stored in the
	// event's org or repeated in events, and then none is written.
	AppendAudit(ctx context.Context, events []keys.AuditEvent) error
	// ListAudit returns up to opts.Limit events of org, newest (highest
	// id) first, starting after (older than) opts.After, matching
	// opts.KeyID and opts.Action when set; events they drop do not count
	// toward Limit. Events of other orgs never appear. An unknown org
	// yields an empty list.
	ListAudit(ctx context.Context, org string, opts AuditListOptions) ([]keys.AuditEvent, error)

	// ListSigningKeys returns the org's signing keys ordered by
	// created_at, oldest first; an unknown org yields an empty list.
	ListSigningKeys(ctx context.Context, org string) ([]keys.SigningKey, error)
	// UpdateSigningKeys replaces the org's whole set of signing keys with
	// fn's result, in one transaction; fn may be called more than once.
	// It returns ErrNotFound if the org does not exist, or fn's error
	// unchanged.
	UpdateSigningKeys(ctx context.Context, org string, fn func([]keys.SigningKey) ([]keys.SigningKey, error)) ([]keys.SigningKey, error)

	// AddUsage adds each delta's counts to the stored day of its key, in
	// one transaction, and moves each key's LastUsedAt forward to the
	// time given in lastUsed (keys that no longer exist are skipped).
	AddUsage(ctx context.Context, deltas []keys.UsageDay, lastUsed map[string]time.Time) error
	// ListUsage returns the stored days of org from the date from to the
	// date to (inclusive, YYYY-MM-DD), oldest first; only keyID's if it is
	// not "".
	ListUsage(ctx context.Context, org, keyID, from, to string) ([]keys.UsageDay, error)

	// PruneAudit deletes audit events recorded before before, returning how
	// many; it may stop early on a long history, so callers repeat while
	// it deletes anything.
	PruneAudit(ctx context.Context, before time.Time) (int, error)
	// PruneUsage deletes usage days before the day of before, likewise.
	PruneUsage(ctx context.Context, before time.Time) (int, error)

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
	// drops do not count toward Limit. It runs inside the read
	// transaction and must not call the store.
	Filter func(keys.APIKey) bool
}

// AuditListOptions page and filter ListAudit.
type AuditListOptions struct {
	After  string // the id of the last event of the previous page; "" starts at the newest
	Limit  int    // 0 means no cap
	KeyID  string // only events about this key: its KeyID or its Actor
	Action string // only events with this action
}
