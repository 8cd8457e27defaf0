package bolt_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keymint/keymint/storage"
	"github.com/keymint/keymint/storage/bolt"
)

func TestBackup(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()

	t.Run("OK", func(t *testing.T) {
		db := mustOpen(t, filepath.Join(dir, "live.db"), nil)
		mustCreateOrg(t, db, "acme", 10)
		k := newAPIKey(t, "acme")
		if err := db.CreateAPIKey(ctx, k); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		n, err := db.Backup(ctx, &buf)
		if err != nil {
			t.Fatalf("Backup: %v", err)
		}
		if got, want := n, int64(buf.Len()); got != want || n == 0 {
			t.Fatalf("Backup returned n=%d, wrote %d bytes", got, want)
		}
		path := filepath.Join(dir, "copy.db")
		if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		cp := mustOpen(t, path, nil)
		got, err := cp.GetAPIKey(ctx, k.ID)
		if err != nil {
			t.Fatalf("GetAPIKey in the copy: %v", err)
		}
		if got.Name != k.Name {
			t.Fatalf("Name=%q, want %q", got.Name, k.Name)
		}
		list, err := cp.ListAPIKeys(ctx, "acme", storage.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(list), 2; got != want {
			t.Fatalf("copy lists %d keys, want %d", got, want)
		}
	})

	// A write that commits while the backup streams is not in it.
	t.Run("Snapshot", func(t *testing.T) {
		db := mustOpen(t, filepath.Join(dir, "snap.db"), nil)
		mustCreateOrg(t, db, "snap", 10)
		started, release := make(chan struct{}), make(chan struct{})
		w := &gateWriter{started: started, release: release}
		type result struct {
			n   int64
			err error
		}
		res := make(chan result, 1)
		go func() {
			n, err := db.Backup(ctx, w)
			res <- result{n, err}
		}()
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatal("Backup never wrote")
		}
		late := newAPIKey(t, "snap")
		created := make(chan error, 1)
		go func() { created <- db.CreateAPIKey(ctx, late) }()
		select {
		case err := <-created:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(300 * time.Millisecond):
			// The write needs to grow the file and waits for the
			// backup's transaction; release it and check below.
		}
		close(release)
		r := <-res
		if r.err != nil {
			t.Fatalf("Backup: %v", r.err)
		}
		if err := <-created; err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "snap-copy.db")
		if err := os.WriteFile(path, w.buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		cp := mustOpen(t, path, nil)
		if _, err := cp.GetAPIKey(ctx, late.ID); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("key created during the backup: err=%v, want ErrNotFound in the copy", err)
		}
		if _, err := db.GetAPIKey(ctx, late.ID); err != nil {
			t.Fatalf("key created during the backup is not in the live db: %v", err)
		}
	})

	t.Run("ErrContextDone", func(t *testing.T) {
		db := mustOpen(t, filepath.Join(dir, "ctx.db"), nil)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		var buf bytes.Buffer
		if _, err := db.Backup(cctx, &buf); !errors.Is(err, context.Canceled) {
			t.Fatalf("err=%v, want context.Canceled", err)
		}
		if buf.Len() != 0 {
			t.Fatalf("wrote %d bytes after cancel", buf.Len())
		}

		// Cancelled mid-stream: the next write fails.
		cctx, cancel = context.WithCancel(ctx)
		defer cancel()
		cw := &cancelWriter{cancel: cancel}
		if _, err := db.Backup(cctx, cw); !errors.Is(err, context.Canceled) {
			t.Fatalf("err=%v, want context.Canceled", err)
		}
		if got, want := cw.writes, 1; got != want {
			t.Fatalf("writes=%d, want %d", got, want)
		}
	})

	t.Run("ErrWrite", func(t *testing.T) {
		db := mustOpen(t, filepath.Join(dir, "werr.db"), nil)
		boom := errors.New("disk full")
		if _, err := db.Backup(ctx, errWriter{boom}); !errors.Is(err, boom) {
			t.Fatalf("err=%v, want %v", err, boom)
		}
	})

	t.Run("ErrClosed", func(t *testing.T) {
		db, err := bolt.Open(filepath.Join(dir, "closed.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
		var buf bytes.Buffer
		if _, err := db.Backup(ctx, &buf); err == nil {
			t.Fatal("Backup after Close succeeded")
		}
	})
}

// gateWriter signals its first write and holds it until release closes.
type gateWriter struct {
	started, release chan struct{}
	buf              bytes.Buffer
}

func (w *gateWriter) Write(p []byte) (int, error) {
	if w.started != nil {
		close(w.started)
		w.started = nil
		<-w.release
	}
	return w.buf.Write(p)
}

// cancelWriter cancels its context on the first write.
type cancelWriter struct {
	cancel func()
	writes int
}

func (w *cancelWriter) Write(p []byte) (int, error) {
	w.writes++
	w.cancel()
	return len(p), nil
}

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }
