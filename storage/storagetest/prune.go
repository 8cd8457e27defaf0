package storagetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keymint/keymint/keys"
	"github.com/keymint/keymint/storage"
)

// auditEventAt is an audit event whose UUIDv7 id carries time t.
func auditEventAt(tb testing.TB, org string, t time.Time) keys.AuditEvent {
	tb.Helper()
	id := uuid.Must(uuid.NewV7())
	ms := t.UnixMilli()
	for i := 0; i < 6; i++ { // the first 48 bits are the milliseconds
		id[i] = byte(ms >> (40 - 8*i))
	}
	return keys.AuditEvent{ID: id.String(), Org: org, Time: t.UTC(), Actor: "root", Action: keys.AuditKeyCreate}
}

// testPrune checks that PruneAudit and PruneUsage delete exactly what is
// older than the cutoff, in every org, and nothing else.
func testPrune(t *testing.T, s storage.Store) {
	ctx := context.Background()
	now := time.Now().UTC()
	cutoff := now.Add(-30 * 24 * time.Hour)
	var keep []string
	for _, org := range []string{"acme", "acme-2", "zeta"} {
		for _, age := range []time.Duration{400, 40, 31} {
			mustAppendAudit(t, s, auditEventAt(t, org, now.Add(-age*24*time.Hour)))
		}
		for _, age := range []time.Duration{29, 1} {
			e := auditEventAt(t, org, now.Add(-age*24*time.Hour))
			mustAppendAudit(t, s, e)
			keep = append(keep, e.ID)
		}
	}
	n, err := s.PruneAudit(ctx, cutoff)
	if err != nil || n != 9 {
		t.Fatalf("PruneAudit=%d, %v; want 9 deleted", n, err)
	}
	var left []string
	for _, org := range []string{"acme", "acme-2", "zeta"} {
		left = append(left, eventIDs(mustListAudit(t, s, org, storage.AuditListOptions{}))...)
	}
	if len(left) != len(keep) {
		t.Fatalf("audit left %d events, want %d", len(left), len(keep))
	}
	if n, err := s.PruneAudit(ctx, cutoff); err != nil || n != 0 {
		t.Fatalf("second PruneAudit=%d, %v; want 0", n, err)
	}

	var days []keys.UsageDay
	for _, age := range []int{60, 31, 30, 2} {
		days = append(days, keys.UsageDay{Org: "acme", KeyID: "k", Date: keys.UsageDate(now.AddDate(0, 0, -age)), Exchanges: 1})
	}
	if err := s.AddUsage(ctx, days, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PruneUsage(ctx, now.AddDate(0, 0, -30)); err != nil || n != 2 {
		t.Fatalf("PruneUsage=%d, %v; want 2 deleted", n, err)
	}
	got, err := s.ListUsage(ctx, "acme", "", keys.UsageDate(now.AddDate(0, 0, -90)), keys.UsageDate(now))
	if err != nil || len(got) != 2 || got[0].Date != keys.UsageDate(now.AddDate(0, 0, -30)) {
		t.Fatalf("usage left %+v, %v; want the days 30 and 2 days ago", got, err)
	}
}
