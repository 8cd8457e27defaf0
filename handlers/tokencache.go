package handlers

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keymint/keymint/jwks"
)

// tokenCacheSize bounds the verified tokens kept.
const tokenCacheSize = 10_000

// verifiedTokens remembers tokens that passed verification, so a client
// that sends the same JWT with every call pays for one signature check,
// not one per call (for ES256, checking costs more than minting). A hit is
// the identical token string already verified; its expiry is checked on
// every use, and the caller still consults the deny list, so revocation
// stays immediate. Expired entries are dropped when found; the size is
// bounded by dropping arbitrary entries.
type verifiedTokens struct {
	verifier *jwks.Verifier
	now      func() time.Time
	tokens   sync.Map // token → *jwks.Claims
	size     atomic.Int64
	mu       sync.Mutex // serializes eviction
}

// verify returns the claims of token, from the cache or the verifier.
func (v *verifiedTokens) verify(ctx context.Context, token string) (*jwks.Claims, error) {
	if c, ok := v.tokens.Load(token); ok {
		claims := c.(*jwks.Claims)
		if v.now().Before(claims.ExpiresAt) {
			return claims, nil
		}
		if _, loaded := v.tokens.LoadAndDelete(token); loaded {
			v.size.Add(-1)
		}
	}
	claims, err := v.verifier.Verify(ctx, token)
	if err != nil {
		return nil, err
	}
	if v.size.Load() >= tokenCacheSize {
		v.evict()
	}
	if _, loaded := v.tokens.LoadOrStore(token, claims); !loaded {
		v.size.Add(1)
	}
	return claims, nil
}

// evict drops expired tokens, then arbitrary ones down to 90 % of the
// bound.
func (v *verifiedTokens) evict() {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.now()
	v.tokens.Range(func(k, c any) bool {
		if !now.Before(c.(*jwks.Claims).ExpiresAt) {
			v.tokens.Delete(k)
			v.size.Add(-1)
		}
		return true
	})
	v.tokens.Range(func(k, _ any) bool {
		if v.size.Load() < tokenCacheSize*9/10 {
			return false
		}
		v.tokens.Delete(k)
		v.size.Add(-1)
		return true
	})
}
