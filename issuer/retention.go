package issuer

import (
	"context"
	"time"
)

// DefaultRetention is how long audit events and usage days are kept
// unless Config.Retention says otherwise.
const DefaultRetention = 400 * 24 * time.Hour

// retentionEvery is how often old audit events and usage days are pruned.
const retentionEvery = time.Hour

// prune deletes audit events and usage days older than the retention,
// in bounded transactions.
func (s *Service) prune(ctx context.Context) {
	before := s.now().Add(-s.retention)
	for _, p := range []struct {
		what string
		fn   func(context.Context, time.Time) (int, error)
	}{{"audit events", s.store.PruneAudit}, {"usage days", s.store.PruneUsage}} {
		total := 0
		for {
			n, err := p.fn(ctx, before)
			if err != nil {
				s.log.Error("retention: prune failed", "what", p.what, "err", err)
				break
			}
			if total += n; n == 0 {
				break
			}
		}
		if total > 0 {
			s.log.Info("retention: pruned", "what", p.what, "count", total, "before", before.Format(time.RFC3339))
		}
	}
}

// runRetention prunes at start and then every retentionEvery until stop.
func (s *Service) runRetention(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(retentionEvery)
	defer t.Stop()
	for {
		s.prune(context.Background())
		select {
		case <-t.C:
		case <-stop:
			return
		}
	}
}
