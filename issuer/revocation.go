package issuer

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/keymint/keymint/keys"
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

// LoadRevocations fills the deny list from storage at start: keys
// revoked, disabled or deleted recently enough that their tokens may still
// be live. It reads the store's small denial records, never every key.
func (s *Service) LoadRevocations(ctx context.Context) error {
	denied, err := s.store.ListDenials(ctx, s.now().Add(-denyWindow))
	if err != nil {
		return err
	}
	s.deny.mu.Lock()
	defer s.deny.mu.Unlock()
	for id, t := range denied {
		s.deny.since[id] = t
	}
	return nil
}

func mustUUID(id string) uuid.UUID { return uuid.MustParse(id) }
