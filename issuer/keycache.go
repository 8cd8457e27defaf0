package issuer

import (
	"context"
	"sync"

	"github.com/keymint/keymint/keys"
)

// keyCacheSize bounds the decoded API keys kept for the exchange.
const keyCacheSize = 10_000

// keyCache keeps recently exchanged API keys decoded, so the exchange
// neither opens a transaction nor decodes JSON for a busy key. Every write
// of a key goes through this Service, which drops the key from the cache
// after the write commits; a generation counter keeps a read that raced
// with a write from putting the old state back. (LastUsedAt may be stale
// here; authentication does not use it.)
type keyCache struct {
	mu   sync.RWMutex
	gen  uint64
	keys map[string]keys.APIKey
}

// authKey returns the key for authenticating a secret.
func (s *Service) authKey(ctx context.Context, id string) (keys.APIKey, error) {
	c := &s.keys
	c.mu.RLock()
	k, ok := c.keys[id]
	gen := c.gen
	c.mu.RUnlock()
	if ok {
		return k, nil
	}
	k, err := s.store.GetAPIKey(ctx, id)
	if err != nil {
		return keys.APIKey{}, err
	}
	c.mu.Lock()
	if c.gen == gen { // no write since the read began
		if len(c.keys) >= keyCacheSize {
			for evict := range c.keys { // an arbitrary victim
				delete(c.keys, evict)
				break
			}
		}
		c.keys[id] = k
	}
	c.mu.Unlock()
	return k, nil
}

// forgetKey drops a key from the cache after a write to it.
func (s *Service) forgetKey(id string) {
	c := &s.keys
	c.mu.Lock()
	c.gen++
	delete(c.keys, id)
	c.mu.Unlock()
}
