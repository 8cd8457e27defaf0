package issuer

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/keymint/keymint/keys"
	"github.com/keymint/keymint/storage"
)

// Audit batching: events are written together at most auditInterval after
// the first of them, or as soon as auditBatch are waiting. A crash can lose
// at most one interval of events; the docs say so.
const (
	auditInterval = 100 * time.Millisecond
	auditBatch    = 256
	auditBuffer   = 8192
)

// auditLog writes audit events in batches from one goroutine, in the
// order they were recorded, so neither management calls nor failed
// exchanges wait for a write transaction.
type auditLog struct {
	store   storage.Store
	log     *slog.Logger
	events  chan keys.AuditEvent
	flushes chan chan struct{}
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	dropped atomic.Int64
}

func newAuditLog(store storage.Store, log *slog.Logger) *auditLog {
	a := &auditLog{
		store: store, log: log,
		events:  make(chan keys.AuditEvent, auditBuffer),
		flushes: make(chan chan struct{}),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go a.run()
	return a
}

// record queues ev. Under a flood that fills the buffer (failed exchanges
// from an attacker), events are dropped and counted rather than slowing
// every request down.
func (a *auditLog) record(ev keys.AuditEvent) {
	ev.ID = uuid.Must(uuid.NewV7()).String()
	select {
	case a.events <- ev:
	case <-a.stop:
	default:
		a.dropped.Add(1)
	}
}

// flush waits until every event recorded before the call is stored.
func (a *auditLog) flush() {
	ack := make(chan struct{})
	select {
	case a.flushes <- ack:
		<-ack
	case <-a.done:
	}
}

// close writes what is queued and stops the writer.
func (a *auditLog) close() {
	a.once.Do(func() { close(a.stop) })
	<-a.done
}

func (a *auditLog) run() {
	defer close(a.done)
	t := time.NewTicker(auditInterval)
	defer t.Stop()
	var batch []keys.AuditEvent
	write := func() {
		// Take whatever else is already queued, keeping order.
		for len(a.events) > 0 {
			batch = append(batch, <-a.events)
		}
		if len(batch) == 0 {
			return
		}
		if err := a.store.AppendAudit(context.Background(), batch); err != nil {
			a.log.Error("audit: write failed; events lost", "events", len(batch), "err", err)
		}
		batch = batch[:0]
	}
	for {
		select {
		case ev := <-a.events:
			batch = append(batch, ev)
			if len(batch) >= auditBatch {
				write()
			}
		case <-t.C:
			write()
		case ack := <-a.flushes:
			write()
			close(ack)
		case <-a.stop:
			write()
			return
		}
	}
}

// audit records an action of p.
func (s *Service) audit(p Principal, org, action, keyID string, details map[string]string) {
	s.auditLog.record(keys.AuditEvent{
		Org: org, Time: s.now().UTC(), Actor: p.Actor(), Action: action,
		KeyID: keyID, ClientIP: addrString(p.Addr), Details: details,
	})
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// AuditRequest pages and filters ListAudit.
type AuditRequest struct {
	KeyID  string
	Action string
	Limit  int // 1..200; 0 means 50
	After  string
}

// ListAudit returns a page of p's org's audit events, newest first, and
// whether more may follow.
func (s *Service) ListAudit(ctx context.Context, p Principal, req AuditRequest) ([]keys.AuditEvent, bool, error) {
	if err := requireOrg(p, keys.PermAuditRead); err != nil {
		return nil, false, err
	}
	switch {
	case req.Limit == 0:
		req.Limit = 50
	case req.Limit < 1 || req.Limit > 200:
		return nil, false, &keys.ValidationError{Fields: []*keys.FieldError{{Field: "limit", Message: "must be between 1 and 200"}}}
	}
	s.auditLog.flush() // read your own writes
	evs, err := s.store.ListAudit(ctx, p.Org, storage.AuditListOptions{
		After: req.After, Limit: req.Limit + 1, KeyID: req.KeyID, Action: req.Action,
	})
	if err != nil {
		return nil, false, err
	}
	more := len(evs) > req.Limit
	if more {
		evs = evs[:req.Limit]
	}
	return evs, more, nil
}

// Close writes the audit events and usage counts still in memory. Call it
// after the HTTP server has drained and before closing the store.
func (s *Service) Close() error {
	s.closeOnce.Do(func() { close(s.stopPrune) })
	<-s.pruneDone
	s.auditLog.close()
	return s.usage.close()
}
