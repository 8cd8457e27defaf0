package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keymint/keymint/handlers"
	"github.com/keymint/keymint/issuer"
	"github.com/keymint/keymint/storage/bolt"
)

// keymint is an in-process keymint server: the real issuer and HTTP API
// over a bbolt database in a temporary directory.
type keymint struct {
	url     string
	rootKey string
}

func startKeymint(t *testing.T) *keymint {
	t.Helper()
	ctx := context.Background()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "keymint.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, issuer.MasterKeySize)
	rand.Read(raw)
	master, err := issuer.NewMasterKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := issuer.CheckMasterKey(ctx, db, master); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	publicURL := "http://" + srv.Listener.Addr().String()
	svc, err := issuer.New(issuer.Config{Store: db, Master: master, PublicURL: publicURL})
	if err != nil {
		t.Fatal(err)
	}
	root := make([]byte, 32)
	rand.Read(root)
	rootKey := "km_root_" + base64.RawURLEncoding.EncodeToString(root)
	api, err := handlers.New(handlers.Config{Service: svc, RootKey: rootKey})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = api.Handler()
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		svc.Close()
		db.Close()
	})
	return &keymint{url: publicURL, rootKey: rootKey}
}

// call sends a JSON request with a bearer credential and decodes a JSON
// response into out, failing unless the status is want.
func (k *keymint) call(t *testing.T, method, path, cred string, body any, want int, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, k.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+cred)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status=%d, want %d; body=%s", method, path, resp.StatusCode, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatal(err)
		}
	}
}

// org bootstraps an org and returns its issuer and admin secret.
func (k *keymint) org(t *testing.T, id string) (iss, admin string) {
	t.Helper()
	var out struct {
		Issuer   string `json:"issuer"`
		AdminKey struct {
			Key string `json:"key"`
		} `json:"admin_key"`
	}
	k.call(t, "POST", "/api/v1/orgs", k.rootKey, map[string]any{"id": id, "name": id}, http.StatusCreated, &out)
	return out.Issuer, out.AdminKey.Key
}

// token creates a key with role and scopes and returns its id and a JWT.
func (k *keymint) token(t *testing.T, admin, role string, scopes ...string) (id, token string) {
	t.Helper()
	var key struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	}
	k.call(t, "POST", "/api/v1/apikeys", admin, map[string]any{
		"name": role + " key", "role": role, "scopes": scopes,
		"expires_at": time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339),
	}, http.StatusCreated, &key)
	var tok struct {
		Token string `json:"token"`
	}
	k.call(t, "POST", "/api/v1/apikeys/"+key.ID+"/token", key.Key, nil, http.StatusOK, &tok)
	return key.ID, tok.Token
}

// TestDownstream runs the example service against an in-process keymint:
// it admits tokens of its issuer by scope, offline.
func TestDownstream(t *testing.T) {
	km := startKeymint(t)
	iss, admin := km.org(t, "acme")
	_, otherAdmin := km.org(t, "globex")
	viewerID, viewer := km.token(t, admin, "viewer")
	writerID, writer := km.token(t, admin, "viewer", "deploys:write")
	_, foreign := km.token(t, otherAdmin, "admin")

	h, err := newHandler(iss, "")
	if err != nil {
		t.Fatal(err)
	}
	ds := httptest.NewServer(h)
	defer ds.Close()

	do := func(t *testing.T, method, token string) (int, http.Header, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, ds.URL+"/deploys", strings.NewReader(`{"ref":"v1.2.3"}`))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatalf("%s /deploys: status=%d, body is not JSON: %v", method, resp.StatusCode, err)
		}
		return resp.StatusCode, resp.Header, body
	}

	t.Run("ListWithViewer", func(t *testing.T) {
		status, _, body := do(t, "GET", viewer)
		if status != http.StatusOK || body["caller"] != viewerID || body["org"] != "acme" {
			t.Fatalf("status=%d body=%v, want 200 naming %s", status, body, viewerID)
		}
	})
	t.Run("CreateWithViewer", func(t *testing.T) {
		status, h, _ := do(t, "POST", viewer)
		if status != http.StatusForbidden {
			t.Fatalf("status=%d, want 403", status)
		}
		if got := h.Get("WWW-Authenticate"); !strings.Contains(got, `error="insufficient_scope"`) || !strings.Contains(got, "deploys:write") {
			t.Fatalf("WWW-Authenticate=%q, want insufficient_scope naming deploys:write", got)
		}
	})
	t.Run("CreateWithWriter", func(t *testing.T) {
		status, _, body := do(t, "POST", writer)
		if status != http.StatusCreated || body["created_by"] != writerID {
			t.Fatalf("status=%d body=%v, want 201 created by %s", status, body, writerID)
		}
	})
	t.Run("NoToken", func(t *testing.T) {
		for _, method := range []string{"GET", "POST"} {
			status, h, _ := do(t, method, "")
			if status != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("%s: status=%d WWW-Authenticate=%q, want 401 Bearer", method, status, h.Get("WWW-Authenticate"))
			}
		}
	})
	t.Run("OtherOrgToken", func(t *testing.T) {
		// An admin of another org holds every scope, but not this issuer.
		for _, method := range []string{"GET", "POST"} {
			status, h, _ := do(t, method, foreign)
			if status != http.StatusUnauthorized || !strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Fatalf("%s: status=%d WWW-Authenticate=%q, want 401 invalid_token", method, status, h.Get("WWW-Authenticate"))
			}
		}
	})
	t.Run("TamperedToken", func(t *testing.T) {
		parts := strings.Split(viewer, ".")
		parts[2] = strings.Repeat("A", len(parts[2]))
		status, _, _ := do(t, "GET", strings.Join(parts, "."))
		if status != http.StatusUnauthorized {
			t.Fatalf("status=%d, want 401", status)
		}
	})
}
