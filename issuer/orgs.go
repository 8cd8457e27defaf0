package issuer

import (
	"context"
	"fmt"
	"time"

	"github.com/keymint/keymint/keys"
	"github.com/keymint/keymint/storage"
)

// OrgPatch changes an org's name and policy; nil fields stay.
type OrgPatch struct {
	Name   *string
	Policy keys.PolicyPatch
}

// ListOrgs returns every org to root, and the caller's own org to a
// caller holding org:read.
func (s *Service) ListOrgs(ctx context.Context, p Principal) ([]keys.Org, error) {
	if p.Root {
		return s.store.ListOrgs(ctx)
	}
	if !p.Allows(keys.PermOrgRead) {
		return nil, fmt.Errorf("%w: org:read required", ErrForbidden)
	}
	o, err := s.org(ctx, p.Org)
	if err != nil {
		return nil, err
	}
	return []keys.Org{o}, nil
}

// ReadOrg returns org id to root, or to a caller of that org holding
// org:read; another org is storage.ErrNotFound.
func (s *Service) ReadOrg(ctx context.Context, p Principal, id string) (keys.Org, error) {
	if !p.Root && p.Org != id {
		return keys.Org{}, fmt.Errorf("issuer: org %q: %w", id, storage.ErrNotFound)
	}
	if !p.Root && !p.Allows(keys.PermOrgRead) {
		return keys.Org{}, fmt.Errorf("%w: org:read required", ErrForbidden)
	}
	return s.org(ctx, id)
}

// UpdateOrg changes an org. Root may set any policy, and what it sets for
// max_keys and max_key_lifetime become the org's operator limits. An org
// admin (org:admin) may change the rest, tighten max_keys and
// max_key_lifetime but not raise them past the operator limits, and turn
// require_expiry on but not off.
func (s *Service) UpdateOrg(ctx context.Context, p Principal, id string, patch OrgPatch) (keys.Org, error) {
	if !p.Root && p.Org != id {
		return keys.Org{}, fmt.Errorf("issuer: org %q: %w", id, storage.ErrNotFound)
	}
	if !p.Root && !p.Allows(keys.PermOrgAdmin) {
		return keys.Org{}, fmt.Errorf("%w: org:admin required", ErrForbidden)
	}
	now := s.now().UTC().Truncate(time.Second)
	o, err := s.store.UpdateOrg(ctx, id, func(o keys.Org) (keys.Org, error) {
		if patch.Name != nil {
			o.Name = keys.NormalizeName(*patch.Name)
		}
		pp := patch.Policy
		if !p.Root {
			var v keys.ValidationError
			if pp.MaxKeys != nil && *pp.MaxKeys > o.Limits.MaxKeys {
				v.Add("policy.max_keys", "may not exceed the operator's limit of %d", o.Limits.MaxKeys)
			}
			if pp.MaxKeyLifetime != nil && *pp.MaxKeyLifetime > o.Limits.MaxKeyLifetime {
				v.Add("policy.max_key_lifetime", "may not exceed the operator's limit of %s", time.Duration(o.Limits.MaxKeyLifetime))
			}
			if pp.RequireExpiry != nil && !*pp.RequireExpiry && o.Policy.RequireExpiry {
				v.Add("policy.require_expiry", "only the operator may turn it off")
			}
			if err := v.Err(); err != nil {
				return o, err
			}
		}
		oldTTL := time.Duration(o.Policy.TokenTTL)
		o.Policy = pp.Apply(o.Policy)
		if time.Duration(o.Policy.TokenTTL) < oldTTL {
			// Tokens already minted keep their longer lifetime.
			if until := now.Add(oldTTL); o.LongerTTLTokensUntil == nil || until.After(*o.LongerTTLTokensUntil) {
				o.LongerTTLTokensUntil = &until
			}
		}
		if p.Root {
			o.Limits = keys.Limits{MaxKeys: o.Policy.MaxKeys, MaxKeyLifetime: o.Policy.MaxKeyLifetime}
		}
		o.UpdatedAt = now
		return o, o.Validate()
	})
	if err != nil {
		return keys.Org{}, err
	}
	s.cacheOrg(o)
	s.audit(p, o.ID, keys.AuditOrgUpdate, "", nil)
	return o, nil
}
