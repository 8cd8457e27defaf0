package keys_test

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keymint/keymint/keys"
)

func newSecret(tb testing.TB, t keys.KeyType) (keys.Secret, uuid.UUID) {
	tb.Helper()
	id := uuid.Must(uuid.NewV7())
	s, err := keys.NewSecret(t, id, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return s, id
}

func TestSecret(t *testing.T) {
	t.Run("RoundTrip", func(t *testing.T) {
		for _, typ := range []keys.KeyType{keys.TypeSecret, keys.TypePublishable} {
			s, id := newSecret(t, typ)
			if got, want := len(s.String()), keys.SecretLen; got != want {
				t.Fatalf("len=%d, want %d", got, want)
			}
			if !strings.HasPrefix(s.String(), "km_"+string(typ)+"_") {
				t.Fatalf("secret %q lacks its prefix", s.Masked())
			}
			p, err := keys.ParseSecret(s.String())
			if err != nil {
				t.Fatal(err)
			}
			if got, want := p.KeyID, id.String(); got != want {
				t.Fatalf("KeyID=%s, want %s", got, want)
			}
			if got, want := p.Type, typ; got != want {
				t.Fatalf("Type=%s, want %s", got, want)
			}
		}
	})
	t.Run("Unique", func(t *testing.T) {
		a, _ := newSecret(t, keys.TypeSecret)
		b, _ := newSecret(t, keys.TypeSecret)
		if a.String() == b.String() {
			t.Fatal("two secrets are equal")
		}
	})
	t.Run("URLSafe", func(t *testing.T) {
		s, _ := newSecret(t, keys.TypeSecret)
		for _, c := range s.String() {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				t.Fatalf("secret holds %q, not URL-safe", c)
			}
		}
	})
	t.Run("ErrBadChecksum", func(t *testing.T) {
		s, _ := newSecret(t, keys.TypeSecret)
		b := []byte(s.String())
		i := len(b) - 20 // inside the random part
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		_, err := keys.ParseSecret(string(b))
		if !errors.Is(err, keys.ErrBadChecksum) || !errors.Is(err, keys.ErrMalformedSecret) {
			t.Fatalf("err=%v, want ErrBadChecksum and ErrMalformedSecret", err)
		}
	})
	t.Run("ErrPrefixSwap", func(t *testing.T) {
		// The checksum covers the prefix: a secret key relabelled as
		// publishable does not parse.
		s, _ := newSecret(t, keys.TypeSecret)
		swapped := "km_pk_" + strings.TrimPrefix(s.String(), "km_sk_")
		if _, err := keys.ParseSecret(swapped); !errors.Is(err, keys.ErrBadChecksum) {
			t.Fatalf("err=%v, want ErrBadChecksum", err)
		}
	})
	t.Run("ErrMalformed", func(t *testing.T) {
		s, _ := newSecret(t, keys.TypeSecret)
		for _, in := range []string{"", "km_sk_", "hello", s.String() + "A", s.String()[:len(s.String())-1],
			"km_xx_" + s.String()[6:], strings.Replace(s.String(), s.String()[10:11], "!", 1)} {
			if _, err := keys.ParseSecret(in); !errors.Is(err, keys.ErrMalformedSecret) {
				t.Errorf("ParseSecret(%q) err=%v, want ErrMalformedSecret", in, err)
			}
		}
	})
	t.Run("Masked", func(t *testing.T) {
		s, _ := newSecret(t, keys.TypeSecret)
		m := s.Masked()
		if got, want := m, "km_sk_…"+s.String()[len(s.String())-4:]; got != want {
			t.Fatalf("Masked=%q, want %q", got, want)
		}
	})
}

func TestHasher(t *testing.T) {
	h, err := keys.NewHasher(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := keys.NewHasher(bytes.Repeat([]byte{2}, 32))
	s, _ := newSecret(t, keys.TypeSecret)
	s2, _ := newSecret(t, keys.TypeSecret)
	sum := h.Hash(s)
	if !h.Equal(s, sum) {
		t.Fatal("Equal(s, Hash(s)) = false")
	}
	if h.Equal(s2, sum) {
		t.Fatal("another secret matched")
	}
	if other.Equal(s, sum) {
		t.Fatal("a hash under another pepper matched")
	}
	if h.Equal(s, nil) {
		t.Fatal("an empty stored hash matched")
	}
	if _, err := keys.NewHasher([]byte("short")); err == nil {
		t.Fatal("short pepper accepted")
	}
}

func TestSecretMatchesRollWindow(t *testing.T) {
	h, _ := keys.NewHasher(bytes.Repeat([]byte{1}, 32))
	id := uuid.Must(uuid.NewV7())
	old, _ := keys.NewSecret(keys.TypeSecret, id, nil)
	cur, _ := keys.NewSecret(keys.TypeSecret, id, nil)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	until := now.Add(time.Hour)
	k := keys.APIKey{ID: id.String(), SecretHash: h.Hash(cur), PrevSecretHash: h.Hash(old), PrevSecretUntil: &until}
	if !k.SecretMatches(h, cur, now) || !k.SecretMatches(h, old, now) {
		t.Fatal("inside the window both secrets must match")
	}
	if k.SecretMatches(h, old, until) {
		t.Fatal("the old secret matched after its window")
	}
	other, _ := newSecret(t, keys.TypeSecret)
	if k.SecretMatches(h, other, now) {
		t.Fatal("another key's secret matched")
	}
}

func TestScopeMatches(t *testing.T) {
	for _, tt := range []struct {
		scope, perm string
		want        bool
	}{
		{"devices:read", "devices:read", true},
		{"devices:read", "devices/42:read", true},
		{"devices:read", "devices:write", false},
		{"devices/42:read", "devices:read", false},
		{"sites/*/devices:write", "sites/eu1/devices/7:write", true},
		{"sites/*/devices:write", "sites/eu1/routers/7:write", false},
		{"*:read", "anything/at/all:read", true},
		{"*:read", "x:write", false},
		{"*:*", "api_keys:write", true},
		{"devices:*", "devices/1:delete", true},
		{"devices:read", "device:read", false},
		// Wildcards in the right-hand side are only granted by wildcards.
		{"devices:read", "*:read", false},
		{"devices:read", "devices:*", false},
		{"*:*", "*:*", true},
		{"*:read", "*:read", true},
	} {
		s, p := keys.MustParseScope(tt.scope), keys.MustParseScope(tt.perm)
		if got := s.Matches(p); got != tt.want {
			t.Errorf("%s grants %s = %v, want %v", tt.scope, tt.perm, got, tt.want)
		}
	}
}

func TestParseScope(t *testing.T) {
	for _, ok := range []string{"a:b", "devices/42:read", "*:*", "sites/*/x.y-z_1:write", "api_keys:read"} {
		s, err := keys.ParseScope(ok)
		if err != nil {
			t.Errorf("ParseScope(%q): %v", ok, err)
			continue
		}
		if got := s.String(); got != ok {
			t.Errorf("String()=%q, want %q", got, ok)
		}
	}
	for _, bad := range []string{"", ":", "a", "a:", ":b", "A:read", "a:Read", "a//b:read", "a/:read", "a:b:c", "a b:read", "a:re-ad", "**:read", "a:*x"} {
		if _, err := keys.ParseScope(bad); !errors.Is(err, keys.ErrInvalidScope) {
			t.Errorf("ParseScope(%q) err=%v, want ErrInvalidScope", bad, err)
		}
	}
}

func TestCovers(t *testing.T) {
	dev, _ := keys.RoleScopes("developer")
	admin, _ := keys.RoleScopes("admin")
	viewer, _ := keys.RoleScopes("viewer")
	if !admin.Covers(dev) || !dev.Covers(viewer) {
		t.Fatal("admin ⊇ developer ⊇ viewer")
	}
	if dev.Covers(admin) || viewer.Covers(dev) {
		t.Fatal("escalation allowed")
	}
	if dev.Covers(keys.Scopes{keys.PermSigningKeysAdmin}) {
		t.Fatal("developer covers signing_keys:admin")
	}
	own := keys.Scopes{keys.MustParseScope("devices:write")}
	if !keys.EffectiveScopes("viewer", own).Covers(keys.Scopes{keys.MustParseScope("devices/1:write")}) {
		t.Fatal("effective scopes must include the key's own")
	}
}

func TestStatus(t *testing.T) {
	now := time.Now()
	past, future := now.Add(-time.Hour), now.Add(time.Hour)
	for _, tt := range []struct {
		name string
		k    keys.APIKey
		want keys.Status
	}{
		{"Active", keys.APIKey{Enabled: true, ExpiresAt: &future}, keys.StatusActive},
		{"NoExpiry", keys.APIKey{Enabled: true}, keys.StatusActive},
		{"Disabled", keys.APIKey{Enabled: false, ExpiresAt: &future}, keys.StatusDisabled},
		{"Expired", keys.APIKey{Enabled: true, ExpiresAt: &past}, keys.StatusExpired},
		{"RevokedWins", keys.APIKey{Enabled: false, ExpiresAt: &past, RevokedAt: &past}, keys.StatusRevoked},
	} {
		if got := tt.k.Status(now); got != tt.want {
			t.Errorf("%s: Status=%s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestKeySpecValidate(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	pol := keys.DefaultPolicy()
	in30d := now.Add(30 * 24 * time.Hour)
	ok := keys.KeySpec{Name: " ci ", Type: keys.TypeSecret, Role: "viewer", ExpiresAt: &in30d}
	if _, err := ok.Normalized().Validate(pol, now, true); err != nil {
		t.Fatalf("valid spec refused: %v", err)
	}
	past := now.Add(-time.Hour)
	tooLate := now.Add(400 * 24 * time.Hour)
	for _, tt := range []struct {
		name  string
		edit  func(*keys.KeySpec)
		field string
	}{
		{"EmptyName", func(s *keys.KeySpec) { s.Name = "   " }, "name"},
		{"ControlChar", func(s *keys.KeySpec) { s.Name = "a\x07b" }, "name"},
		{"LongName", func(s *keys.KeySpec) { s.Name = strings.Repeat("é", 201) }, "name"},
		{"UnknownRole", func(s *keys.KeySpec) { s.Role = "root" }, "role"},
		{"BadScope", func(s *keys.KeySpec) { s.Scopes = []string{"Devices:read"} }, "scopes[0]"},
		{"TooManyScopes", func(s *keys.KeySpec) {
			for i := 0; i < 51; i++ {
				s.Scopes = append(s.Scopes, "a:read")
			}
		}, "scopes"},
		{"PKWrite", func(s *keys.KeySpec) { s.Type = keys.TypePublishable; s.Scopes = []string{"devices:write"} }, "scopes[0]"},
		{"PKDeveloper", func(s *keys.KeySpec) { s.Type = keys.TypePublishable; s.Role = "developer" }, "role"},
		{"BadType", func(s *keys.KeySpec) { s.Type = "xx" }, "type"},
		{"BadCIDR", func(s *keys.KeySpec) { s.AllowedCIDRs = []string{"10.0.0.0/33"} }, "allowed_cidrs[0]"},
		{"NoExpiry", func(s *keys.KeySpec) { s.ExpiresAt = nil }, "expires_at"},
		{"PastExpiry", func(s *keys.KeySpec) { s.ExpiresAt = &past }, "expires_at"},
		{"BeyondLifetime", func(s *keys.KeySpec) { s.ExpiresAt = &tooLate }, "expires_at"},
		{"ReservedClaim", func(s *keys.KeySpec) { s.Claims = []byte(`{"sub":"x"}`) }, "claims.sub"},
		{"ClaimsNotObject", func(s *keys.KeySpec) { s.Claims = []byte(`[1]`) }, "claims"},
		{"ClaimsTooBig", func(s *keys.KeySpec) { s.Claims = []byte(`{"a":"` + strings.Repeat("x", 2100) + `"}`) }, "claims"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := ok
			tt.edit(&s)
			_, err := s.Normalized().Validate(pol, now, true)
			var ve *keys.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err=%v, want *ValidationError", err)
			}
			if !errors.Is(err, keys.ErrInvalid) {
				t.Fatal("validation errors must match ErrInvalid")
			}
			found := false
			for _, f := range ve.Fields {
				found = found || f.Field == tt.field
			}
			if !found {
				t.Fatalf("fields=%v, want %q among them", ve, tt.field)
			}
		})
	}
	t.Run("UnicodeKept", func(t *testing.T) {
		s := ok
		s.Name = "  Zürich 東京 🚀  "
		n := s.Normalized()
		if got, want := n.Name, "Zürich 東京 🚀"; got != want {
			t.Fatalf("name=%q, want %q", got, want)
		}
	})
	t.Run("WildcardCIDRWarns", func(t *testing.T) {
		s := ok
		s.AllowedCIDRs = []string{"0.0.0.0/0", "::/0"}
		w, err := s.Normalized().Validate(pol, now, true)
		if err != nil || len(w) != 2 {
			t.Fatalf("warnings=%v err=%v, want 2 warnings", w, err)
		}
	})
}

func TestAllowedFrom(t *testing.T) {
	cidrs := []string{"10.0.0.0/8", "2001:db8::/32"}
	for _, tt := range []struct {
		addr string
		want bool
	}{
		{"10.1.2.3", true},
		{"::ffff:10.1.2.3", true}, // IPv4-mapped is IPv4
		{"11.0.0.1", false},
		{"2001:db8::1", true},
		{"2001:db9::1", false},
	} {
		if got := keys.AllowedFrom(cidrs, netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("AllowedFrom(%s)=%v, want %v", tt.addr, got, tt.want)
		}
	}
	if !keys.AllowedFrom(nil, netip.MustParseAddr("1.2.3.4")) {
		t.Error("empty list must allow all")
	}
	// IPv4 wildcard does not open IPv6, and vice versa.
	if keys.AllowedFrom([]string{"0.0.0.0/0"}, netip.MustParseAddr("::1")) {
		t.Error("0.0.0.0/0 allowed an IPv6 address")
	}
}

func TestPolicyValidate(t *testing.T) {
	p := keys.DefaultPolicy()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	ttl := keys.Duration(25 * time.Hour)
	bad := keys.PolicyPatch{TokenTTL: &ttl}.Apply(p)
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "policy.token_ttl") {
		t.Fatalf("err=%v, want policy.token_ttl", err)
	}
}
