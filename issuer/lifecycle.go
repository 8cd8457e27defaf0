package issuer

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keymint/keymint/keys"
	"github.com/keymint/keymint/storage"
)

// ErrRevoked: a revoked key cannot change. It wraps storage.ErrConflict.
var ErrRevoked = fmt.Errorf("%w: the key is revoked and cannot change", storage.ErrConflict)

// Status filters of ListKeys beyond the key statuses themselves.
const StatusAll = "all"

// ListRequest pages and filters ListKeys.
type ListRequest struct {
	Status string // a keys.Status, or "all"; "" means active
	Query  string // case-insensitive substring of the name
	Limit  int    // 1..200; 0 means 50
	After  string // the last id of the previous page
}

// ListKeys returns a page of p's org's keys in id (creation) order and
// whether more may follow.
func (s *Service) ListKeys(ctx context.Context, p Principal, req ListRequest) ([]keys.APIKey, bool, error) {
	if err := requireOrg(p, keys.PermAPIKeysRead); err != nil {
		return nil, false, err
	}
	var v keys.ValidationError
	switch req.Status {
	case "":
		req.Status = string(keys.StatusActive)
	case string(keys.StatusActive), string(keys.StatusDisabled), string(keys.StatusExpired), string(keys.StatusRevoked), StatusAll:
	default:
		v.Add("status", "must be active, disabled, expired, revoked or all")
	}
	switch {
	case req.Limit == 0:
		req.Limit = 50
	case req.Limit < 1 || req.Limit > 200:
		v.Add("limit", "must be between 1 and 200")
	}
	if len(req.Query) > 200 {
		v.Add("q", "at most 200 characters")
	}
	if err := v.Err(); err != nil {
		return nil, false, err
	}
	now := s.now()
	q := strings.ToLower(req.Query)
	filter := func(k keys.APIKey) bool {
		if req.Status != StatusAll && string(k.Status(now)) != req.Status {
			return false
		}
		return q == "" || strings.Contains(strings.ToLower(k.Name), q)
	}
	// One extra tells whether there is a next page.
	ks, err := s.store.ListAPIKeys(ctx, p.Org, storage.ListOptions{After: req.After, Limit: req.Limit + 1, Filter: filter})
	if err != nil {
		return nil, false, err
	}
	more := len(ks) > req.Limit
	if more {
		ks = ks[:req.Limit]
	}
	return ks, more, nil
}

func requireOrg(p Principal, perm keys.Scope) error {
	if p.Root {
		return fmt.Errorf("%w: the root key manages orgs; use an org's API key", ErrForbidden)
	}
	if !p.Allows(perm) {
		return fmt.Errorf("%w: %s required", ErrForbidden, perm)
	}
	return nil
}

// KeyPatch changes a key. Nil fields stay as they are; ExpiresAtSet with
// a nil ExpiresAt removes the expiry.
type KeyPatch struct {
	Name         *string
	Role         *string
	Scopes       []string
	ScopesSet    bool
	AllowedCIDRs []string
	CIDRsSet     bool
	Enabled      *bool
	ExpiresAt    *time.Time
	ExpiresAtSet bool
}

// Updated is the result of UpdateKey.
type Updated struct {
	Key      keys.APIKey
	Warnings []string
}

// UpdateKey applies patch to a key of p's org. Errors: ErrForbidden when p
// lacks api_keys:write, when the key's current effective scopes exceed
// p's (acting on a wider key), or when the new ones would; ErrRevoked;
// *keys.ValidationError; storage.ErrNotFound (also for another org's key).
func (s *Service) UpdateKey(ctx context.Context, p Principal, id string, patch KeyPatch) (Updated, error) {
	if err := requireOrg(p, keys.PermAPIKeysWrite); err != nil {
		return Updated{}, err
	}
	org, err := s.org(ctx, p.Org)
	if err != nil {
		return Updated{}, err
	}
	var warnings []string
	var changes map[string]string
	var wasEnabled bool
	k, err := s.updateOwnKey(ctx, p, id, func(k keys.APIKey, now time.Time) (keys.APIKey, error) {
		if k.RevokedAt != nil {
			return k, ErrRevoked
		}
		wasEnabled = k.Enabled
		spec := keys.KeySpec{Name: k.Name, Type: k.Type, Role: k.Role, Scopes: k.Scopes,
			AllowedCIDRs: k.AllowedCIDRs, ExpiresAt: k.ExpiresAt, Claims: k.Claims}
		if patch.Name != nil {
			spec.Name = *patch.Name
		}
		if patch.Role != nil {
			spec.Role = *patch.Role
		}
		if patch.ScopesSet {
			spec.Scopes = patch.Scopes
		}
		if patch.CIDRsSet {
			spec.AllowedCIDRs = patch.AllowedCIDRs
		}
		if patch.ExpiresAtSet {
			spec.ExpiresAt = patch.ExpiresAt
		}
		spec = spec.Normalized()
		// A new expiry must lie in the future; an unchanged past one may
		// stay (the key is simply expired).
		expiryChanged := patch.ExpiresAtSet && !timesEqual(patch.ExpiresAt, k.ExpiresAt)
		w, err := spec.Validate(org.Policy, now, expiryChanged)
		if err != nil {
			return k, err
		}
		own, _ := keys.ParseScopes(spec.Scopes)
		if !p.Scopes.Covers(keys.EffectiveScopes(spec.Role, own)) {
			return k, fmt.Errorf("%w: the key's new effective scopes exceed the caller's", ErrForbidden)
		}
		warnings = warnings[:0]
		if !slices.Equal(spec.Scopes, k.Scopes) || spec.Role != k.Role {
			warnings = append(warnings, "scopes changed: tokens already issued keep their old scopes until they expire (at most the org's token_ttl)")
		}
		if !slices.Equal(spec.AllowedCIDRs, k.AllowedCIDRs) {
			warnings = append(warnings, "allowed_cidrs changed: they apply to the next exchange; tokens already issued stay valid until they expire")
			warnings = append(warnings, w...)
		}
		changes = diffKey(k, spec)
		k.Name, k.Role, k.Scopes, k.AllowedCIDRs, k.ExpiresAt = spec.Name, spec.Role, spec.Scopes, spec.AllowedCIDRs, spec.ExpiresAt
		if patch.Enabled != nil {
			k.Enabled = *patch.Enabled
		}
		return k, nil
	})
	if err != nil {
		return Updated{}, err
	}
	if len(changes) > 0 {
		s.audit(p, k.Org, keys.AuditKeyUpdate, k.ID, changes)
	}
	if wasEnabled != k.Enabled {
		action := keys.AuditKeyDisable
		if k.Enabled {
			action = keys.AuditKeyEnable
		}
		s.audit(p, k.Org, action, k.ID, nil)
	}
	return Updated{Key: k, Warnings: warnings}, nil
}

// diffKey describes what an update changes, for the audit log.
func diffKey(k keys.APIKey, spec keys.KeySpec) map[string]string {
	d := map[string]string{}
	if k.Name != spec.Name {
		d["name"] = spec.Name
	}
	if k.Role != spec.Role {
		d["role"] = spec.Role
	}
	if !slices.Equal(k.Scopes, spec.Scopes) {
		d["scopes"] = strings.Join(spec.Scopes, " ")
	}
	if !slices.Equal(k.AllowedCIDRs, spec.AllowedCIDRs) {
		d["allowed_cidrs"] = strings.Join(spec.AllowedCIDRs, " ")
	}
	if !timesEqual(k.ExpiresAt, spec.ExpiresAt) {
		d["expires_at"] = "never"
		if spec.ExpiresAt != nil {
			d["expires_at"] = spec.ExpiresAt.Format(time.RFC3339)
		}
	}
	return d
}

func timesEqual(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// updateOwnKey runs fn on a key of p's org in one transaction, after the
// checks every action on an existing key shares: the key is in p's org
// (else storage.ErrNotFound) and p's scopes cover the key's (else
// ErrForbidden: acting on a wider key would let a developer roll, and so
// obtain, the admin key's secret). It stamps updated_by and updated_at.
func (s *Service) updateOwnKey(ctx context.Context, p Principal, id string, fn func(keys.APIKey, time.Time) (keys.APIKey, error)) (keys.APIKey, error) {
	now := s.now().UTC().Truncate(time.Second)
	defer s.forgetKey(id) // after the write, whatever its outcome
	k, err := s.store.UpdateAPIKey(ctx, id, func(k keys.APIKey) (keys.APIKey, error) {
		if err := checkOwnKey(p, k); err != nil {
			return k, err
		}
		k, err := fn(k, now)
		if err != nil {
			return k, err
		}
		k.UpdatedBy, k.UpdatedAt = p.Actor(), now
		return k, nil
	})
	if err != nil {
		return keys.APIKey{}, err
	}
	s.noteKeyState(k)
	return k, nil
}

func checkOwnKey(p Principal, k keys.APIKey) error {
	if k.Org != p.Org {
		return fmt.Errorf("issuer: key %q: %w", k.ID, storage.ErrNotFound)
	}
	if !p.Scopes.Covers(k.EffectiveScopes()) {
		return fmt.Errorf("%w: the key's scopes exceed the caller's", ErrForbidden)
	}
	return nil
}

// RevokeKey revokes a key for good. Revoking a revoked key changes nothing
// and succeeds, so automation can retry.
func (s *Service) RevokeKey(ctx context.Context, p Principal, id string) (keys.APIKey, error) {
	if err := requireOrg(p, keys.PermAPIKeysWrite); err != nil {
		return keys.APIKey{}, err
	}
	k, err := s.updateOwnKey(ctx, p, id, func(k keys.APIKey, now time.Time) (keys.APIKey, error) {
		if k.RevokedAt == nil {
			k.RevokedAt = &now
		}
		k.PrevSecretHash, k.PrevSecretUntil = nil, nil
		return k, nil
	})
	if err != nil {
		return keys.APIKey{}, err
	}
	s.audit(p, k.Org, keys.AuditKeyRevoke, k.ID, nil)
	return k, nil
}

// DefaultRollGrace is how long a rolled key's old secret keeps working.
const DefaultRollGrace = 24 * time.Hour

// MaxRollGrace bounds the grace window of a roll.
const MaxRollGrace = 30 * 24 * time.Hour

// Rolled is the result of RollKey; Secret is shown once.
type Rolled struct {
	Key    keys.APIKey
	Secret keys.Secret
}

// RollKey gives a key a new secret. The old one keeps working for grace
// (0 ends it at once). A revoked key cannot roll (ErrRevoked).
func (s *Service) RollKey(ctx context.Context, p Principal, id string, grace time.Duration) (Rolled, error) {
	if err := requireOrg(p, keys.PermAPIKeysWrite); err != nil {
		return Rolled{}, err
	}
	if grace < 0 || grace > MaxRollGrace {
		return Rolled{}, &keys.ValidationError{Fields: []*keys.FieldError{{Field: "grace_seconds", Message: fmt.Sprintf("must be between 0 and %d", int(MaxRollGrace/time.Second))}}}
	}
	var secret keys.Secret
	k, err := s.updateOwnKey(ctx, p, id, func(k keys.APIKey, now time.Time) (keys.APIKey, error) {
		if k.RevokedAt != nil {
			return k, ErrRevoked
		}
		var err error
		if secret, err = keys.NewSecret(k.Type, mustUUID(k.ID), s.rand); err != nil {
			return k, err
		}
		k.PrevSecretHash, k.PrevSecretUntil = nil, nil
		if grace > 0 {
			until := now.Add(grace)
			k.PrevSecretHash, k.PrevSecretUntil = k.SecretHash, &until
		}
		k.SecretHash = s.hasher.Hash(secret)
		k.MaskedValue = secret.Masked()
		return k, nil
	})
	if err != nil {
		return Rolled{}, err
	}
	s.audit(p, k.Org, keys.AuditKeyRoll, k.ID, map[string]string{"grace_seconds": strconv.Itoa(int(grace / time.Second))})
	return Rolled{Key: k, Secret: secret}, nil
}

// DeleteKey removes a key of p's org.
func (s *Service) DeleteKey(ctx context.Context, p Principal, id string) (keys.APIKey, error) {
	if err := requireOrg(p, keys.PermAPIKeysWrite); err != nil {
		return keys.APIKey{}, err
	}
	var k keys.APIKey
	defer s.forgetKey(id)
	err := s.store.DeleteAPIKey(ctx, id, func(cur keys.APIKey) error {
		k = cur
		return checkOwnKey(p, cur)
	})
	if err != nil {
		return keys.APIKey{}, err
	}
	s.denyKey(k.ID)
	s.audit(p, k.Org, keys.AuditKeyDelete, k.ID, map[string]string{"name": k.Name})
	return k, nil
}
