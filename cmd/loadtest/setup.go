package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/keymint/keymint/keys"
	"github.com/keymint/keymint/storage/bolt"
)

// org is one bootstrapped org and its admin key.
type org struct {
	ID, Alg        string
	KeyID, Secret  string // the admin key
	JWKSURI        string
	Issuer, KeyKID string
}

// apiCall sends a JSON request with a bearer credential and decodes the
// 2xx JSON answer into out.
func apiCall(ctx context.Context, c *http.Client, method, url, bearer string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, bytes.TrimSpace(data))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

// bootstrap creates org id with signing algorithm alg using the root key.
func bootstrap(ctx context.Context, c *http.Client, base, root, id, alg string) (org, error) {
	var r struct {
		Issuer     string `json:"issuer"`
		JWKSURI    string `json:"jwks_uri"`
		SigningKey struct {
			KID string `json:"kid"`
			Alg string `json:"alg"`
		} `json:"signing_key"`
		AdminKey struct {
			ID  string `json:"id"`
			Key string `json:"key"`
		} `json:"admin_key"`
	}
	req := map[string]string{"id": id, "name": "loadtest " + alg, "alg": alg}
	if err := apiCall(ctx, c, http.MethodPost, base+"/api/v1/orgs", root, req, &r); err != nil {
		return org{}, fmt.Errorf("bootstrap %s: %w", id, err)
	}
	if r.AdminKey.ID == "" || r.AdminKey.Key == "" {
		return org{}, fmt.Errorf("bootstrap %s: no admin key in the response", id)
	}
	if r.SigningKey.Alg != alg {
		return org{}, fmt.Errorf("bootstrap %s: signing key alg %q, want %q", id, r.SigningKey.Alg, alg)
	}
	return org{ID: id, Alg: alg, KeyID: r.AdminKey.ID, Secret: r.AdminKey.Key,
		JWKSURI: r.JWKSURI, Issuer: r.Issuer, KeyKID: r.SigningKey.KID}, nil
}

// exchangeOnce trades o's admin secret for a JWT.
func exchangeOnce(ctx context.Context, c *http.Client, base string, o org) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/apikeys/"+o.KeyID+"/token", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("X-API-Key", o.Secret)
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var r struct {
		Token string `json:"token"`
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("exchange for %s: %s: %s", o.ID, resp.Status, bytes.TrimSpace(data))
	}
	if err := json.Unmarshal(data, &r); err != nil || r.Token == "" {
		return "", fmt.Errorf("exchange for %s: no token in %q", o.ID, data)
	}
	return r.Token, nil
}

// seedKeys writes n API keys of org straight into the bbolt file at path
// (the server must be stopped), in batches, with storage/bolt's
// ImportAPIKeys. The keys are well-formed active sk keys with random
// secrets whose hashes nobody can match: they exist to make the store big,
// not to be used.
func seedKeys(ctx context.Context, path, orgID string, n int, progress func(done int)) error {
	db, err := bolt.Open(path, &bolt.Options{UnsafeNoSync: true, Timeout: 5 * time.Second})
	if err != nil {
		return err
	}
	const batch = 10000
	now := time.Now().UTC().Truncate(time.Second)
	exp := now.Add(30 * 24 * time.Hour)
	ks := make([]keys.APIKey, 0, batch)
	for done := 0; done < n; {
		ks = ks[:0]
		for i := 0; i < batch && done+i < n; i++ {
			id := uuid.Must(uuid.NewV7())
			s, err := keys.NewSecret(keys.TypeSecret, id, nil)
			if err != nil {
				db.Close()
				return err
			}
			hash := make([]byte, 32)
			if _, err := rand.Read(hash); err != nil {
				db.Close()
				return err
			}
			ks = append(ks, keys.APIKey{
				ID: id.String(), Org: orgID, Name: fmt.Sprintf("seed %d", done+i),
				Type: keys.TypeSecret, Role: "viewer", Scopes: []string{}, AllowedCIDRs: []string{},
				ExpiresAt: &exp, Enabled: true, CreatedBy: "loadtest", UpdatedBy: "loadtest",
				CreatedAt: now, UpdatedAt: now, MaskedValue: s.Masked(), SecretHash: hash,
			})
		}
		if err := db.ImportAPIKeys(ctx, ks); err != nil {
			db.Close()
			return err
		}
		done += len(ks)
		if progress != nil {
			progress(done)
		}
	}
	return db.Close()
}
