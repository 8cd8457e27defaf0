package issuer

import (
	"context"
	"sync"

	"github.com/keymint/keymint/keys"
)

// orgCache keeps decoded orgs in memory: the exchange needs the org's
// policy on every call, and orgs change only through this Service, which
// refreshes the cache on each write. (bbolt's file lock means no other
// process writes the same database.)
type orgCache struct {
	mu   sync.RWMutex
	orgs map[string]keys.Org
}

// org returns the org from memory, reading the store on a miss.
func (s *Service) org(ctx context.Context, id string) (keys.Org, error) {
	s.orgs.mu.RLock()
	o, ok := s.orgs.orgs[id]
	s.orgs.mu.RUnlock()
	if ok {
		return o, nil
	}
	o, err := s.store.GetOrg(ctx, id)
	if err != nil {
		return keys.Org{}, err
	}
	s.cacheOrg(o)
	return o, nil
}

// cacheOrg records o as the org's current state after a read or a write.
func (s *Service) cacheOrg(o keys.Org) {
	s.orgs.mu.Lock()
	s.orgs.orgs[o.ID] = o
	s.orgs.mu.Unlock()
}
