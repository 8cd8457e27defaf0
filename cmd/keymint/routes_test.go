package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keymint/keymint/keys"
)

// routeFixture is one server with two orgs: alpha, whose keys the routes
// act on, and beta, whose admin plays the other tenant.
type routeFixture struct {
	m          *Main
	adminID    string
	admin      string // alpha's bootstrap admin secret (role admin)
	adminJWT   string
	viewer     keyBody // role viewer: *:read
	devRead    keyBody // only devices:read
	developer  keyBody // role developer: *:read *:write
	otherAdmin string  // beta's admin secret
}

func newRouteFixture(t *testing.T) *routeFixture {
	t.Helper()
	f := &routeFixture{m: MustRunMain(t, "")}
	f.adminID, f.admin = bootstrapWith(t, f.m, "alpha", map[string]any{"max_keys": 1000})
	_, f.otherAdmin = bootstrapWith(t, f.m, "beta", nil)
	f.adminJWT = jwtFor(t, f.m, f.adminID, f.admin)
	f.viewer = mkKey(t, f.m, f.admin, map[string]any{"name": "viewer", "role": "viewer"})
	f.devRead = mkKey(t, f.m, f.admin, map[string]any{"name": "devices reader", "scopes": []string{"devices:read"}})
	f.developer = mkKey(t, f.m, f.admin, map[string]any{"name": "developer", "role": "developer"})
	return f
}

// target is a fresh viewer key of alpha for a route to act on.
func (f *routeFixture) target(t *testing.T) keyBody {
	t.Helper()
	return mkKey(t, f.m, f.admin, map[string]any{"name": "target", "role": "viewer"})
}

// state is what a user can see of alpha: every key's visible fields and
// the org. A refused request must leave it as it was.
func (f *routeFixture) state(t *testing.T) string {
	t.Helper()
	r := callAs(t, f.admin, "GET", f.m.URL()+"/api/v1/apikeys?status=all&limit=200", nil)
	wantStatus(t, r, http.StatusOK)
	var b strings.Builder
	for _, k := range decodeAs[[]keyBody](t, r) {
		fmt.Fprintf(&b, "%s|%s|%s|%s|%v|%v|%s|%s\n", k.ID, k.Name, k.Status, k.Role, k.Scopes, k.Enabled, k.MaskedValue, k.UpdatedAt)
	}
	org := callAs(t, f.m.RootKey(), "GET", f.m.URL()+"/api/v1/orgs/alpha", nil)
	wantStatus(t, org, http.StatusOK)
	b.Write(org.body)
	return b.String()
}

// mgmtRoute is one management route and a request that succeeds on it.
type mgmtRoute struct {
	method, path string // {id} is a key of alpha, {org} is alpha
	body         func() any
	ok           int
	perm         string // the permission it needs
	check        func(t *testing.T, f *routeFixture, target keyBody, r reply)
}

func (rt mgmtRoute) name() string {
	return rt.method + " " + strings.NewReplacer("{", "", "}", "").Replace(rt.path)
}

func (rt mgmtRoute) url(f *routeFixture, target string) string {
	return f.m.URL() + strings.NewReplacer("{id}", target, "{org}", "alpha").Replace(rt.path)
}

func (rt mgmtRoute) onObject() bool {
	return strings.Contains(rt.path, "{id}") || strings.Contains(rt.path, "{org}")
}

func (rt mgmtRoute) reqBody() any {
	if rt.body == nil {
		return nil
	}
	return rt.body()
}

// lacking is a credential of alpha without rt's permission.
func (rt mgmtRoute) lacking(f *routeFixture) (string, string) {
	switch rt.perm {
	case "api_keys:write", "org:admin":
		return "viewer", f.viewer.Key
	}
	return "devices:read only", f.devRead.Key
}

func mgmtRoutes() []mgmtRoute {
	exp := func() string { return inDays(time.Now(), 30) }
	return []mgmtRoute{
		{method: "GET", path: "/api/v1/apikeys", ok: 200, perm: "api_keys:read",
			check: func(t *testing.T, f *routeFixture, _ keyBody, r reply) {
				if ks := decodeAs[[]keyBody](t, r); !slices.Contains(idsOf(ks), f.adminID) {
					t.Fatalf("list lacks the admin key: %s", r.body)
				}
			}},
		{method: "POST", path: "/api/v1/apikeys", ok: 201, perm: "api_keys:write",
			body: func() any { return map[string]any{"name": "created", "role": "viewer", "expires_at": exp()} },
			check: func(t *testing.T, f *routeFixture, _ keyBody, r reply) {
				k := decodeAs[keyBody](t, r)
				if !strings.HasPrefix(k.Key, "km_sk_") || k.Name != "created" || k.Org != "alpha" {
					t.Fatalf("created %s", r.body)
				}
				if got, want := r.h.Get("Location"), "/api/v1/apikeys/"+k.ID; got != want {
					t.Fatalf("Location=%q, want %q", got, want)
				}
				if r.h.Get("Cache-Control") != "no-store" {
					t.Fatalf("Cache-Control=%q, want no-store", r.h.Get("Cache-Control"))
				}
			}},
		{method: "GET", path: "/api/v1/apikeys/{id}", ok: 200, perm: "api_keys:read",
			check: func(t *testing.T, f *routeFixture, target keyBody, r reply) {
				if k := decodeAs[keyBody](t, r); k.ID != target.ID || k.Name != "target" {
					t.Fatalf("got %s", r.body)
				}
			}},
		{method: "PUT", path: "/api/v1/apikeys/{id}", ok: 200, perm: "api_keys:write",
			body: func() any { return map[string]any{"name": "replaced", "role": "viewer", "expires_at": exp()} },
			check: func(t *testing.T, f *routeFixture, target keyBody, r reply) {
				if k := getKeyAs(t, f.m, f.admin, target.ID); k.Name != "replaced" {
					t.Fatalf("after PUT name=%q", k.Name)
				}
			}},
		{method: "PATCH", path: "/api/v1/apikeys/{id}", ok: 200, perm: "api_keys:write",
			body: func() any { return map[string]any{"name": "patched"} },
			check: func(t *testing.T, f *routeFixture, target keyBody, r reply) {
				if k := getKeyAs(t, f.m, f.admin, target.ID); k.Name != "patched" {
					t.Fatalf("after PATCH name=%q", k.Name)
				}
			}},
		{method: "DELETE", path: "/api/v1/apikeys/{id}", ok: 200, perm: "api_keys:write",
			check: func(t *testing.T, f *routeFixture, target keyBody, r reply) {
				var got map[string]any
				if err := json.Unmarshal(r.body, &got); err != nil || got["acknowledged"] != true || got["deletedCount"] != float64(1) {
					t.Fatalf("delete body %s, want acknowledged true and deletedCount 1", r.body)
				}
				wantProblem(t, callAs(t, f.admin, "GET", f.m.URL()+"/api/v1/apikeys/"+target.ID, nil), http.StatusNotFound)
			}},
		{method: "POST", path: "/api/v1/apikeys/{id}/revoke", ok: 200, perm: "api_keys:write",
			check: func(t *testing.T, f *routeFixture, target keyBody, r reply) {
				if k := getKeyAs(t, f.m, f.admin, target.ID); k.Status != "revoked" || k.RevokedAt == nil {
					t.Fatalf("after revoke status=%q revoked_at=%v", k.Status, k.RevokedAt)
				}
			}},
		{method: "POST", path: "/api/v1/apikeys/{id}/roll", ok: 200, perm: "api_keys:write",
			body: func() any { return map[string]any{"grace_seconds": 0} },
			check: func(t *testing.T, f *routeFixture, target keyBody, r reply) {
				k := decodeAs[keyBody](t, r)
				if k.ID != target.ID || !strings.HasPrefix(k.Key, "km_sk_") || k.Key == target.Key {
					t.Fatalf("roll gave %s", r.body)
				}
			}},
		{method: "GET", path: "/api/v1/audit", ok: 200, perm: "audit:read",
			check: func(t *testing.T, f *routeFixture, _ keyBody, r reply) {
				if evs := decodeAs[[]auditEvent](t, r); len(evs) == 0 {
					t.Fatal("empty audit log")
				}
			}},
		{method: "GET", path: "/api/v1/orgs", ok: 200, perm: "org:read",
			check: func(t *testing.T, f *routeFixture, _ keyBody, r reply) {
				var orgs []struct{ ID string }
				if err := json.Unmarshal(r.body, &orgs); err != nil || len(orgs) != 1 || orgs[0].ID != "alpha" {
					t.Fatalf("an org key sees %s, want only alpha", r.body)
				}
			}},
		{method: "GET", path: "/api/v1/orgs/{org}", ok: 200, perm: "org:read",
			check: func(t *testing.T, f *routeFixture, _ keyBody, r reply) {
				var o struct{ ID string }
				if err := json.Unmarshal(r.body, &o); err != nil || o.ID != "alpha" {
					t.Fatalf("org %s", r.body)
				}
			}},
		{method: "PATCH", path: "/api/v1/orgs/{org}", ok: 200, perm: "org:admin",
			body: func() any { return map[string]any{"name": "Alpha Renamed"} },
			check: func(t *testing.T, f *routeFixture, _ keyBody, r reply) {
				var o struct{ Name string }
				if err := json.Unmarshal(r.body, &o); err != nil || o.Name != "Alpha Renamed" {
					t.Fatalf("org %s", r.body)
				}
			}},
		{method: "GET", path: "/auth/api_keys", ok: 200, perm: "api_keys:read",
			check: func(t *testing.T, f *routeFixture, _ keyBody, r reply) {
				if ks := decodeAs[[]arthurBody](t, r); !slices.ContainsFunc(ks, func(k arthurBody) bool { return k.ID == f.adminID }) {
					t.Fatalf("compat list lacks the admin key: %s", r.body)
				}
			}},
		{method: "POST", path: "/auth/api_keys", ok: 200, perm: "api_keys:write",
			body: func() any { return map[string]any{"description": "compat", "roles": []string{"viewer"}} },
			check: func(t *testing.T, f *routeFixture, _ keyBody, r reply) {
				if k := decodeAs[arthurBody](t, r); !strings.HasPrefix(k.Key, "km_sk_") || !k.IsActive {
					t.Fatalf("compat create %s", r.body)
				}
			}},
		{method: "DELETE", path: "/auth/api_keys/deactivate/{id}", ok: 200, perm: "api_keys:write",
			check: func(t *testing.T, f *routeFixture, target keyBody, r reply) {
				if k := decodeAs[arthurBody](t, r); k.ID != target.ID || k.IsActive {
					t.Fatalf("compat deactivate %s", r.body)
				}
			}},
	}
}

// arthurBody is a key as the compatibility routes render it.
type arthurBody struct {
	ID            string     `json:"id"`
	Key           string     `json:"key"`
	Description   string     `json:"description"`
	IsActive      bool       `json:"is_active"`
	CreatedAt     time.Time  `json:"created_at"`
	DeactivatedAt *time.Time `json:"deactivated_at"`
	Message       string     `json:"message"`
}

// TestRoutes runs every management route through the cases every route
// shares: no or a bad credential, another org's caller, a caller without
// the permission, and success with each kind of credential.
func TestRoutes(t *testing.T) {
	f := newRouteFixture(t)

	// What a caller sees of an object that does not exist.
	unknownKey := callAs(t, f.otherAdmin, "GET", f.m.URL()+"/api/v1/apikeys/"+uuid.Must(uuid.NewV7()).String(), nil)
	wantProblem(t, unknownKey, http.StatusNotFound)

	// A secret whose checksum is broken, and one for a key that never was.
	flipped := []byte(f.viewer.Key)
	flipped[len(flipped)-1] ^= 1
	neverKey, _ := keys.NewSecret(keys.TypeSecret, uuid.Must(uuid.NewV7()), nil)
	garbage := []struct{ name, cred string }{
		{"Word", "garbage"},
		{"BadChecksum", string(flipped)},
		{"UnknownKeySecret", neverKey.String()},
		{"TokenShaped", "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.eyJzdWIiOiJ4In0."},
		{"RootKeyTypo", f.m.RootKey() + "x"},
	}

	for _, rt := range mgmtRoutes() {
		t.Run(rt.name(), func(t *testing.T) {
			target := f.target(t)
			u := rt.url(f, target.ID)

			t.Run("NoCredential", func(t *testing.T) {
				before := f.state(t)
				r := httpSend(t, rt.method, u, nil, rt.reqBody())
				wantUnauthorized(t, r)
				if after := f.state(t); after != before {
					t.Fatalf("an unauthenticated request changed state:\n%s\n%s", before, after)
				}
			})
			t.Run("GarbageCredential", func(t *testing.T) {
				for _, g := range garbage {
					for hname, hdr := range map[string]map[string]string{"Bearer": bearerHdr(g.cred), "X-API-Key": apiKeyHdr(g.cred)} {
						r := httpSend(t, rt.method, u, hdr, rt.reqBody())
						if r.status != http.StatusUnauthorized {
							t.Fatalf("%s as %s: status=%d, want 401; body=%s", g.name, hname, r.status, r.body)
						}
						wantUnauthorized(t, r)
						if strings.Contains(r.String(), g.cred) {
							t.Fatalf("%s: the 401 echoes the credential", g.name)
						}
					}
				}
			})
			if rt.onObject() {
				t.Run("OtherOrg", func(t *testing.T) {
					before := f.state(t)
					r := callAs(t, f.otherAdmin, rt.method, u, rt.reqBody())
					wantProblem(t, r, http.StatusNotFound)
					if strings.HasPrefix(rt.path, "/api/v1/apikeys/") || strings.HasPrefix(rt.path, "/auth/") {
						if string(r.body) != string(unknownKey.body) {
							t.Fatalf("another org's key is told apart from a missing one:\n%s\n%s", r.body, unknownKey.body)
						}
					}
					if after := f.state(t); after != before {
						t.Fatalf("another org's caller changed state:\n%s\n%s", before, after)
					}
				})
			}
			t.Run("MissingPermission", func(t *testing.T) {
				who, cred := rt.lacking(f)
				before := f.state(t)
				r := callAs(t, cred, rt.method, u, rt.reqBody())
				if r.status != http.StatusForbidden {
					t.Fatalf("%s calling %s (needs %s): status=%d, want 403; body=%s", who, rt.name(), rt.perm, r.status, r.body)
				}
				wantProblem(t, r, http.StatusForbidden)
				if got := r.h.Get("WWW-Authenticate"); !strings.Contains(got, `error="insufficient_scope"`) {
					t.Fatalf("WWW-Authenticate=%q, want insufficient_scope", got)
				}
				if after := f.state(t); after != before {
					t.Fatalf("a refused request changed state:\n%s\n%s", before, after)
				}
			})
			for _, ck := range []struct {
				name string
				hdr  func() map[string]string
			}{
				{"BearerSecret", func() map[string]string { return bearerHdr(f.admin) }},
				{"XAPIKey", func() map[string]string { return apiKeyHdr(f.admin) }},
				{"JWT", func() map[string]string { return bearerHdr(f.adminJWT) }},
			} {
				t.Run("OK/"+ck.name, func(t *testing.T) {
					target := f.target(t)
					r := httpSend(t, rt.method, rt.url(f, target.ID), ck.hdr(), rt.reqBody())
					if r.status != rt.ok {
						t.Fatalf("status=%d, want %d; body=%s", r.status, rt.ok, r.body)
					}
					rt.check(t, f, target, r)
				})
			}
		})
	}
}

// TestRouteEscalation: a caller may not create or shape a key wider than
// itself.
func TestRouteEscalation(t *testing.T) {
	f := newRouteFixture(t)
	base := f.m.URL() + "/api/v1/apikeys"
	devJWT := jwtFor(t, f.m, f.developer.ID, f.developer.Key)
	exp := inDays(time.Now(), 30)
	target := f.target(t)
	for _, tt := range []struct {
		name, cred, method, url string
		body                    any
	}{
		{"CreateAdmin", f.developer.Key, "POST", base, map[string]any{"name": "x", "role": "admin", "expires_at": exp}},
		{"CreateAdminWithJWT", devJWT, "POST", base, map[string]any{"name": "x", "role": "admin", "expires_at": exp}},
		{"CreateSigningKeysAdmin", f.developer.Key, "POST", base, map[string]any{"name": "x", "role": "viewer", "scopes": []string{"signing_keys:admin"}, "expires_at": exp}},
		{"CreateStarStar", f.developer.Key, "POST", base, map[string]any{"name": "x", "scopes": []string{"*:*"}, "expires_at": exp}},
		{"ViewerCreatesViewer", f.viewer.Key, "POST", base, map[string]any{"name": "x", "role": "viewer", "expires_at": exp}},
		{"CompatCreateAdmin", f.developer.Key, "POST", f.m.URL() + "/auth/api_keys", map[string]any{"description": "x", "roles": []string{"admin"}}},
		{"PatchScopesStarStar", f.developer.Key, "PATCH", base + "/" + target.ID, map[string]any{"scopes": []string{"*:*"}}},
		{"PatchScopesStarStarWithJWT", devJWT, "PATCH", base + "/" + target.ID, map[string]any{"scopes": []string{"*:*"}}},
		{"PatchRoleAdmin", f.developer.Key, "PATCH", base + "/" + target.ID, map[string]any{"role": "admin"}},
		{"PutRoleAdmin", f.developer.Key, "PUT", base + "/" + target.ID, map[string]any{"name": "x", "role": "admin", "expires_at": exp}},
		{"PatchSigningKeysAdmin", f.developer.Key, "PATCH", base + "/" + target.ID, map[string]any{"scopes": []string{"signing_keys:admin"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := f.state(t)
			r := callAs(t, tt.cred, tt.method, tt.url, tt.body)
			wantProblem(t, r, http.StatusForbidden)
			if after := f.state(t); after != before {
				t.Fatalf("a refused escalation changed state:\n%s\n%s", before, after)
			}
		})
	}
	t.Run("DeveloperMayCreateDeveloper", func(t *testing.T) {
		k := mkKey(t, f.m, f.developer.Key, map[string]any{"name": "dev made", "role": "developer", "scopes": []string{"devices:write"}})
		if k.CreatedBy != f.developer.ID {
			t.Fatalf("created_by=%q, want the developer key %s", k.CreatedBy, f.developer.ID)
		}
	})
}

// TestRouteWiderKey: a developer cannot act on the admin key (rolling it
// would hand over the admin secret), and the admin key survives.
func TestRouteWiderKey(t *testing.T) {
	f := newRouteFixture(t)
	admin := f.m.URL() + "/api/v1/apikeys/" + f.adminID
	devJWT := jwtFor(t, f.m, f.developer.ID, f.developer.Key)
	exp := inDays(time.Now(), 30)
	for _, tt := range []struct {
		name, method, url string
		body              any
	}{
		{"Revoke", "POST", admin + "/revoke", nil},
		{"Roll", "POST", admin + "/roll", map[string]any{"grace_seconds": 0}},
		{"RollDefaultGrace", "POST", admin + "/roll", nil},
		{"Delete", "DELETE", admin, nil},
		{"PatchDisable", "PATCH", admin, map[string]any{"enabled": false}},
		{"PatchName", "PATCH", admin, map[string]any{"name": "mine now"}},
		{"PatchDowngrade", "PATCH", admin, map[string]any{"role": "viewer"}},
		{"Put", "PUT", admin, map[string]any{"name": "mine now", "role": "admin", "expires_at": exp}},
		{"CompatDeactivate", "DELETE", f.m.URL() + "/auth/api_keys/deactivate/" + f.adminID, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, cred := range []string{f.developer.Key, devJWT} {
				before := f.state(t)
				r := callAs(t, cred, tt.method, tt.url, tt.body)
				wantProblem(t, r, http.StatusForbidden)
				if strings.Contains(r.String(), "km_sk_") {
					t.Fatalf("a refused roll leaks a secret: %s", r.body)
				}
				if after := f.state(t); after != before {
					t.Fatalf("acting on a wider key changed state:\n%s\n%s", before, after)
				}
			}
		})
	}
	// The admin key still works, both directly and through the exchange.
	k := getKeyAs(t, f.m, f.admin, f.adminID)
	if k.Status != "active" || k.Role != "admin" || k.Name != "bootstrap admin" {
		t.Fatalf("admin key after the attempts: %+v", k)
	}
	wantStatus(t, callAs(t, f.admin, "GET", f.m.URL()+"/api/v1/apikeys", nil), http.StatusOK)
	wantStatus(t, tryExchange(t, f.m, f.adminID, f.admin), http.StatusOK)
	wantStatus(t, callAs(t, f.adminJWT, "GET", f.m.URL()+"/api/v1/apikeys/"+f.adminID, nil), http.StatusOK)
}

// TestRouteBadInput: each kind of bad request gets a 400 (or 413) problem
// naming the field, and creates or changes nothing.
func TestRouteBadInput(t *testing.T) {
	m := MustRunMain(t, "")
	_, admin := bootstrapWith(t, m, "bad", nil)
	base := m.URL() + "/api/v1/apikeys"
	now := time.Now()
	exp := inDays(now, 30)
	target := mkKey(t, m, admin, map[string]any{"name": "target", "role": "viewer"})
	state := func(t *testing.T) string {
		r := callAs(t, admin, "GET", base+"?status=all&limit=200", nil)
		wantStatus(t, r, http.StatusOK)
		var b strings.Builder
		for _, k := range decodeAs[[]keyBody](t, r) {
			fmt.Fprintf(&b, "%s|%s|%s|%s|%v|%v|%v|%s|%s\n", k.ID, k.Name, k.Status, k.Role, k.Scopes, k.AllowedCIDRs, k.ExpiresAt, k.MaskedValue, k.UpdatedAt)
		}
		return b.String()
	}
	key := func(extra map[string]any) map[string]any {
		b := map[string]any{"name": "k", "role": "viewer", "expires_at": exp}
		for k, v := range extra {
			if v == nil {
				delete(b, k)
			} else {
				b[k] = v
			}
		}
		return b
	}
	big := `{"name":"` + strings.Repeat("a", 65<<10) + `","role":"viewer"}`

	type badCase struct {
		name   string
		body   any
		status int
		field  string
	}
	common := []badCase{
		{"BadJSON", `{"name":"x",`, 400, "body"},
		{"NotJSON", `name=x`, 400, "body"},
		{"TrailingData", `{"name":"x"} {}`, 400, "body"},
		{"NotAnObject", `["name"]`, 400, "body"},
		{"EmptyBody", ``, 400, "body"},
		{"UnknownField", `{"name":"x","role":"viewer","colour":"red"}`, 400, "colour"},
		{"DuplicateKey", `{"name":"x","role":"viewer","role":"admin"}`, 400, "role"},
		{"CaseVariantKey", `{"name":"x","role":"viewer","ROLE":"admin"}`, 400, "ROLE"},
		{"WrongType", `{"name":42}`, 400, "name"},
		{"TooLarge", big, 413, ""},
		{"TooLargeChunked", chunked(big), 413, ""},
		{"NameEmpty", key(map[string]any{"name": ""}), 400, "name"},
		{"NameBlank", key(map[string]any{"name": "   "}), 400, "name"},
		{"NameControl", key(map[string]any{"name": "a\u0007b"}), 400, "name"},
		{"NameNewline", key(map[string]any{"name": "a\nb"}), 400, "name"},
		{"Name201", key(map[string]any{"name": strings.Repeat("é", 201)}), 400, "name"},
		{"BadDate", key(map[string]any{"expires_at": "next tuesday"}), 400, "expires_at"},
		{"DateWithoutZone", key(map[string]any{"expires_at": "2030-01-01T00:00:00"}), 400, "expires_at"},
		{"DateOnly", key(map[string]any{"expires_at": "2030-01-01"}), 400, "expires_at"},
		{"DateNumber", key(map[string]any{"expires_at": 1900000000}), 400, "expires_at"},
		{"ExpiresInPast", key(map[string]any{"expires_at": inDays(now, -1)}), 400, "expires_at"},
		{"ExpiresBeyondLifetime", key(map[string]any{"expires_at": inDays(now, 366)}), 400, "expires_at"},
		{"UnknownRole", key(map[string]any{"role": "superuser"}), 400, "role"},
		{"MalformedScope", key(map[string]any{"scopes": []string{"Devices:Read"}}), 400, "scopes[0]"},
		{"ScopeWithoutAction", key(map[string]any{"scopes": []string{"devices:read", "devices"}}), 400, "scopes[1]"},
		{"ScopesNotArray", key(map[string]any{"scopes": "devices:read"}), 400, "scopes"},
		{"MalformedCIDR", key(map[string]any{"allowed_cidrs": []string{"10.0.0.0/33"}}), 400, "allowed_cidrs[0]"},
		{"CIDRGarbage", key(map[string]any{"allowed_cidrs": []string{"127.0.0.1/32", "localhost"}}), 400, "allowed_cidrs[1]"},
	}
	createOnly := []badCase{
		{"MissingExpiry", key(map[string]any{"expires_at": nil}), 400, "expires_at"},
		{"NullExpiry", `{"name":"x","role":"viewer","expires_at":null}`, 400, "expires_at"},
		{"NoRoleNoScopes", key(map[string]any{"role": nil}), 400, "role"},
		{"UnknownType", key(map[string]any{"type": "xk"}), 400, "type"},
		{"PKWithWriteScope", key(map[string]any{"type": "pk", "role": nil, "scopes": []string{"devices:write"}}), 400, "scopes[0]"},
		{"PKWithDeveloperRole", key(map[string]any{"type": "pk", "role": "developer"}), 400, "role"},
		{"ClaimReservedSub", key(map[string]any{"claims": map[string]any{"sub": "someone"}}), 400, "claims.sub"},
		{"ClaimReservedScope", key(map[string]any{"claims": map[string]any{"scope": "*:*"}}), 400, "claims.scope"},
		{"ClaimReservedIss", key(map[string]any{"claims": map[string]any{"iss": "https://evil"}}), 400, "claims.iss"},
		{"ClaimsTooLarge", key(map[string]any{"claims": map[string]any{"blob": strings.Repeat("x", 2100)}}), 400, "claims"},
		{"ClaimsNotObject", key(map[string]any{"claims": []int{1}}), 400, "claims"},
	}
	updateOnly := []badCase{
		{"ExpiresInPast", map[string]any{"expires_at": inDays(now, -1)}, 400, "expires_at"},
		{"RemoveExpiryUnderRequireExpiry", `{"expires_at":null}`, 400, "expires_at"},
		{"EnabledNotBool", `{"enabled":"yes"}`, 400, "enabled"},
	}
	run := func(t *testing.T, method, u string, cases []badCase) {
		for _, tt := range cases {
			t.Run(tt.name, func(t *testing.T) {
				before := state(t)
				body := tt.body
				if c, ok := body.(chunked); ok {
					// No Content-Length: the server must stop reading at 64 KiB.
					body = io.MultiReader(strings.NewReader(string(c)))
				}
				r := callAs(t, admin, method, u, body)
				p := wantProblem(t, r, tt.status)
				if tt.field != "" {
					wantProblem(t, r, tt.status, tt.field)
				} else if p.Detail == "" {
					t.Fatalf("a %d without a detail: %s", tt.status, r.body)
				}
				if after := state(t); after != before {
					t.Fatalf("a refused request changed state:\n%s\n%s", before, after)
				}
			})
		}
	}
	t.Run("Create", func(t *testing.T) { run(t, "POST", base, append(common, createOnly...)) })
	t.Run("Patch", func(t *testing.T) { run(t, "PATCH", base+"/"+target.ID, append(common, updateOnly...)) })
	t.Run("Put", func(t *testing.T) {
		run(t, "PUT", base+"/"+target.ID, []badCase{
			{"BadJSON", `{"name":`, 400, "body"},
			{"UnknownField", key(map[string]any{"colour": "red"}), 400, "colour"},
			{"DuplicateKey", `{"name":"x","name":"y","role":"viewer"}`, 400, "name"},
			{"MissingName", key(map[string]any{"name": nil}), 400, "name"},
			{"MissingRole", key(map[string]any{"role": nil}), 400, "role"},
			{"MissingExpiry", key(map[string]any{"expires_at": nil}), 400, "expires_at"},
			{"TooLarge", big, 413, ""},
		})
	})
	t.Run("Roll", func(t *testing.T) {
		run(t, "POST", base+"/"+target.ID+"/roll", []badCase{
			{"NegativeGrace", map[string]any{"grace_seconds": -1}, 400, "grace_seconds"},
			{"GraceTooLong", map[string]any{"grace_seconds": 31 * 86400}, 400, "grace_seconds"},
			{"GraceNotNumber", `{"grace_seconds":"soon"}`, 400, "grace_seconds"},
			{"UnknownField", `{"grace":0}`, 400, "grace"},
		})
	})
	t.Run("CompatCreate", func(t *testing.T) {
		run(t, "POST", m.URL()+"/auth/api_keys", []badCase{
			{"TwoRoles", map[string]any{"description": "x", "roles": []string{"viewer", "developer"}}, 400, "roles"},
			{"NoRoles", map[string]any{"description": "x", "roles": []string{}}, 400, "roles"},
			// Errors name the compatibility request's own fields.
			{"UnknownRole", map[string]any{"description": "x", "roles": []string{"root"}}, 400, "roles"},
			{"EmptyDescription", map[string]any{"description": "", "roles": []string{"viewer"}}, 400, "description"},
			{"LongDescription", map[string]any{"description": strings.Repeat("d", 201), "roles": []string{"viewer"}}, 400, "description"},
			{"UnknownField", `{"description":"x","roles":["viewer"],"scopes":["*:*"]}`, 400, "scopes"},
		})
	})
	t.Run("WithValue", func(t *testing.T) {
		r := callAs(t, admin, "GET", base+"/"+target.ID+"?withValue=true", nil)
		p := wantProblem(t, r, http.StatusBadRequest, "withValue")
		if !strings.Contains(r.String(), "one-way hash") {
			t.Fatalf("the 400 does not explain one-way hashing: %s", r.body)
		}
		if p.Detail == "" || strings.Contains(r.String(), "km_sk_") {
			t.Fatalf("withValue problem %s", r.body)
		}
	})
	t.Run("ListParams", func(t *testing.T) {
		for _, tt := range []struct{ query, field string }{
			{"limit=abc", "limit"},
			{"limit=0", "limit"},
			{"limit=-5", "limit"},
			{"limit=201", "limit"},
			{"limit=1.5", "limit"},
			{"status=bogus", "status"},
			{"cursor=xyz", "cursor"},
			{"q=" + strings.Repeat("q", 201), "q"},
		} {
			t.Run(tt.query, func(t *testing.T) {
				wantProblem(t, callAs(t, admin, "GET", base+"?"+tt.query, nil), http.StatusBadRequest, tt.field)
			})
		}
		for _, tt := range []struct{ query, field string }{
			{"limit=abc", "limit"},
			{"limit=0", "limit"},
			{"limit=500", "limit"},
			{"cursor=xyz", "cursor"},
		} {
			t.Run("audit/"+tt.query, func(t *testing.T) {
				wantProblem(t, callAs(t, admin, "GET", m.URL()+"/api/v1/audit?"+tt.query, nil), http.StatusBadRequest, tt.field)
			})
		}
	})
	t.Run("Boundaries", func(t *testing.T) {
		// 200 characters (not bytes) is a good name; names are trimmed.
		k := mkKey(t, m, admin, map[string]any{"name": "  " + strings.Repeat("é", 200) + " ", "role": "viewer"})
		if k.Name != strings.Repeat("é", 200) {
			t.Fatalf("name=%q, want 200 é, trimmed", k.Name)
		}
		// Just inside max_key_lifetime (365 days) is allowed.
		mkKey(t, m, admin, map[string]any{"name": "a year", "role": "viewer", "expires_at": inDays(time.Now(), 364.9)})
		// A pk key with read scopes is fine.
		pk := mkKey(t, m, admin, map[string]any{"name": "pk", "type": "pk", "role": "viewer", "scopes": []string{"devices:read"}})
		if pk.Type != "pk" || !strings.HasPrefix(pk.Key, "km_pk_") {
			t.Fatalf("pk key type=%q secret prefix=%q", pk.Type, pk.MaskedValue)
		}
	})
}

// chunked is a request body sent without a Content-Length.
type chunked string

// TestListKeys: status filters, name search, paging and secrecy.
func TestListKeys(t *testing.T) {
	clock := newFakeClock(time.Now())
	m := startMain(t, func(m *Main) { m.Now = clock.Now })
	adminID, admin := bootstrapWith(t, m, "lister", nil)
	base := m.URL() + "/api/v1/apikeys"
	list := func(t *testing.T, query string) []keyBody {
		t.Helper()
		r := callAs(t, admin, "GET", base+"?"+query, nil)
		wantStatus(t, r, http.StatusOK)
		return decodeAs[[]keyBody](t, r)
	}
	secrets := []string{admin}
	mk := func(req map[string]any) keyBody {
		k := mkKey(t, m, admin, req)
		secrets = append(secrets, k.Key)
		return k
	}

	active := mk(map[string]any{"name": "Zürich Deploy", "role": "viewer"})
	disabled := mk(map[string]any{"name": "disabled one", "role": "viewer"})
	wantStatus(t, callAs(t, admin, "PATCH", base+"/"+disabled.ID, map[string]any{"enabled": false}), http.StatusOK)
	revoked := mk(map[string]any{"name": "revoked one", "role": "viewer"})
	wantStatus(t, callAs(t, admin, "POST", base+"/"+revoked.ID+"/revoke", nil), http.StatusOK)
	expired := mk(map[string]any{"name": "expired one", "role": "viewer", "expires_at": inDays(clock.Now(), 1.0/24)})
	clock.Advance(2 * time.Hour)

	t.Run("Status", func(t *testing.T) {
		for _, tt := range []struct {
			query string
			want  []string
		}{
			{"", []string{adminID, active.ID}},
			{"status=active", []string{adminID, active.ID}},
			{"status=disabled", []string{disabled.ID}},
			{"status=revoked", []string{revoked.ID}},
			{"status=expired", []string{expired.ID}},
			{"status=all", []string{adminID, active.ID, disabled.ID, revoked.ID, expired.ID}},
		} {
			t.Run(tt.query, func(t *testing.T) {
				ks := list(t, tt.query)
				if got := idsOf(ks); !slices.Equal(got, tt.want) {
					t.Fatalf("ids=%v, want %v", got, tt.want)
				}
				for _, k := range ks {
					want := map[string]string{adminID: "active", active.ID: "active", disabled.ID: "disabled", revoked.ID: "revoked", expired.ID: "expired"}[k.ID]
					if k.Status != want {
						t.Fatalf("key %s status=%q, want %q", k.Name, k.Status, want)
					}
				}
			})
		}
	})
	t.Run("Query", func(t *testing.T) {
		for _, tt := range []struct {
			q    string
			want []string
		}{
			{"zürich", []string{active.ID}},
			{"ZÜRICH", []string{active.ID}},
			{"rich dep", []string{active.ID}},
			{"zurich", nil},
			{"ONE", nil}, // the others are not active
		} {
			t.Run(tt.q, func(t *testing.T) {
				ks := list(t, "q="+url.QueryEscape(tt.q))
				if got := idsOf(ks); !slices.Equal(got, tt.want) {
					t.Fatalf("q=%q: ids=%v, want %v", tt.q, got, tt.want)
				}
				if len(ks) == 1 && ks[0].Name != "Zürich Deploy" {
					t.Fatalf("name=%q, want the Unicode name kept", ks[0].Name)
				}
			})
		}
		if got := idsOf(list(t, "status=all&q=ONE")); !slices.Equal(got, []string{disabled.ID, revoked.ID, expired.ID}) {
			t.Fatalf("status=all&q=ONE: %v", got)
		}
	})
	t.Run("Paging", func(t *testing.T) {
		var want []string
		for i := range 7 {
			want = append(want, mk(map[string]any{"name": fmt.Sprintf("page %d", i), "role": "viewer"}).ID)
			if i == 2 {
				// A key between them that the filter drops must not
				// shift the pages.
				mk(map[string]any{"name": "between", "role": "viewer"})
			}
		}
		u := base + "?q=page&limit=3"
		var got []string
		var sizes []int
		for pages := 0; u != ""; pages++ {
			if pages > 5 {
				t.Fatal("paging does not end")
			}
			r := callAs(t, admin, "GET", u, nil)
			wantStatus(t, r, http.StatusOK)
			ks := decodeAs[[]keyBody](t, r)
			sizes = append(sizes, len(ks))
			got = append(got, idsOf(ks)...)
			u = nextLink(t, m, r)
			if u != "" && (!strings.Contains(u, "q=page") || !strings.Contains(u, "limit=3")) {
				t.Fatalf("next link %q drops the query", u)
			}
		}
		if !slices.Equal(sizes, []int{3, 3, 1}) {
			t.Fatalf("page sizes %v, want [3 3 1]", sizes)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("paged ids %v, want %v (creation order, no gaps or repeats)", got, want)
		}
		// The order is stable: the same query gives the same first page.
		if again := idsOf(list(t, "q=page&limit=3")); !slices.Equal(again, want[:3]) {
			t.Fatalf("first page again %v, want %v", again, want[:3])
		}
		// Paging all keys with limit 1 visits each once.
		all := idsOf(list(t, "status=all&limit=200"))
		var walked []string
		for u := base + "?status=all&limit=1"; u != ""; {
			r := callAs(t, admin, "GET", u, nil)
			wantStatus(t, r, http.StatusOK)
			walked = append(walked, idsOf(decodeAs[[]keyBody](t, r))...)
			u = nextLink(t, m, r)
		}
		if !slices.Equal(walked, all) {
			t.Fatalf("limit=1 walk %v, want %v", walked, all)
		}
	})
	t.Run("NoSecrets", func(t *testing.T) {
		var bodies []reply
		for _, q := range []string{"", "status=all", "status=all&limit=2", "status=disabled", "status=revoked", "status=expired"} {
			bodies = append(bodies, callAs(t, admin, "GET", base+"?"+q, nil))
		}
		for _, id := range []string{adminID, active.ID, disabled.ID, revoked.ID, expired.ID} {
			bodies = append(bodies, callAs(t, admin, "GET", base+"/"+id, nil))
		}
		bodies = append(bodies, callAs(t, admin, "GET", m.URL()+"/auth/api_keys", nil))
		for _, r := range bodies {
			wantStatus(t, r, http.StatusOK)
			for _, s := range secrets {
				if strings.Contains(r.String(), s) || strings.Contains(r.String(), s[6:]) {
					t.Fatalf("a secret appears in %s", r.body)
				}
			}
			for _, word := range []string{"secret_hash", "prev_secret", "hash"} {
				if strings.Contains(r.String(), word) {
					t.Fatalf("%q appears in %s", word, r.body)
				}
			}
		}
		for _, k := range list(t, "status=all&limit=200") {
			var secret string
			for _, s := range secrets {
				if keys.MaskSecret(s) == k.MaskedValue {
					secret = s
				}
			}
			if secret == "" {
				t.Fatalf("key %s: maskedValue %q matches no secret", k.Name, k.MaskedValue)
			}
			if !strings.HasPrefix(k.MaskedValue, "km_sk_") || !strings.HasSuffix(k.MaskedValue, secret[len(secret)-4:]) || len(k.MaskedValue) > len("km_sk_")+8 {
				t.Fatalf("maskedValue=%q, want the prefix and the last 4 characters", k.MaskedValue)
			}
		}
	})
}

// TestCompatRoutes: Arthur's API-key endpoints.
func TestCompatRoutes(t *testing.T) {
	m := MustRunMain(t, "")
	_, admin := bootstrapWith(t, m, "arthur", nil)
	base := m.URL() + "/auth/api_keys"
	start := time.Now().Add(-time.Second)

	r := callAs(t, admin, "POST", base, map[string]any{"description": "x", "roles": []string{"viewer"}})
	wantStatus(t, r, http.StatusOK)
	if r.h.Get("Cache-Control") != "no-store" || r.h.Get("Pragma") != "no-cache" {
		t.Fatalf("the create response carries a secret but may be cached: %v", r.h)
	}
	var raw map[string]any
	if err := json.Unmarshal(r.body, &raw); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"id", "key", "description", "is_active", "created_at", "deactivated_at", "message"} {
		if _, ok := raw[f]; !ok {
			t.Fatalf("create response lacks %q: %s", f, r.body)
		}
	}
	k := decodeAs[arthurBody](t, r)
	if k.Description != "x" || !k.IsActive || k.DeactivatedAt != nil || k.Message == "" || !strings.HasPrefix(k.Key, "km_sk_") {
		t.Fatalf("create response %s", r.body)
	}
	if k.CreatedAt.Before(start) || k.CreatedAt.After(time.Now().Add(time.Second)) {
		t.Fatalf("created_at=%v", k.CreatedAt)
	}
	if _, err := uuid.Parse(k.ID); err != nil {
		t.Fatalf("id %q: %v", k.ID, err)
	}

	// The key is a keymint key: it exchanges, and has the role asked for.
	tok := exchange(t, m, "POST", k.ID, k.Key, nil)
	if tok.Scope != "*:read" {
		t.Fatalf("compat viewer key scope=%q, want *:read", tok.Scope)
	}
	if got := getKeyAs(t, m, admin, k.ID); got.Role != "viewer" || got.Name != "x" || got.ExpiresAt == nil {
		t.Fatalf("as a keymint key: %+v", got)
	}

	r = callAs(t, admin, "GET", base, nil)
	wantStatus(t, r, http.StatusOK)
	listed := decodeAs[[]arthurBody](t, r)
	i := slices.IndexFunc(listed, func(a arthurBody) bool { return a.ID == k.ID })
	if i < 0 || !listed[i].IsActive || listed[i].Description != "x" || listed[i].Key != "" {
		t.Fatalf("list %s", r.body)
	}
	if strings.Contains(r.String(), k.Key) || strings.Contains(r.String(), `"key"`) {
		t.Fatalf("the list shows a secret: %s", r.body)
	}

	r = callAs(t, admin, "DELETE", base+"/deactivate/"+k.ID, nil)
	wantStatus(t, r, http.StatusOK)
	d := decodeAs[arthurBody](t, r)
	if d.ID != k.ID || d.IsActive || d.DeactivatedAt == nil || d.Key != "" {
		t.Fatalf("deactivate response %s", r.body)
	}
	if d.DeactivatedAt.Before(start.Truncate(time.Second)) {
		t.Fatalf("deactivated_at=%v", d.DeactivatedAt)
	}
	wantUnauthorized(t, tryExchange(t, m, k.ID, k.Key))
	r = callAs(t, admin, "GET", base, nil)
	listed = decodeAs[[]arthurBody](t, r)
	if i := slices.IndexFunc(listed, func(a arthurBody) bool { return a.ID == k.ID }); i < 0 || listed[i].IsActive || listed[i].DeactivatedAt == nil {
		t.Fatalf("list after deactivate %s", r.body)
	}
	// Deactivating again changes nothing and still answers.
	wantStatus(t, callAs(t, admin, "DELETE", base+"/deactivate/"+k.ID, nil), http.StatusOK)
	// An unknown id is 404.
	wantProblem(t, callAs(t, admin, "DELETE", base+"/deactivate/"+uuid.Must(uuid.NewV7()).String(), nil), http.StatusNotFound)

	wantProblem(t, callAs(t, admin, "POST", base, map[string]any{"description": "x", "roles": []string{"viewer", "admin"}}), http.StatusBadRequest, "roles")
	wantProblem(t, callAs(t, m.RootKey(), "POST", base, map[string]any{"description": "x", "roles": []string{"viewer"}}), http.StatusForbidden)
}

// TestPutPatch: PUT replaces the mutable fields, PATCH changes only those
// given, and both warn when scopes or CIDRs change.
func TestPutPatch(t *testing.T) {
	m := MustRunMain(t, "")
	_, admin := bootstrapWith(t, m, "putpatch", nil)
	base := m.URL() + "/api/v1/apikeys/"
	exp := inDays(time.Now(), 20)
	orig := mkKey(t, m, admin, map[string]any{
		"name": "orig", "role": "viewer", "scopes": []string{"devices:write"},
		"allowed_cidrs": []string{"127.0.0.1/32"}, "expires_at": exp, "claims": map[string]any{"team": "a"},
	})

	t.Run("PatchName", func(t *testing.T) {
		r := callAs(t, admin, "PATCH", base+orig.ID, map[string]any{"name": "renamed"})
		wantStatus(t, r, http.StatusOK)
		k := decodeAs[keyBody](t, r)
		if len(k.Warnings) != 0 {
			t.Fatalf("warnings %v for a rename", k.Warnings)
		}
		g := getKeyAs(t, m, admin, orig.ID)
		if g.Name != "renamed" || g.Role != "viewer" || !slices.Equal(g.Scopes, []string{"devices:write"}) ||
			!slices.Equal(g.AllowedCIDRs, []string{"127.0.0.1/32"}) || !g.ExpiresAt.Equal(*orig.ExpiresAt) || !g.Enabled || g.Claims["team"] != "a" {
			t.Fatalf("PATCH of the name changed other fields: %+v", g)
		}
		if g.MaskedValue != orig.MaskedValue {
			t.Fatal("PATCH changed the secret")
		}
	})
	t.Run("PatchScopesWarns", func(t *testing.T) {
		r := callAs(t, admin, "PATCH", base+orig.ID, map[string]any{"scopes": []string{"devices:write", "sites:write"}})
		wantStatus(t, r, http.StatusOK)
		if k := decodeAs[keyBody](t, r); len(k.Warnings) == 0 || !slices.Equal(k.Scopes, []string{"devices:write", "sites:write"}) {
			t.Fatalf("scopes change: %s", r.body)
		}
		if g := getKeyAs(t, m, admin, orig.ID); g.Name != "renamed" || !slices.Equal(g.AllowedCIDRs, []string{"127.0.0.1/32"}) {
			t.Fatalf("PATCH of scopes changed other fields: %+v", g)
		}
	})
	t.Run("PatchCIDRsWarns", func(t *testing.T) {
		r := callAs(t, admin, "PATCH", base+orig.ID, map[string]any{"allowed_cidrs": []string{"127.0.0.0/8", "::1"}})
		wantStatus(t, r, http.StatusOK)
		k := decodeAs[keyBody](t, r)
		if len(k.Warnings) == 0 || !slices.Equal(k.AllowedCIDRs, []string{"127.0.0.0/8", "::1/128"}) {
			t.Fatalf("cidrs change: %s", r.body)
		}
	})
	t.Run("PatchSameScopesNoWarning", func(t *testing.T) {
		r := callAs(t, admin, "PATCH", base+orig.ID, map[string]any{"scopes": []string{"devices:write", "sites:write"}})
		wantStatus(t, r, http.StatusOK)
		if k := decodeAs[keyBody](t, r); len(k.Warnings) != 0 {
			t.Fatalf("warnings %v for an unchanged scope list", k.Warnings)
		}
	})
	t.Run("PatchDisableEnable", func(t *testing.T) {
		r := callAs(t, admin, "PATCH", base+orig.ID, map[string]any{"enabled": false})
		wantStatus(t, r, http.StatusOK)
		if k := decodeAs[keyBody](t, r); k.Enabled || k.Status != "disabled" || k.Name != "renamed" {
			t.Fatalf("disable: %s", r.body)
		}
		r = callAs(t, admin, "PATCH", base+orig.ID, map[string]any{"enabled": true})
		if k := decodeAs[keyBody](t, r); !k.Enabled || k.Status != "active" {
			t.Fatalf("enable: %s", r.body)
		}
	})
	t.Run("PutReplaces", func(t *testing.T) {
		exp2 := inDays(time.Now(), 10)
		r := callAs(t, admin, "PUT", base+orig.ID, map[string]any{"name": "put", "role": "developer", "expires_at": exp2})
		wantStatus(t, r, http.StatusOK)
		k := decodeAs[keyBody](t, r)
		if len(k.Warnings) == 0 {
			t.Fatalf("PUT emptied scopes and CIDRs without a warning: %s", r.body)
		}
		g := getKeyAs(t, m, admin, orig.ID)
		if g.Name != "put" || g.Role != "developer" || len(g.Scopes) != 0 || len(g.AllowedCIDRs) != 0 || g.ExpiresAt.Format(time.RFC3339) != exp2 || !g.Enabled {
			t.Fatalf("after PUT %+v, want name put, role developer, no scopes or CIDRs, the new expiry", g)
		}
		if g.Claims["team"] != "a" {
			t.Fatalf("claims=%v: PUT cannot set claims, so it must keep them", g.Claims)
		}
		if g.MaskedValue != orig.MaskedValue {
			t.Fatal("PUT changed the secret")
		}
	})
	t.Run("PutReEnables", func(t *testing.T) {
		wantStatus(t, callAs(t, admin, "PATCH", base+orig.ID, map[string]any{"enabled": false}), http.StatusOK)
		r := callAs(t, admin, "PUT", base+orig.ID, map[string]any{"name": "put", "role": "developer", "expires_at": exp})
		wantStatus(t, r, http.StatusOK)
		if k := decodeAs[keyBody](t, r); !k.Enabled || k.Status != "active" {
			t.Fatalf("PUT without enabled: %s, want enabled", r.body)
		}
	})
	t.Run("PutRequiresNameAndRole", func(t *testing.T) {
		wantProblem(t, callAs(t, admin, "PUT", base+orig.ID, map[string]any{"role": "viewer", "expires_at": exp}), http.StatusBadRequest, "name")
		wantProblem(t, callAs(t, admin, "PUT", base+orig.ID, map[string]any{"name": "x", "expires_at": exp}), http.StatusBadRequest, "role")
		if g := getKeyAs(t, m, admin, orig.ID); g.Name != "put" || g.Role != "developer" {
			t.Fatalf("a refused PUT changed the key: %+v", g)
		}
	})
	t.Run("UnknownKey", func(t *testing.T) {
		wantProblem(t, callAs(t, admin, "PATCH", base+uuid.Must(uuid.NewV7()).String(), map[string]any{"name": "x"}), http.StatusNotFound)
		wantProblem(t, callAs(t, admin, "PATCH", base+"not-a-uuid", map[string]any{"name": "x"}), http.StatusNotFound)
	})
}
