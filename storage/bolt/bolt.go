package bolt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/keymint/keymint/storage"
)

// DefaultTimeout is how long Open waits for another process's lock on the
// file unless Options.Timeout says otherwise.
const DefaultTimeout = time.Second

// Options configure Open. Zero fields, and a nil *Options, mean defaults.
type Options struct {
	// Timeout is how long Open waits for the file lock that another
	// process (such as a second keymint on the same file) holds. Zero
	// means DefaultTimeout.
	Timeout time.Duration

	// UnsafeNoSync skips fsync on commit. Writes get much faster, and a
	// crash of the machine (not just of the process) may lose or corrupt
	// recent commits. Meant for tests and benchmarks only.
	UnsafeNoSync bool

	// Now is the clock that dates tombstones (see DeleteAPIKey). Nil
	// means time.Now; tests set it to move time.
	Now func() time.Time

	// MaxBatchSize and MaxBatchDelay tune how concurrent key creates
	// share one commit (bbolt's DB.Batch): a batch commits when it holds
	// MaxBatchSize writes or MaxBatchDelay after its first. Zero means
	// DefaultMaxBatchSize and DefaultMaxBatchDelay. bbolt's own defaults
	// (1000 writes, 10 ms) make every create of a few dozen concurrent
	// writers wait the full 10 ms; see docs/PERFORMANCE.md.
	MaxBatchSize  int
	MaxBatchDelay time.Duration
}

// Batching defaults, measured by BenchmarkCreateAPIKeyParallel.
const (
	DefaultMaxBatchSize  = 64
	DefaultMaxBatchDelay = time.Millisecond
)

// DB is a storage.Store in one bbolt file. It is safe for concurrent use.
type DB struct {
	db   *bbolt.DB
	path string
	now  func() time.Time
}

var _ storage.Store = (*DB)(nil)

// Bucket names; see the package documentation for what each holds.
var (
	bucketOrgs     = []byte("orgs")
	bucketAPIKeys  = []byte("apikeys")
	bucketKeyIndex = []byte("apikeys_by_org")
	bucketSigning  = []byte("signing_keys")
	bucketSettings = []byte("settings")
	bucketTombs    = []byte("tombstones")
	bucketAudit    = []byte("audit")
	bucketUsage    = []byte("usage")
	bucketDenials  = []byte("denials")
	// bucketLiveCounts holds each org's number of live keys (org → uint64),
	// kept in step with the index by setIndex.
	bucketLiveCounts = []byte("live_key_counts")

	allBuckets = [][]byte{bucketOrgs, bucketAPIKeys, bucketKeyIndex, bucketSigning, bucketSettings, bucketTombs, bucketAudit, bucketUsage, bucketDenials}
)

// Open opens the bbolt file at path, creating it with mode 0600 if it does
// not exist, and creates any missing bucket (so a file written by an
// older keymint gains the buckets added since). It fails if another process
// holds the file for longer than opts.Timeout.
func Open(path string, opts *Options) (*DB, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxBatchSize <= 0 {
		o.MaxBatchSize = DefaultMaxBatchSize
	}
	if o.MaxBatchDelay <= 0 {
		o.MaxBatchDelay = DefaultMaxBatchDelay
	}
	bo := *bbolt.DefaultOptions
	bo.Timeout = o.Timeout
	bo.NoSync = o.UnsafeNoSync
	bdb, err := bbolt.Open(path, 0o600, &bo)
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("bolt: open %s: file still locked after %v (is another keymint using it?): %w", path, o.Timeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	err = bdb.Update(func(tx *bbolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		if tx.Bucket(bucketLiveCounts) != nil {
			return nil
		}
		if _, err := tx.CreateBucket(bucketLiveCounts); err != nil {
			return fmt.Errorf("create bucket %s: %w", bucketLiveCounts, err)
		}
		return countLiveKeys(tx) // a database from before the counts
	})
	if err != nil {
		_ = bdb.Close()
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	bdb.MaxBatchSize, bdb.MaxBatchDelay = o.MaxBatchSize, o.MaxBatchDelay
	return &DB{db: bdb, path: path, now: o.Now}, nil
}

// Path returns the path of the database file.
func (db *DB) Path() string { return db.path }

// Close closes the file and releases its lock. A second Close returns nil;
// every other method fails after Close.
func (db *DB) Close() error {
	if err := db.db.Close(); err != nil {
		return fmt.Errorf("bolt: close %s: %w", db.path, err)
	}
	return nil
}

// view runs fn in a read-only transaction unless ctx is already done.
func (db *DB) view(ctx context.Context, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.db.View(fn)
}

// update runs fn in a read-write transaction unless ctx is already done.
func (db *DB) update(ctx context.Context, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.db.Update(fn)
}

// batch is update for writes that many callers make at once: fn may share
// a transaction and its commit with other callers' writes, and may be
// called more than once (bbolt reruns it alone if the shared transaction
// fails), so it must have no effects outside tx.
func (db *DB) batch(ctx context.Context, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.db.Batch(fn)
}

// getJSON decodes the value under key into v, or returns
// storage.ErrNotFound. Decoding copies, so v is valid after the
// transaction.
func getJSON(b *bbolt.Bucket, key []byte, v any) error {
	data := b.Get(key)
	if data == nil {
		return storage.ErrNotFound
	}
	return decode(key, data, v)
}

// decode decodes the value data stored under key into v.
func decode(key, data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %q: %w", key, err)
	}
	return nil
}

// putJSON stores the JSON encoding of v under key.
func putJSON(b *bbolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %q: %w", key, err)
	}
	return b.Put(key, data)
}

// ctxCheckEvery is how many items a long scan handles between checks of
// its context.
const ctxCheckEvery = 256
