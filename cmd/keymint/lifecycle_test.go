package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keymint/keymint/jwks"
	"github.com/keymint/keymint/keys"
)

// auditEvent is an audit log entry as GET /api/v1/audit renders it.
type auditEvent struct {
	ID       string            `json:"id"`
	Org      string            `json:"org"`
	Time     time.Time         `json:"time"`
	Actor    string            `json:"actor"`
	Action   string            `json:"action"`
	KeyID    string            `json:"key_id"`
	ClientIP string            `json:"client_ip"`
	Reason   string            `json:"reason"`
	Details  map[string]string `json:"details"`
}

func (e auditEvent) id() string { return e.ID }

// TestConcurrentCreateMaxKeys: 100 creates at once against max_keys 50
// (the bootstrap admin key being one) admit exactly 49.
func TestConcurrentCreateMaxKeys(t *testing.T) {
	m := MustRunMain(t, "")
	_, admin := bootstrapWith(t, m, "racer", map[string]any{"max_keys": 50})
	exp := inDays(time.Now(), 30)
	const n = 100
	var (
		wg      sync.WaitGroup
		replies [n]reply
		errs    [n]error
	)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			replies[i], errs[i] = httpTrySend("POST", m.URL()+"/api/v1/apikeys", bearerHdr(admin),
				map[string]any{"name": "racer", "role": "viewer", "expires_at": exp})
		})
	}
	close(start)
	wg.Wait()
	created, refused := 0, 0
	for i, r := range replies {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		switch r.status {
		case http.StatusCreated:
			created++
		case http.StatusConflict:
			refused++
			p := wantProblem(t, r, http.StatusConflict)
			if !strings.Contains(p.Type, "key-limit") || p.Detail == "" {
				t.Fatalf("409 problem %s, want the key-limit problem with a detail", r.body)
			}
		default:
			t.Fatalf("request %d: status=%d body=%s", i, r.status, r.body)
		}
	}
	if created != 49 || refused != 51 {
		t.Fatalf("created=%d refused=%d, want 49 and 51", created, refused)
	}
	r := callAs(t, admin, "GET", m.URL()+"/api/v1/apikeys?status=all&limit=200", nil)
	wantStatus(t, r, http.StatusOK)
	if got := len(decodeAs[[]keyBody](t, r)); got != 50 {
		t.Fatalf("status=all lists %d keys, want 50", got)
	}
	// The limit holds afterwards too; revoking one frees a place.
	wantProblem(t, callAs(t, admin, "POST", m.URL()+"/api/v1/apikeys", map[string]any{"name": "51st", "role": "viewer", "expires_at": exp}), http.StatusConflict)
	victim := decodeAs[[]keyBody](t, r)[1]
	wantStatus(t, callAs(t, admin, "POST", m.URL()+"/api/v1/apikeys/"+victim.ID+"/revoke", nil), http.StatusOK)
	mkKey(t, m, admin, map[string]any{"name": "after revoke", "role": "viewer"})
}

// TestImmediateRevocation: revoking, disabling or deleting a key makes
// keymint refuse the tokens already issued to it at once, and its secret
// fails the exchange exactly like a wrong one.
func TestImmediateRevocation(t *testing.T) {
	m := MustRunMain(t, "")
	_, admin := bootstrapWith(t, m, "revoker", nil)
	base := m.URL() + "/api/v1/apikeys/"

	// The 401 a wrong secret gets.
	ref := mkKey(t, m, admin, map[string]any{"name": "reference", "role": "viewer"})
	wrong, _ := keys.NewSecret(keys.TypeSecret, uuid.MustParse(ref.ID), nil)
	refused := tryExchange(t, m, ref.ID, wrong.String())
	wantUnauthorized(t, refused)

	for _, tt := range []struct {
		name    string
		act     func(t *testing.T, id string)
		restore func(t *testing.T, id string)
	}{
		{"Revoke", func(t *testing.T, id string) {
			wantStatus(t, callAs(t, admin, "POST", base+id+"/revoke", nil), http.StatusOK)
		}, nil},
		{"Disable", func(t *testing.T, id string) {
			wantStatus(t, callAs(t, admin, "PATCH", base+id, map[string]any{"enabled": false}), http.StatusOK)
		}, func(t *testing.T, id string) {
			wantStatus(t, callAs(t, admin, "PATCH", base+id, map[string]any{"enabled": true}), http.StatusOK)
		}},
		{"Delete", func(t *testing.T, id string) {
			wantStatus(t, callAs(t, admin, "DELETE", base+id, nil), http.StatusOK)
		}, nil},
		{"CompatDeactivate", func(t *testing.T, id string) {
			wantStatus(t, callAs(t, admin, "DELETE", m.URL()+"/auth/api_keys/deactivate/"+id, nil), http.StatusOK)
		}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			k := mkKey(t, m, admin, map[string]any{"name": tt.name, "role": "viewer"})
			tok := jwtFor(t, m, k.ID, k.Key)
			wantStatus(t, callAs(t, tok, "GET", base+k.ID, nil), http.StatusOK)
			wantStatus(t, callAs(t, k.Key, "GET", base+k.ID, nil), http.StatusOK)

			tt.act(t, k.ID)

			for _, u := range []string{base + k.ID, base + ref.ID, base[:len(base)-1], m.URL() + "/api/v1/audit"} {
				r := callAs(t, tok, "GET", u, nil)
				wantUnauthorized(t, r)
				if got := r.h.Get("WWW-Authenticate"); !strings.Contains(got, `error="invalid_token"`) {
					t.Fatalf("WWW-Authenticate=%q, want invalid_token", got)
				}
			}
			wantUnauthorized(t, callAs(t, k.Key, "GET", base+ref.ID, nil))
			r := tryExchange(t, m, k.ID, k.Key)
			wantUnauthorized(t, r)
			if string(r.body) != string(refused.body) {
				t.Fatalf("the exchange tells this key apart from a wrong secret:\n%s\n%s", r.body, refused.body)
			}
			if tt.restore == nil {
				return
			}
			tt.restore(t, k.ID)
			wantStatus(t, callAs(t, tok, "GET", base+k.ID, nil), http.StatusOK)
			wantStatus(t, tryExchange(t, m, k.ID, k.Key), http.StatusOK)
		})
	}
	// Other keys' tokens are untouched.
	refTok := jwtFor(t, m, ref.ID, ref.Key)
	wantStatus(t, callAs(t, refTok, "GET", base+ref.ID, nil), http.StatusOK)
}

// TestRevocationSurvivesRestart: the deny list is rebuilt from storage, so
// tokens of keys revoked, disabled or deleted before a restart stay
// refused after it.
func TestRevocationSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	// A fixed public URL keeps the issuer the same across restarts, so
	// only revocation can explain a refusal.
	configure := func(m *Main) { m.Config.DataDir, m.Config.PublicURL = dir, "http://keymint.test" }
	m := startMain(t, configure)
	_, admin := bootstrapWith(t, m, "durable", nil)
	base := m.URL() + "/api/v1/apikeys/"
	kept := mkKey(t, m, admin, map[string]any{"name": "kept", "role": "viewer"})
	keptTok := jwtFor(t, m, kept.ID, kept.Key)
	refused := map[string]string{}
	for _, act := range []string{"revoke", "disable", "delete"} {
		k := mkKey(t, m, admin, map[string]any{"name": act, "role": "viewer"})
		refused[act] = jwtFor(t, m, k.ID, k.Key)
		switch act {
		case "revoke":
			wantStatus(t, callAs(t, admin, "POST", base+k.ID+"/revoke", nil), http.StatusOK)
		case "disable":
			wantStatus(t, callAs(t, admin, "PATCH", base+k.ID, map[string]any{"enabled": false}), http.StatusOK)
		case "delete":
			wantStatus(t, callAs(t, admin, "DELETE", base+k.ID, nil), http.StatusOK)
		}
		wantUnauthorized(t, callAs(t, refused[act], "GET", base+kept.ID, nil))
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	m2 := startMain(t, configure)
	base = m2.URL() + "/api/v1/apikeys/"
	wantStatus(t, callAs(t, keptTok, "GET", base+kept.ID, nil), http.StatusOK)
	for act, tok := range refused {
		t.Run(act, func(t *testing.T) {
			wantUnauthorized(t, callAs(t, tok, "GET", base+kept.ID, nil))
		})
	}
}

// TestRoll: a rolled key's old secret works for the grace period and not
// after, on an injected clock.
func TestRoll(t *testing.T) {
	clock := newFakeClock(time.Now())
	m := startMain(t, func(m *Main) { m.Now = clock.Now })
	_, admin := bootstrapWith(t, m, "roller", nil)
	base := m.URL() + "/api/v1/apikeys/"
	roll := func(t *testing.T, id string, body any) keyBody {
		t.Helper()
		r := callAs(t, admin, "POST", base+id+"/roll", body)
		wantStatus(t, r, http.StatusOK)
		if r.h.Get("Cache-Control") != "no-store" || r.h.Get("Pragma") != "no-cache" {
			t.Fatalf("the roll response carries a secret but Cache-Control=%q Pragma=%q", r.h.Get("Cache-Control"), r.h.Get("Pragma"))
		}
		return decodeAs[keyBody](t, r)
	}

	t.Run("DefaultGrace", func(t *testing.T) {
		k := mkKey(t, m, admin, map[string]any{"name": "rolled", "role": "viewer"})
		n := roll(t, k.ID, nil)
		if n.ID != k.ID || !strings.HasPrefix(n.Key, "km_sk_") || n.Key == k.Key {
			t.Fatalf("roll: id=%s (was %s), new secret differs=%v", n.ID, k.ID, n.Key != k.Key)
		}
		if n.MaskedValue != keys.MaskSecret(n.Key) || n.MaskedValue == k.MaskedValue {
			t.Fatalf("roll maskedValue=%q, want %q", n.MaskedValue, keys.MaskSecret(n.Key))
		}
		r := callAs(t, admin, "GET", base+k.ID, nil)
		if g := decodeAs[keyBody](t, r); g.MaskedValue != n.MaskedValue || g.Key != "" || strings.Contains(r.String(), n.Key) {
			t.Fatalf("GET after roll: %s, want maskedValue %q and no secret", r.body, n.MaskedValue)
		}
		wantStatus(t, tryExchange(t, m, k.ID, k.Key), http.StatusOK)
		wantStatus(t, tryExchange(t, m, k.ID, n.Key), http.StatusOK)
		clock.Advance(86400*time.Second - time.Second)
		wantStatus(t, tryExchange(t, m, k.ID, k.Key), http.StatusOK)
		clock.Advance(2 * time.Second) // 86401 s after the roll
		wantUnauthorized(t, tryExchange(t, m, k.ID, k.Key))
		wantUnauthorized(t, callAs(t, k.Key, "GET", base+k.ID, nil))
		wantStatus(t, tryExchange(t, m, k.ID, n.Key), http.StatusOK)
	})
	t.Run("ZeroGrace", func(t *testing.T) {
		k := mkKey(t, m, admin, map[string]any{"name": "rolled now", "role": "viewer"})
		n := roll(t, k.ID, map[string]any{"grace_seconds": 0})
		wantUnauthorized(t, tryExchange(t, m, k.ID, k.Key))
		wantStatus(t, tryExchange(t, m, k.ID, n.Key), http.StatusOK)
	})
	t.Run("CustomGrace", func(t *testing.T) {
		k := mkKey(t, m, admin, map[string]any{"name": "rolled for a minute", "role": "viewer"})
		n := roll(t, k.ID, map[string]any{"grace_seconds": 60})
		wantStatus(t, tryExchange(t, m, k.ID, k.Key), http.StatusOK)
		clock.Advance(61 * time.Second)
		wantUnauthorized(t, tryExchange(t, m, k.ID, k.Key))
		wantStatus(t, tryExchange(t, m, k.ID, n.Key), http.StatusOK)
	})
	t.Run("RollTwice", func(t *testing.T) {
		a := mkKey(t, m, admin, map[string]any{"name": "rolled twice", "role": "viewer"})
		b := roll(t, a.ID, nil)
		c := roll(t, a.ID, nil)
		// Only the secret just replaced keeps its grace.
		wantUnauthorized(t, tryExchange(t, m, a.ID, a.Key))
		wantStatus(t, tryExchange(t, m, a.ID, b.Key), http.StatusOK)
		wantStatus(t, tryExchange(t, m, a.ID, c.Key), http.StatusOK)
	})
	t.Run("Revoked", func(t *testing.T) {
		k := mkKey(t, m, admin, map[string]any{"name": "revoked", "role": "viewer"})
		wantStatus(t, callAs(t, admin, "POST", base+k.ID+"/revoke", nil), http.StatusOK)
		r := callAs(t, admin, "POST", base+k.ID+"/roll", map[string]any{"grace_seconds": 0})
		wantProblem(t, r, http.StatusConflict)
		if strings.Contains(r.String(), "km_sk_") {
			t.Fatalf("a refused roll shows a secret: %s", r.body)
		}
		wantProblem(t, callAs(t, admin, "POST", base+k.ID+"/roll", nil), http.StatusConflict)
		wantProblem(t, callAs(t, admin, "PATCH", base+k.ID, map[string]any{"name": "again"}), http.StatusConflict)
		wantProblem(t, callAs(t, admin, "PATCH", base+k.ID, map[string]any{"enabled": true}), http.StatusConflict)
		wantProblem(t, callAs(t, admin, "PUT", base+k.ID, map[string]any{"name": "again", "role": "viewer", "expires_at": inDays(clock.Now(), 10)}), http.StatusConflict)
		g := getKeyAs(t, m, admin, k.ID)
		if g.Status != "revoked" || g.Name != "revoked" || g.MaskedValue != k.MaskedValue {
			t.Fatalf("a revoked key changed: %+v", g)
		}
		// Revoking again is harmless, for retrying automation.
		wantStatus(t, callAs(t, admin, "POST", base+k.ID+"/revoke", nil), http.StatusOK)
		wantUnauthorized(t, tryExchange(t, m, k.ID, k.Key))
	})
	t.Run("NegativeGrace", func(t *testing.T) {
		k := mkKey(t, m, admin, map[string]any{"name": "not rolled", "role": "viewer"})
		wantProblem(t, callAs(t, admin, "POST", base+k.ID+"/roll", map[string]any{"grace_seconds": -1}), http.StatusBadRequest, "grace_seconds")
		wantStatus(t, tryExchange(t, m, k.ID, k.Key), http.StatusOK)
		if g := getKeyAs(t, m, admin, k.ID); g.MaskedValue != k.MaskedValue {
			t.Fatal("a refused roll changed the secret")
		}
	})
}

// TestCustomClaims: a key's claims are in every token minted for it.
func TestCustomClaims(t *testing.T) {
	m := MustRunMain(t, "")
	adminID, admin := bootstrapWith(t, m, "claimer", nil)
	iss := m.URL() + "/orgs/claimer"
	v, err := jwks.NewVerifier(jwks.WithIssuer(iss))
	if err != nil {
		t.Fatal(err)
	}
	k := mkKey(t, m, admin, map[string]any{"name": "claimed", "role": "developer", "claims": map[string]any{"team": "platform", "tier": 3}})
	if k.Claims["team"] != "platform" || k.Claims["tier"] != float64(3) {
		t.Fatalf("create response claims=%v", k.Claims)
	}
	if g := getKeyAs(t, m, admin, k.ID); g.Claims["team"] != "platform" || g.Claims["tier"] != float64(3) {
		t.Fatalf("GET claims=%v", g.Claims)
	}
	check := func(t *testing.T, token string) {
		t.Helper()
		c, err := v.Verify(context.Background(), token)
		if err != nil {
			t.Fatalf("verify: %v", err)
		}
		if c.Custom["team"] != "platform" || c.Custom["tier"] != float64(3) || len(c.Custom) != 2 {
			t.Fatalf("custom claims=%v, want exactly team=platform tier=3", c.Custom)
		}
		if c.Subject != k.ID || c.Org != "claimer" {
			t.Fatalf("claims %+v", c)
		}
	}
	secret := k.Key
	t.Run("PostExchange", func(t *testing.T) { check(t, exchange(t, m, "POST", k.ID, secret, nil).Token) })
	t.Run("GetExchange", func(t *testing.T) { check(t, exchange(t, m, "GET", k.ID, secret, nil).Token) })
	t.Run("NarrowedExchange", func(t *testing.T) {
		check(t, exchange(t, m, "POST", k.ID, secret, map[string]any{"scope": "devices:read", "ttl": 60}).Token)
	})
	t.Run("OAuth2", func(t *testing.T) {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {k.ID}, "client_secret": {secret}}
		r := httpSend(t, "POST", m.URL()+"/oauth2/token", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, form.Encode())
		wantStatus(t, r, http.StatusOK)
		var out struct {
			AccessToken string `json:"access_token"`
		}
		if err := json.Unmarshal(r.body, &out); err != nil {
			t.Fatal(err)
		}
		check(t, out.AccessToken)
	})
	t.Run("AfterUpdateAndRoll", func(t *testing.T) {
		wantStatus(t, callAs(t, admin, "PATCH", m.URL()+"/api/v1/apikeys/"+k.ID, map[string]any{"name": "renamed", "scopes": []string{"devices:admin"}}), http.StatusOK)
		r := callAs(t, admin, "POST", m.URL()+"/api/v1/apikeys/"+k.ID+"/roll", map[string]any{"grace_seconds": 0})
		wantStatus(t, r, http.StatusOK)
		secret = decodeAs[keyBody](t, r).Key
		check(t, exchange(t, m, "POST", k.ID, secret, nil).Token)
	})
	t.Run("KeyWithoutClaims", func(t *testing.T) {
		c, err := v.Verify(context.Background(), jwtFor(t, m, adminID, admin))
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Custom) != 0 {
			t.Fatalf("a key without claims got custom claims %v", c.Custom)
		}
	})
}

// orgBody is an org as the API renders it.
type orgBody struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Policy struct {
		MaxKeys        int    `json:"max_keys"`
		MaxKeyLifetime string `json:"max_key_lifetime"`
		RequireExpiry  bool   `json:"require_expiry"`
	} `json:"policy"`
}

// TestOrgPolicy: the operator sets limits; an org admin may tighten them,
// not raise them past what the operator set.
func TestOrgPolicy(t *testing.T) {
	m := MustRunMain(t, "")
	_, admin := bootstrapWith(t, m, "governed", nil)
	_, otherAdmin := bootstrapWith(t, m, "elsewhere", nil)
	viewer := mkKey(t, m, admin, map[string]any{"name": "viewer", "role": "viewer"})
	root := m.RootKey()
	u := m.URL() + "/api/v1/orgs/governed"
	patch := func(t *testing.T, cred string, policy map[string]any) reply {
		t.Helper()
		return callAs(t, cred, "PATCH", u, map[string]any{"policy": policy})
	}
	get := func(t *testing.T) orgBody {
		t.Helper()
		r := callAs(t, root, "GET", u, nil)
		wantStatus(t, r, http.StatusOK)
		return decodeAs[orgBody](t, r)
	}
	wantPolicy := func(t *testing.T, maxKeys int, lifetime time.Duration) {
		t.Helper()
		o := get(t)
		if o.Policy.MaxKeys != maxKeys || o.Policy.MaxKeyLifetime != lifetime.String() {
			t.Fatalf("policy max_keys=%d max_key_lifetime=%s, want %d and %s", o.Policy.MaxKeys, o.Policy.MaxKeyLifetime, maxKeys, lifetime)
		}
	}
	day := 24 * time.Hour
	if o := get(t); o.Policy.MaxKeys != 50 || o.Policy.MaxKeyLifetime != (365*day).String() || !o.Policy.RequireExpiry {
		t.Fatalf("default policy %+v", o.Policy)
	}

	t.Run("RootSets", func(t *testing.T) {
		r := patch(t, root, map[string]any{"max_keys": 20, "max_key_lifetime": "180d"})
		wantStatus(t, r, http.StatusOK)
		if o := decodeAs[orgBody](t, r); o.Policy.MaxKeys != 20 {
			t.Fatalf("PATCH response %s", r.body)
		}
		wantPolicy(t, 20, 180*day)
	})
	t.Run("AdminLowers", func(t *testing.T) {
		wantStatus(t, patch(t, admin, map[string]any{"max_keys": 10}), http.StatusOK)
		wantPolicy(t, 10, 180*day)
		wantStatus(t, patch(t, admin, map[string]any{"max_key_lifetime": "90d"}), http.StatusOK)
		wantPolicy(t, 10, 90*day)
	})
	t.Run("AdminCannotRaisePastRoot", func(t *testing.T) {
		wantProblem(t, patch(t, admin, map[string]any{"max_keys": 21}), http.StatusBadRequest, "policy.max_keys")
		wantProblem(t, patch(t, admin, map[string]any{"max_key_lifetime": "181d"}), http.StatusBadRequest, "policy.max_key_lifetime")
		wantProblem(t, patch(t, admin, map[string]any{"max_keys": 1000, "max_key_lifetime": "3650d"}), http.StatusBadRequest, "policy.max_keys", "policy.max_key_lifetime")
		wantPolicy(t, 10, 90*day)
	})
	t.Run("AdminRaisesUpToRoot", func(t *testing.T) {
		wantStatus(t, patch(t, admin, map[string]any{"max_keys": 20, "max_key_lifetime": "180d"}), http.StatusOK)
		wantPolicy(t, 20, 180*day)
	})
	t.Run("AdminCannotDropRequireExpiry", func(t *testing.T) {
		wantProblem(t, patch(t, admin, map[string]any{"require_expiry": false}), http.StatusBadRequest, "policy.require_expiry")
	})
	t.Run("ViewerForbidden", func(t *testing.T) {
		wantProblem(t, patch(t, viewer.Key, map[string]any{"max_keys": 5}), http.StatusForbidden)
		wantStatus(t, callAs(t, viewer.Key, "GET", u, nil), http.StatusOK)
		wantPolicy(t, 20, 180*day)
	})
	t.Run("OtherOrgNotFound", func(t *testing.T) {
		wantProblem(t, patch(t, otherAdmin, map[string]any{"max_keys": 5}), http.StatusNotFound)
		wantProblem(t, callAs(t, otherAdmin, "GET", u, nil), http.StatusNotFound)
		wantPolicy(t, 20, 180*day)
	})
	t.Run("RootRaises", func(t *testing.T) {
		wantStatus(t, patch(t, root, map[string]any{"max_keys": 100, "max_key_lifetime": "400d"}), http.StatusOK)
		wantPolicy(t, 100, 400*day)
		// The new ceiling is the admin's new limit.
		wantStatus(t, patch(t, admin, map[string]any{"max_keys": 60}), http.StatusOK)
		wantProblem(t, patch(t, admin, map[string]any{"max_keys": 101}), http.StatusBadRequest, "policy.max_keys")
	})
	t.Run("PolicyApplies", func(t *testing.T) {
		// Two live keys (the admin and the viewer): a max_keys of 2 is full.
		wantStatus(t, patch(t, admin, map[string]any{"max_keys": 2, "max_key_lifetime": "90d"}), http.StatusOK)
		exp := inDays(time.Now(), 30)
		wantProblem(t, callAs(t, admin, "POST", m.URL()+"/api/v1/apikeys", map[string]any{"name": "third", "role": "viewer", "expires_at": exp}), http.StatusConflict)
		wantStatus(t, patch(t, admin, map[string]any{"max_keys": 3}), http.StatusOK)
		wantProblem(t, callAs(t, admin, "POST", m.URL()+"/api/v1/apikeys", map[string]any{"name": "third", "role": "viewer", "expires_at": inDays(time.Now(), 91)}), http.StatusBadRequest, "expires_at")
		mkKey(t, m, admin, map[string]any{"name": "third", "role": "viewer", "expires_at": exp})
	})
}

// TestExpiresSoon: expires_soon is true within the org's expiry_warning
// (14 days) of the key's expiry.
func TestExpiresSoon(t *testing.T) {
	clock := newFakeClock(time.Now())
	m := startMain(t, func(m *Main) { m.Now = clock.Now })
	adminID, admin := bootstrapWith(t, m, "warner", nil)
	soon := mkKey(t, m, admin, map[string]any{"name": "soon", "role": "viewer", "expires_at": inDays(clock.Now(), 13)})
	later := mkKey(t, m, admin, map[string]any{"name": "later", "role": "viewer", "expires_at": inDays(clock.Now(), 15)})
	if !soon.ExpiresSoon || later.ExpiresSoon {
		t.Fatalf("create: soon.expires_soon=%v later.expires_soon=%v, want true and false", soon.ExpiresSoon, later.ExpiresSoon)
	}
	check := func(t *testing.T, want map[string]bool) {
		t.Helper()
		for id, w := range want {
			if got := getKeyAs(t, m, admin, id).ExpiresSoon; got != w {
				t.Fatalf("GET %s expires_soon=%v, want %v", id, got, w)
			}
		}
		r := callAs(t, admin, "GET", m.URL()+"/api/v1/apikeys", nil)
		wantStatus(t, r, http.StatusOK)
		for _, k := range decodeAs[[]keyBody](t, r) {
			if w, ok := want[k.ID]; ok && k.ExpiresSoon != w {
				t.Fatalf("list %s expires_soon=%v, want %v", k.Name, k.ExpiresSoon, w)
			}
		}
	}
	check(t, map[string]bool{soon.ID: true, later.ID: false, adminID: false})
	clock.Advance(36 * time.Hour) // later now has 13.5 days left
	check(t, map[string]bool{soon.ID: true, later.ID: true, adminID: false})
	clock.Advance(12 * 24 * time.Hour) // soon has expired: no longer "soon"
	if g := getKeyAs(t, m, admin, soon.ID); g.Status != "expired" || g.ExpiresSoon {
		t.Fatalf("expired key status=%q expires_soon=%v", g.Status, g.ExpiresSoon)
	}
}

// TestAllowedCIDRs: the exchange honours a key's allowed_cidrs against
// the client address (here always 127.0.0.1).
func TestAllowedCIDRs(t *testing.T) {
	m := MustRunMain(t, "")
	_, admin := bootstrapWith(t, m, "fenced", nil)
	for _, tt := range []struct {
		name     string
		cidrs    []string
		want     int
		warnings bool
	}{
		{"OtherNetwork", []string{"10.0.0.0/8"}, http.StatusForbidden, false},
		{"LoopbackHost", []string{"127.0.0.1/32"}, http.StatusOK, false},
		{"BareAddress", []string{"127.0.0.1"}, http.StatusOK, false},
		{"IPv6Only", []string{"::1/128"}, http.StatusForbidden, false},
		{"Mixed", []string{"10.0.0.0/8", "::1/128", "127.0.0.0/8"}, http.StatusOK, false},
		{"WildcardIPv4", []string{"0.0.0.0/0"}, http.StatusOK, true},
		{"WildcardIPv6", []string{"::/0"}, http.StatusForbidden, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			k := mkKey(t, m, admin, map[string]any{"name": tt.name, "role": "viewer", "allowed_cidrs": tt.cidrs})
			if got := len(k.Warnings) > 0; got != tt.warnings {
				t.Fatalf("warnings=%v, want some: %v", k.Warnings, tt.warnings)
			}
			r := tryExchange(t, m, k.ID, k.Key)
			if tt.want == http.StatusOK {
				wantStatus(t, r, http.StatusOK)
				return
			}
			wantProblem(t, r, tt.want)
			if strings.Contains(r.String(), k.Key) {
				t.Fatal("the 403 echoes the secret")
			}
			// The secret used directly is refused from there too.
			wantProblem(t, callAs(t, k.Key, "GET", m.URL()+"/api/v1/apikeys/"+k.ID, nil), http.StatusForbidden)
		})
	}
}

// TestAllowedCIDRs_ForwardedFor: X-Forwarded-For counts only from a
// trusted proxy.
func TestAllowedCIDRs_ForwardedFor(t *testing.T) {
	xff := func(v string) map[string]string { return map[string]string{"X-Forwarded-For": v} }
	exchangeVia := func(t *testing.T, m *Main, k keyBody, hdr map[string]string) reply {
		t.Helper()
		h := bearerHdr(k.Key)
		for name, v := range hdr {
			h[name] = v
		}
		return httpSend(t, "POST", m.URL()+"/api/v1/apikeys/"+k.ID+"/token", h, nil)
	}
	t.Run("Untrusted", func(t *testing.T) {
		m := MustRunMain(t, "")
		_, admin := bootstrapWith(t, m, "direct", nil)
		k := mkKey(t, m, admin, map[string]any{"name": "remote", "role": "viewer", "allowed_cidrs": []string{"203.0.113.7/32"}})
		wantProblem(t, exchangeVia(t, m, k, xff("203.0.113.7")), http.StatusForbidden)
		wantProblem(t, exchangeVia(t, m, k, map[string]string{"X-Real-IP": "203.0.113.7"}), http.StatusForbidden)
		local := mkKey(t, m, admin, map[string]any{"name": "local", "role": "viewer", "allowed_cidrs": []string{"127.0.0.1/32"}})
		wantStatus(t, exchangeVia(t, m, local, xff("203.0.113.7")), http.StatusOK)
	})
	t.Run("TrustedProxy", func(t *testing.T) {
		m := startMain(t, func(m *Main) {
			m.Config.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		})
		_, admin := bootstrapWith(t, m, "proxied", nil)
		k := mkKey(t, m, admin, map[string]any{"name": "remote", "role": "viewer", "allowed_cidrs": []string{"203.0.113.7/32"}})
		wantStatus(t, exchangeVia(t, m, k, xff("203.0.113.7")), http.StatusOK)
		wantStatus(t, exchangeVia(t, m, k, xff("198.51.100.1, 203.0.113.7")), http.StatusOK)
		// The proxy's own address is not the client's.
		wantProblem(t, exchangeVia(t, m, k, nil), http.StatusForbidden)
		// A client cannot spoof past the proxy: the address the proxy saw
		// is the last one it appended.
		wantProblem(t, exchangeVia(t, m, k, xff("203.0.113.7, 198.51.100.9")), http.StatusForbidden)
		local := mkKey(t, m, admin, map[string]any{"name": "local", "role": "viewer", "allowed_cidrs": []string{"127.0.0.1/32"}})
		wantProblem(t, exchangeVia(t, m, local, xff("203.0.113.7")), http.StatusForbidden)

		// The audit log records the forwarded client address.
		r := callAs(t, admin, "GET", m.URL()+"/api/v1/audit?action=exchange.failure&limit=1", nil)
		wantStatus(t, r, http.StatusOK)
		evs := decodeAs[[]auditEvent](t, r)
		if len(evs) != 1 || evs[0].ClientIP != "203.0.113.7" || evs[0].Reason != "address_not_allowed" {
			t.Fatalf("audit %s, want the failure from 203.0.113.7", r.body)
		}
	})
}

// TestAudit: the audit log holds every management action and failed
// exchange, newest first, with who, where and when, and never a secret or
// token.
func TestAudit(t *testing.T) {
	m := MustRunMain(t, "")
	start := time.Now().Add(-time.Second)
	adminID, admin := bootstrapWith(t, m, "audited", nil)
	adminJWT := jwtFor(t, m, adminID, admin)
	base := m.URL() + "/api/v1/apikeys/"

	k := mkKey(t, m, admin, map[string]any{"name": "audited key", "role": "viewer"})
	wantStatus(t, callAs(t, adminJWT, "PATCH", base+k.ID, map[string]any{"name": "renamed"}), http.StatusOK)
	wantStatus(t, callAs(t, admin, "PATCH", base+k.ID, map[string]any{"enabled": false}), http.StatusOK)
	wantStatus(t, httpSend(t, "PATCH", base+k.ID, apiKeyHdr(admin), map[string]any{"enabled": true}), http.StatusOK)
	r := callAs(t, admin, "POST", base+k.ID+"/roll", nil)
	wantStatus(t, r, http.StatusOK)
	rolled := decodeAs[keyBody](t, r).Key
	kTok := jwtFor(t, m, k.ID, rolled)
	wantStatus(t, callAs(t, admin, "POST", base+k.ID+"/revoke", nil), http.StatusOK)
	wantStatus(t, callAs(t, adminJWT, "DELETE", base+k.ID, nil), http.StatusOK)
	wrong, _ := keys.NewSecret(keys.TypeSecret, uuid.MustParse(adminID), nil)
	wantUnauthorized(t, tryExchange(t, m, adminID, wrong.String()))
	end := time.Now().Add(time.Second)

	// Everything of the session that must never show.
	hidden := []string{admin, k.Key, rolled, wrong.String(), adminJWT, kTok}

	var bodies []reply
	list := func(t *testing.T, query string) []auditEvent {
		t.Helper()
		r := callAs(t, adminJWT, "GET", m.URL()+"/api/v1/audit?"+query, nil)
		wantStatus(t, r, http.StatusOK)
		bodies = append(bodies, r)
		return decodeAs[[]auditEvent](t, r)
	}

	want := []struct{ action, actor, keyID, reason string }{
		{"exchange.failure", "anonymous", adminID, "bad_secret"},
		{"key.delete", adminID, k.ID, ""},
		{"key.revoke", adminID, k.ID, ""},
		{"key.roll", adminID, k.ID, ""},
		{"key.enable", adminID, k.ID, ""},
		{"key.disable", adminID, k.ID, ""},
		{"key.update", adminID, k.ID, ""},
		{"key.create", adminID, k.ID, ""},
		{"org.bootstrap", "root", adminID, ""},
	}
	all := list(t, "")
	t.Run("Events", func(t *testing.T) {
		if len(all) != len(want) {
			t.Fatalf("%d events, want %d: %+v", len(all), len(want), all)
		}
		for i, w := range want {
			e := all[i]
			if e.Action != w.action || e.Actor != w.actor || e.KeyID != w.keyID || e.Reason != w.reason {
				t.Fatalf("event %d: action=%q actor=%q key_id=%q reason=%q, want %+v", i, e.Action, e.Actor, e.KeyID, e.Reason, w)
			}
			if e.Org != "audited" || e.ClientIP != "127.0.0.1" {
				t.Fatalf("event %d (%s): org=%q client_ip=%q", i, e.Action, e.Org, e.ClientIP)
			}
			if e.Time.Before(start) || e.Time.After(end) {
				t.Fatalf("event %d (%s): time %v outside [%v, %v]", i, e.Action, e.Time, start, end)
			}
			if i > 0 && e.Time.After(all[i-1].Time) {
				t.Fatalf("event %d is newer than event %d: not newest first", i, i-1)
			}
			if _, err := uuid.Parse(e.ID); err != nil {
				t.Fatalf("event id %q: %v", e.ID, err)
			}
		}
		if got := all[6].Details["name"]; got != "renamed" {
			t.Fatalf("key.update details=%v, want name=renamed", all[6].Details)
		}
		if got := all[3].Details["grace_seconds"]; got != "86400" {
			t.Fatalf("key.roll details=%v, want grace_seconds=86400", all[3].Details)
		}
	})
	t.Run("FilterKeyID", func(t *testing.T) {
		got := list(t, "key_id="+k.ID)
		var actions []string
		for _, e := range got {
			actions = append(actions, e.Action)
		}
		if !slices.Equal(actions, []string{"key.delete", "key.revoke", "key.roll", "key.enable", "key.disable", "key.update", "key.create"}) {
			t.Fatalf("key_id filter gives %v", actions)
		}
	})
	t.Run("FilterAction", func(t *testing.T) {
		for _, tt := range []struct {
			action string
			want   []string
		}{
			{"key.roll", []string{all[3].ID}},
			{"exchange.failure", []string{all[0].ID}},
			{"org.bootstrap", []string{all[8].ID}},
			{"signing_key.rotate", nil},
		} {
			if got := idsOf(list(t, "action="+tt.action)); !slices.Equal(got, tt.want) {
				t.Fatalf("action=%s gives %v, want %v", tt.action, got, tt.want)
			}
		}
		if got := idsOf(list(t, "action=key.update&key_id="+k.ID)); !slices.Equal(got, []string{all[6].ID}) {
			t.Fatalf("action and key_id together give %v", got)
		}
	})
	t.Run("Paging", func(t *testing.T) {
		var got []string
		var sizes []int
		for u := m.URL() + "/api/v1/audit?limit=4"; u != ""; {
			r := callAs(t, admin, "GET", u, nil)
			wantStatus(t, r, http.StatusOK)
			bodies = append(bodies, r)
			evs := decodeAs[[]auditEvent](t, r)
			sizes = append(sizes, len(evs))
			got = append(got, idsOf(evs)...)
			u = nextLink(t, m, r)
			if len(sizes) > 5 {
				t.Fatal("paging does not end")
			}
		}
		if !slices.Equal(sizes, []int{4, 4, 1}) || !slices.Equal(got, idsOf(all)) {
			t.Fatalf("pages %v gave %v, want [4 4 1] giving %v", sizes, got, idsOf(all))
		}
		// Paging keeps the filter.
		r := callAs(t, admin, "GET", m.URL()+"/api/v1/audit?limit=2&key_id="+k.ID, nil)
		next := nextLink(t, m, r)
		if !strings.Contains(next, "key_id="+k.ID) {
			t.Fatalf("next link %q drops key_id", next)
		}
		r2 := callAs(t, admin, "GET", next, nil)
		if got := decodeAs[[]auditEvent](t, r2); len(got) != 2 || got[0].Action != "key.roll" {
			t.Fatalf("second filtered page %s", r2.body)
		}
	})
	t.Run("OtherOrg", func(t *testing.T) {
		_, other := bootstrapWith(t, m, "bystander", nil)
		r := callAs(t, other, "GET", m.URL()+"/api/v1/audit?limit=200", nil)
		wantStatus(t, r, http.StatusOK)
		if strings.Contains(r.String(), k.ID) || strings.Contains(r.String(), `"audited"`) {
			t.Fatalf("another org sees this org's audit: %s", r.body)
		}
		r = callAs(t, other, "GET", m.URL()+"/api/v1/audit?key_id="+k.ID, nil)
		if evs := decodeAs[[]auditEvent](t, r); len(evs) != 0 {
			t.Fatalf("another org filters into this org's audit: %s", r.body)
		}
	})
	t.Run("NoSecrets", func(t *testing.T) {
		for _, r := range bodies {
			for _, h := range hidden {
				if strings.Contains(r.String(), h) {
					t.Fatalf("a secret or token appears in the audit log: %s", r.body)
				}
			}
			if strings.Contains(r.String(), "km_sk_") || strings.Contains(r.String(), "eyJ") {
				t.Fatalf("something secret-shaped appears in the audit log: %s", r.body)
			}
		}
	})
}
