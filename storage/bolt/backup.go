package bolt

import (
	"context"
	"fmt"
	"io"

	"go.etcd.io/bbolt"
)

// Backup writes a consistent snapshot of the whole database file to w and
// returns the number of bytes written. The snapshot is one read-only
// transaction (bbolt's Tx.WriteTo), so it holds exactly the writes
// committed before Backup began and none of those that commit while it
// streams; writers keep committing meanwhile (but see below). The result is
// a complete bbolt file: copied as keymint.db into a new data directory and
// opened with the same master key, it serves the same orgs and keys.
//
// It returns ctx.Err() without writing if ctx is already done, and stops
// with ctx.Err() at the next write once ctx is done. A failed Backup may
// have written part of a file to w; callers must discard it.
//
// While Backup streams, its read transaction pins the file's current
// memory map: a write that needs to grow the file waits until Backup ends.
// A slow w therefore delays such writes; callers writing to the network
// should bound how long one write may stall.
func (db *DB) Backup(ctx context.Context, w io.Writer) (int64, error) {
	var n int64
	cw := &ctxWriter{ctx: ctx, w: w}
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		n, err = tx.WriteTo(cw)
		return err
	})
	if cw.err != nil {
		// bbolt formats the writer's error with %s; return it whole so
		// callers can match it with errors.Is.
		err = cw.err
	}
	if err != nil {
		return n, fmt.Errorf("bolt: backup %s: %w", db.path, err)
	}
	return n, nil
}

// ctxWriter fails its writes once ctx is done, so a backup to a client
// that went away stops early and releases its transaction. It keeps the
// first error it returned.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
	err error
}

func (cw *ctxWriter) Write(p []byte) (int, error) {
	if cw.err != nil {
		return 0, cw.err
	}
	if cw.err = cw.ctx.Err(); cw.err != nil {
		return 0, cw.err
	}
	n, err := cw.w.Write(p)
	cw.err = err
	return n, err
}
