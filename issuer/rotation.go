package issuer

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/keymint/keymint/keys"
)

// VerifyLeeway is the clock skew keymint grants verifiers; a retiring key
// stays published for token_ttl plus this.
const VerifyLeeway = 30 * time.Second

// ListSigningKeys returns the org's signing keys (public parts only are
// ever shown) to a caller holding signing_keys:read.
func (s *Service) ListSigningKeys(ctx context.Context, p Principal) ([]keys.SigningKey, error) {
	if err := requireOrg(p, keys.PermSigningKeysRead); err != nil {
		return nil, err
	}
	ks, err := s.store.ListSigningKeys(ctx, p.Org)
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := ks[:0]
	for _, k := range ks {
		if k.Published(now) {
			out = append(out, k)
		}
	}
	return out, nil
}

// Rotation is the result of RotateSigningKeys.
type Rotation struct {
	Active   keys.SigningKey // now signing
	Next     keys.SigningKey // published, signs after the next rotation
	Retiring *keys.SigningKey
}

// RotateSigningKeys rotates p's org's signing keys without breaking any
// token: the pre-published next key starts signing (verifiers that cached
// the JWKS already know it), the active key retires and stays published
// until every token it signed has expired (token_ttl + VerifyLeeway), and
// a new next key is published. Retired keys past their window are
// dropped.
func (s *Service) RotateSigningKeys(ctx context.Context, p Principal) (Rotation, error) {
	if err := requireOrg(p, keys.PermSigningKeysAdmin); err != nil {
		return Rotation{}, err
	}
	org, err := s.org(ctx, p.Org)
	if err != nil {
		return Rotation{}, err
	}
	now := s.now().UTC().Truncate(time.Second)
	// Generate outside the transaction (RSA takes a while); the updater
	// only rearranges.
	fresh, err := GenerateSigningKey(s.master, org.ID, org.Alg, keys.SigningNext, now)
	if err != nil {
		return Rotation{}, err
	}
	var rot Rotation
	_, err = s.store.UpdateSigningKeys(ctx, org.ID, func(cur []keys.SigningKey) ([]keys.SigningKey, error) {
		rot = Rotation{}
		removeAfter := now.Add(time.Duration(org.Policy.TokenTTL) + VerifyLeeway)
		if u := org.LongerTTLTokensUntil; u != nil && u.Add(VerifyLeeway).After(removeAfter) {
			removeAfter = u.Add(VerifyLeeway) // tokens minted before token_ttl was lowered
		}
		out := make([]keys.SigningKey, 0, len(cur)+1)
		var promoted bool
		for _, k := range cur {
			if !k.Published(now) {
				continue // past its window: gone from the JWKS for good
			}
			switch k.Status {
			case keys.SigningActive:
				k.Status, k.RetiredAt, k.RemoveAfter = keys.SigningRetiring, &now, &removeAfter
				kk := k
				rot.Retiring = &kk
			case keys.SigningNext:
				if !promoted {
					k.Status, k.ActivatedAt = keys.SigningActive, &now
					rot.Active, promoted = k, true
				}
			}
			out = append(out, k)
		}
		next := fresh
		if !promoted {
			// No pre-published key (a store from before pre-publication):
			// the fresh key signs at once; verifiers refresh on its kid.
			next.Status, next.ActivatedAt = keys.SigningActive, &now
			rot.Active = next
		} else {
			rot.Next = next
		}
		out = append(out, next)
		sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
		return out, nil
	})
	if err != nil {
		return Rotation{}, fmt.Errorf("issuer: rotate signing keys of %q: %w", org.ID, err)
	}
	s.ring.Invalidate(org.ID)
	details := map[string]string{"active_kid": rot.Active.KID}
	if rot.Retiring != nil {
		details["retiring_kid"] = rot.Retiring.KID
		details["remove_after"] = rot.Retiring.RemoveAfter.Format(time.RFC3339)
	}
	s.audit(p, org.ID, keys.AuditSigningKeyRotate, "", details)
	return rot, nil
}
