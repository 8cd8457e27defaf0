package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/keymint/keymint/keys"
)

var secretRe = regexp.MustCompile(`km_sk_[A-Za-z0-9_-]{40,}`)

// TestCLIKeys drives "keymint keys …" against the real server, as an
// operator would with KEYMINT_API_KEY set.
func TestCLIKeys(t *testing.T) {
	m := MustRunMain(t, "")
	adminID, admin := bootstrapWith(t, m, "cli", nil)
	t.Setenv("KEYMINT_API_KEY", admin)
	t.Setenv("KEYMINT_TOKEN", "")
	t.Setenv("KEYMINT_SERVER", "")
	cli := func(t *testing.T, args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), append(args, "--server", m.URL()), &stdout, &stderr); err != nil {
			t.Fatalf("keymint %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr.String())
		}
		return stdout.String()
	}
	// row returns the table line naming id.
	row := func(t *testing.T, out, id string) string {
		t.Helper()
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, id) {
				return l
			}
		}
		t.Fatalf("no row for %s in:\n%s", id, out)
		return ""
	}
	wantHeader := func(t *testing.T, out string) {
		t.Helper()
		first := strings.Fields(strings.SplitN(out, "\n", 2)[0])
		if len(first) < 4 || first[0] != "ID" || first[1] != "NAME" || !strings.Contains(strings.Join(first, " "), "STATUS") {
			t.Fatalf("no header row in:\n%s", out)
		}
	}

	out := cli(t, "keys", "create", "--name", "cli-key", "--role", "viewer", "--scopes", "devices:write")
	wantHeader(t, out)
	secret := secretRe.FindString(out)
	if secret == "" || !strings.Contains(out, "cli-key") {
		t.Fatalf("create output lacks the name or the secret:\n%s", out)
	}
	s, err := keys.ParseSecret(secret)
	if err != nil {
		t.Fatalf("the printed secret does not parse: %v", err)
	}
	id := s.KeyID
	if l := row(t, out, id); !strings.Contains(l, "viewer") || !strings.Contains(l, "devices:write") || !strings.Contains(l, "active") {
		t.Fatalf("create row %q", l)
	}
	wantStatus(t, tryExchange(t, m, id, secret), http.StatusOK)

	soonOut := cli(t, "keys", "create", "--name", "soon-key", "--role", "viewer", "--expires-in", "7d")
	soonID := keysParse(t, secretRe.FindString(soonOut))
	if !strings.Contains(soonOut, "soon") {
		t.Fatalf("create of an expiring key does not warn:\n%s", soonOut)
	}

	t.Run("List", func(t *testing.T) {
		out := cli(t, "keys", "list")
		wantHeader(t, out)
		if l := row(t, out, soonID); !strings.Contains(l, "soon-key") || !strings.Contains(l, "soon!") {
			t.Fatalf("the expires-soon key is not flagged: %q", l)
		}
		if l := row(t, out, id); !strings.Contains(l, "cli-key") || strings.Contains(l, "soon") {
			t.Fatalf("row %q", l)
		}
		row(t, out, adminID)
		if strings.Contains(out, secret) || strings.Contains(out, admin) {
			t.Fatalf("list prints a secret:\n%s", out)
		}
		if !strings.Contains(out, keys.MaskSecret(secret)) {
			t.Fatalf("list lacks the masked value %q:\n%s", keys.MaskSecret(secret), out)
		}
		if q := cli(t, "keys", "list", "--q", "SOON"); strings.Contains(q, id) || !strings.Contains(q, soonID) {
			t.Fatalf("list --q SOON:\n%s", q)
		}
	})
	t.Run("Get", func(t *testing.T) {
		out := cli(t, "keys", "get", id)
		wantHeader(t, out)
		if l := row(t, out, id); !strings.Contains(l, "cli-key") || !strings.Contains(l, keys.MaskSecret(secret)) {
			t.Fatalf("get row %q", l)
		}
		if strings.Contains(out, secret) {
			t.Fatal("get prints the secret")
		}
	})
	t.Run("JSON", func(t *testing.T) {
		var ks []map[string]any
		if err := json.Unmarshal([]byte(cli(t, "keys", "list", "--json")), &ks); err != nil || len(ks) != 3 {
			t.Fatalf("list --json: %v (%d keys)", err, len(ks))
		}
		var k map[string]any
		if err := json.Unmarshal([]byte(cli(t, "keys", "get", id, "--json")), &k); err != nil || k["id"] != id || k["name"] != "cli-key" {
			t.Fatalf("get --json: %v %v", err, k)
		}
	})
	t.Run("UpdateDisable", func(t *testing.T) {
		out := cli(t, "keys", "update", id, "--disable")
		if l := row(t, out, id); !strings.Contains(l, "disabled") {
			t.Fatalf("update --disable row %q", l)
		}
		if g := getKeyAs(t, m, admin, id); g.Enabled || g.Status != "disabled" {
			t.Fatalf("after update --disable: %+v", g)
		}
		wantUnauthorized(t, tryExchange(t, m, id, secret))
		out = cli(t, "keys", "update", id, "--enable", "--name", "cli-key-2")
		if l := row(t, out, id); !strings.Contains(l, "active") || !strings.Contains(l, "cli-key-2") {
			t.Fatalf("update --enable row %q", l)
		}
	})
	t.Run("Roll", func(t *testing.T) {
		out := cli(t, "keys", "roll", id, "--grace-seconds", "0")
		rolled := secretRe.FindString(out)
		if rolled == "" || rolled == secret || keysParse(t, rolled) != id {
			t.Fatalf("roll output lacks a new secret for %s:\n%s", id, out)
		}
		wantUnauthorized(t, tryExchange(t, m, id, secret))
		wantStatus(t, tryExchange(t, m, id, rolled), http.StatusOK)
		if g := getKeyAs(t, m, admin, id); g.MaskedValue != keys.MaskSecret(rolled) {
			t.Fatalf("maskedValue=%q after roll, want %q", g.MaskedValue, keys.MaskSecret(rolled))
		}
	})
	t.Run("Revoke", func(t *testing.T) {
		out := cli(t, "keys", "revoke", id)
		if l := row(t, out, id); !strings.Contains(l, "revoked") {
			t.Fatalf("revoke row %q", l)
		}
		if g := getKeyAs(t, m, admin, id); g.Status != "revoked" {
			t.Fatalf("status=%q after revoke", g.Status)
		}
	})
	t.Run("Delete", func(t *testing.T) {
		out := cli(t, "keys", "delete", id)
		var got map[string]any
		if err := json.Unmarshal([]byte(out), &got); err != nil || got["acknowledged"] != true || got["deletedCount"] != float64(1) {
			t.Fatalf("delete output %q", out)
		}
		wantProblem(t, callAs(t, admin, "GET", m.URL()+"/api/v1/apikeys/"+id, nil), http.StatusNotFound)
	})
	t.Run("Errors", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), []string{"keys", "get", uuid.Must(uuid.NewV7()).String(), "--server", m.URL()}, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), "404") {
			t.Fatalf("get of an unknown key: err=%v", err)
		}
		err = run(context.Background(), []string{"keys", "create", "--name", "", "--role", "viewer", "--server", m.URL()}, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "name") {
			t.Fatalf("create without a name: err=%v", err)
		}
		if strings.Contains(stdout.String()+stderr.String(), admin) {
			t.Fatal("the CLI printed the credential")
		}
		t.Setenv("KEYMINT_API_KEY", "")
		if err := run(context.Background(), []string{"keys", "list", "--server", m.URL()}, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), "KEYMINT_API_KEY") {
			t.Fatalf("no credential: err=%v", err)
		}
	})
}

func keysParse(t *testing.T, secret string) string {
	t.Helper()
	s, err := keys.ParseSecret(secret)
	if err != nil {
		t.Fatalf("secret %q does not parse: %v", keys.MaskSecret(secret), err)
	}
	return s.KeyID
}
