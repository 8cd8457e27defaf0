package handlers_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/keymint/keymint/handlers"
	"github.com/keymint/keymint/keys"
)

// backuper is a hand-written handlers.Backuper.
type backuper struct {
	BackupFn func(ctx context.Context, w io.Writer) (int64, error)
}

var _ handlers.Backuper = (*backuper)(nil)

func (b *backuper) Backup(ctx context.Context, w io.Writer) (int64, error) { return b.BackupFn(ctx, w) }

func newBackupServer(tb testing.TB, b handlers.Backuper) http.Handler {
	tb.Helper()
	_, svc := newServer(tb)
	srv, err := handlers.New(handlers.Config{Service: svc, RootKey: rootKey, Backup: b})
	if err != nil {
		tb.Fatal(err)
	}
	return srv.Handler()
}

func TestBackup(t *testing.T) {
	const path = "/api/v1/admin/backup"
	snapshot := strings.Repeat("bolt page ", 10000)
	ok := &backuper{BackupFn: func(_ context.Context, w io.Writer) (int64, error) {
		n, err := io.Copy(w, strings.NewReader(snapshot))
		return n, err
	}}

	t.Run("OK", func(t *testing.T) {
		rec := serve(newBackupServer(t, ok), "GET", path, rootKey, "")
		if rec.Code != http.StatusOK {
			t.Fatalf("status=%d body=%s", rec.Code, rec.Body)
		}
		if got := rec.Body.String(); got != snapshot {
			t.Fatalf("body is %d bytes, want the %d-byte snapshot", len(got), len(snapshot))
		}
		h := rec.Header()
		if got, want := h.Get("Content-Type"), "application/octet-stream"; got != want {
			t.Fatalf("Content-Type=%q, want %q", got, want)
		}
		if got, want := h.Get("Cache-Control"), "no-store"; got != want {
			t.Fatalf("Cache-Control=%q, want %q", got, want)
		}
		re := regexp.MustCompile(`^attachment; filename="keymint-\d{8}T\d{6}Z\.db"$`)
		if got := h.Get("Content-Disposition"); !re.MatchString(got) {
			t.Fatalf("Content-Disposition=%q, want %s", got, re)
		}
	})

	t.Run("ErrNotAvailable", func(t *testing.T) {
		rec := serve(newBackupServer(t, nil), "GET", path, rootKey, "")
		if rec.Code != http.StatusNotFound || rec.Header().Get("Content-Type") != "application/problem+json" ||
			!strings.Contains(rec.Body.String(), "Backup not available") {
			t.Fatalf("status=%d type=%q body=%s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
		}
	})

	t.Run("ErrCredential", func(t *testing.T) {
		called := false
		h := newBackupServer(t, &backuper{BackupFn: func(context.Context, io.Writer) (int64, error) {
			called = true
			return 0, nil
		}})
		_, secret := bootstrapOrg(t, h, "acme", keys.AlgES256)
		for _, tt := range []struct {
			name, cred string
			want       int
		}{
			{"None", "", http.StatusUnauthorized},
			{"Wrong", strings.Repeat("x", 40), http.StatusUnauthorized},
			{"OrgAdmin", secret, http.StatusForbidden},
		} {
			rec := serve(h, "GET", path, tt.cred, "")
			if rec.Code != tt.want || rec.Header().Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%s: status=%d type=%q, want %d problem", tt.name, rec.Code, rec.Header().Get("Content-Type"), tt.want)
			}
		}
		if called {
			t.Fatal("Backup ran for a caller without the root key")
		}
	})

	// An error before the first byte is a problem response.
	t.Run("ErrBeforeFirstByte", func(t *testing.T) {
		h := newBackupServer(t, &backuper{BackupFn: func(context.Context, io.Writer) (int64, error) {
			return 0, errors.New("bolt: backup: disk on fire")
		}})
		rec := serve(h, "GET", path, rootKey, "")
		if rec.Code != http.StatusInternalServerError || rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Fatalf("status=%d type=%q body=%s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
		}
		if strings.Contains(rec.Body.String(), "disk on fire") || rec.Header().Get("Content-Disposition") != "" {
			t.Fatalf("internal detail leaked or attachment headers set: %v %s", rec.Header(), rec.Body)
		}
	})

	// An error after the first byte cuts the connection: the client sees
	// a broken body, never a short file that looks complete.
	t.Run("ErrMidStream", func(t *testing.T) {
		h := newBackupServer(t, &backuper{BackupFn: func(_ context.Context, w io.Writer) (int64, error) {
			n, err := io.Copy(w, strings.NewReader(snapshot))
			if err != nil {
				return n, err
			}
			return n, errors.New("bolt: backup: read error")
		}})
		ts := httptest.NewServer(h)
		t.Cleanup(ts.Close)
		req, _ := http.NewRequest("GET", ts.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+rootKey)
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status=%d", resp.StatusCode)
		}
		if _, err := io.ReadAll(resp.Body); err == nil {
			t.Fatal("the client read a complete body from a failed backup")
		}
	})
}
