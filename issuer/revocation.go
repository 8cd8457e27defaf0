package issuer

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/keymint/keymint/keys"
	"github.com/keymint/keymint/storage"
)

// denyWindow is how long a revoked, disabled or deleted key must be
// remembered: no token outlives the longest token_ttl, plus verifier
// leeway.
const denyWindow = keys.MaxTokenTTL + time.Minute

// denyList holds, in memory, the keys whose already-issued tokens keymint's
// own endpoints must refuse: revoked, disabled or deleted within the last
// denyWindow. Checking it costs a map lookup under a read lock, no I/O.
type denyList struct {
	mu    sync.RWMutex
	since map[string]time.Time // key id → when it stopped being usable
}

// KeyUsable reports whether tokens of the key id may still be honoured by
// keymint's own endpoints.
func (s *Service) KeyUsable(id string) bool {
	s.deny.mu.RLock()
	_, denied := s.deny.since[id]
	s.deny.mu.RUnlock()
	return !denied
}

// noteKeyState records a key's new state after a change.
func (s *Service) noteKeyState(k keys.APIKey) {
	switch k.Status(s.now()) {
	case keys.StatusRevoked, keys.StatusDisabled:
		s.denyKey(k.ID)
	default:
		s.deny.mu.Lock()
		delete(s.deny.since, k.ID)
		s.deny.mu.Unlock()
	}
}

func (s *Service) denyKey(id string) {
	now := s.now()
	s.deny.mu.Lock()
	defer s.deny.mu.Unlock()
	s.deny.since[id] = now
	// Prune what no live token can refer to any more.
	for k, t := range s.deny.since {
		if now.Sub(t) > denyWindow {
			delete(s.deny.since, k)
		}
	}
}

// LoadRevocations fills the deny list from storage at start: keys revoked
// or disabled recently enough that their tokens may still be live, and
// keys deleted in that window.
func (s *Service) LoadRevocations(ctx context.Context) error {
	now := s.now()
	orgs, err := s.store.ListOrgs(ctx)
	if err != nil {
		return err
	}
	deleted, err := s.store.ListTombstones(ctx, now.Add(-denyWindow))
	if err != nil {
		return err
	}
	s.deny.mu.Lock()
	defer s.deny.mu.Unlock()
	for id, t := range deleted {
		s.deny.since[id] = t
	}
	for _, o := range orgs {
		_, err := s.store.ListAPIKeys(ctx, o.ID, storage.ListOptions{Filter: func(k keys.APIKey) bool {
			st := k.Status(now)
			if (st == keys.StatusRevoked || st == keys.StatusDisabled) && now.Sub(k.UpdatedAt) <= denyWindow {
				s.deny.since[k.ID] = k.UpdatedAt
			}
			return false // keep nothing in memory but the deny list
		}})
		if err != nil {
			return err
		}
	}
	return nil
}

func mustUUID(id string) uuid.UUID { return uuid.MustParse(id) }
