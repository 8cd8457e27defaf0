package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/keymint/keymint/jwks"
)

// runCLI runs the keymint command line in-process.
func runCLI(tb testing.TB, args ...string) (stdout, stderr string, err error) {
	tb.Helper()
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func copyDataFile(tb testing.TB, src, dst string) {
	tb.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		tb.Fatal(err)
	}
}

// TestBackupRestore takes a backup of a running server through the CLI,
// restores it into a new data directory with the same master key, and
// checks that the new server serves the same keys (PRODUCT.md §3 "Master
// key").
func TestBackupRestore(t *testing.T) {
	t.Setenv("KEYMINT_ROOT_KEY", "") // the CLI reads the data directory's root.key
	dirA := t.TempDir()
	a := MustRunMain(t, dirA)
	b := bootstrap(t, a, "acme", "ES256")
	live := createKey(t, a, b.AdminKey.Key, map[string]any{"name": "live", "role": "viewer", "scopes": []string{"deploys:write"}})
	gone := createKey(t, a, b.AdminKey.Key, map[string]any{"name": "gone", "role": "viewer"})
	if status, _, body := call(t, "POST", a.URL()+"/api/v1/apikeys/"+gone.ID+"/revoke", b.AdminKey.Key, nil); status != http.StatusOK {
		t.Fatalf("revoke: %d %s", status, body)
	}
	tokA := exchange(t, a, "POST", live.ID, live.Key, nil)

	out := filepath.Join(t.TempDir(), "keymint-backup.db")
	stdout, _, err := runCLI(t, "backup", "--out", out, "--server", a.URL(), "--data-dir", dirA)
	if err != nil {
		t.Fatalf("keymint backup: %v", err)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fi.Mode().Perm(), os.FileMode(0o600); got != want {
		t.Fatalf("backup mode=%v, want %v", got, want)
	}
	if want := "wrote " + strconv.FormatInt(fi.Size(), 10) + " bytes to " + out; !strings.Contains(stdout, want) {
		t.Fatalf("stdout=%q, want it to contain %q", stdout, want)
	}
	if _, err := os.Stat(out + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("%s.tmp left behind: %v", out, err)
	}

	// A key created after the backup is not in it.
	late := createKey(t, a, b.AdminKey.Key, map[string]any{"name": "late", "role": "viewer"})

	t.Run("ErrExists", func(t *testing.T) {
		before, _ := os.ReadFile(out)
		_, _, err := runCLI(t, "backup", "--out", out, "--server", a.URL(), "--data-dir", dirA)
		if err == nil || !strings.Contains(err.Error(), "--force") {
			t.Fatalf("err=%v, want a refusal naming --force", err)
		}
		if after, _ := os.ReadFile(out); !bytes.Equal(before, after) {
			t.Fatal("the refused backup changed the existing file")
		}
		forced := filepath.Join(t.TempDir(), "forced.db")
		if err := os.WriteFile(forced, []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, _, err := runCLI(t, "backup", "--out", forced, "--force", "--server", a.URL(), "--data-dir", dirA); err != nil {
			t.Fatalf("backup --force: %v", err)
		}
		if fi, err := os.Stat(forced); err != nil || fi.Size() < 4096 || fi.Mode().Perm() != 0o600 {
			t.Fatalf("forced backup: %v %v", fi, err)
		}
	})

	t.Run("ErrCredential", func(t *testing.T) {
		u := a.URL() + "/api/v1/admin/backup"
		status, h, body := call(t, "GET", u, "", nil)
		assertProblem(t, status, h, body, http.StatusUnauthorized, "")
		status, h, body = call(t, "GET", u, b.AdminKey.Key, nil) // an org admin is not the operator
		assertProblem(t, status, h, body, http.StatusForbidden, "")
		status, h, body = call(t, "GET", u, tokA.Token, nil)
		assertProblem(t, status, h, body, http.StatusForbidden, "")

		t.Setenv("KEYMINT_ROOT_KEY", strings.Repeat("x", 40))
		bad := filepath.Join(t.TempDir(), "bad.db")
		_, _, err := runCLI(t, "backup", "--out", bad, "--server", a.URL())
		if err == nil || !strings.Contains(err.Error(), "401") {
			t.Fatalf("err=%v, want the server's 401", err)
		}
		if _, err := os.Stat(bad); !os.IsNotExist(err) {
			t.Fatalf("a failed backup left %s: %v", bad, err)
		}
		if _, err := os.Stat(bad + ".tmp"); !os.IsNotExist(err) {
			t.Fatalf("a failed backup left %s.tmp: %v", bad, err)
		}
	})

	t.Run("Restore", func(t *testing.T) {
		dirB := t.TempDir()
		copyDataFile(t, out, filepath.Join(dirB, "keymint.db"))
		copyDataFile(t, filepath.Join(dirA, "master.key"), filepath.Join(dirB, "master.key"))
		s := MustRunMain(t, dirB)

		// The admin key's secret still exchanges.
		exchange(t, s, "POST", b.AdminKey.ID, b.AdminKey.Key, nil)

		// A token from B verifies against B's JWKS with A's kid.
		tokB := exchange(t, s, "POST", live.ID, live.Key, nil)
		issB := s.URL() + "/orgs/acme"
		v, err := jwks.NewVerifier(jwks.WithIssuer(issB))
		if err != nil {
			t.Fatal(err)
		}
		claims, err := v.Verify(context.Background(), tokB.Token)
		if err != nil {
			t.Fatalf("verify B's token: %v", err)
		}
		if got, want := claims.KeyID, b.SigningKey.KID; got != want {
			t.Fatalf("kid=%q, want A's %q", got, want)
		}
		if got, want := claims.Scope, "*:read deploys:write"; got != want {
			t.Fatalf("scope=%q, want %q", got, want)
		}

		// B publishes A's signing key: a token A issued before the
		// backup verifies against B's key set.
		status, _, body := call(t, "GET", issB+"/.well-known/jwks.json", "", nil)
		if status != http.StatusOK {
			t.Fatalf("B's JWKS: %d %s", status, body)
		}
		set, err := jwks.ParseKeySet(body)
		if err != nil {
			t.Fatal(err)
		}
		vA, err := jwks.NewVerifier(jwks.WithIssuer(a.URL()+"/orgs/acme"), jwks.WithSource(jwks.StaticKeySet(set)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := vA.Verify(context.Background(), tokA.Token); err != nil {
			t.Fatalf("A's token against B's JWKS: %v", err)
		}

		// The revoked key stays revoked.
		status, h, body := call(t, "POST", s.URL()+"/api/v1/apikeys/"+gone.ID+"/token", gone.Key, nil)
		assertProblem(t, status, h, body, http.StatusUnauthorized, "")
		status, _, body = call(t, "GET", s.URL()+"/api/v1/apikeys/"+gone.ID, b.AdminKey.Key, nil)
		var k struct {
			Status string `json:"status"`
		}
		if status != http.StatusOK || json.Unmarshal(body, &k) != nil || k.Status != "revoked" {
			t.Fatalf("revoked key on B: %d %s", status, body)
		}

		// The key created after the backup is not there.
		status, _, body = call(t, "GET", s.URL()+"/api/v1/apikeys/"+late.ID, b.AdminKey.Key, nil)
		if status != http.StatusNotFound {
			t.Fatalf("key created after the backup: %d %s", status, body)
		}
	})

	t.Run("ErrOtherMasterKey", func(t *testing.T) {
		for _, tt := range []struct {
			name   string
			master string // master.key's content; "" leaves it out
		}{
			// Forgetting to copy master.key: the server creates a new one.
			{"Missing", ""},
			{"Different", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))},
		} {
			dirC := t.TempDir()
			copyDataFile(t, out, filepath.Join(dirC, "keymint.db"))
			if tt.master != "" {
				if err := os.WriteFile(filepath.Join(dirC, "master.key"), []byte(tt.master+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			m := NewMain()
			m.Stderr = io.Discard
			m.Config.Addr, m.Config.DataDir = "127.0.0.1:0", dirC
			err := m.Run(context.Background())
			if err == nil {
				m.Close()
				t.Fatalf("%s: started a restored backup with another master key", tt.name)
			}
			if !strings.Contains(err.Error(), "master key") {
				t.Fatalf("%s: err=%v, want it to name the master key", tt.name, err)
			}
		}
	})
}
