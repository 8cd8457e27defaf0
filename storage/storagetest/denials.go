package storagetest

import (
	"context"
	"testing"
	"time"

	"github.com/keymint/keymint/keys"
	"github.com/keymint/keymint/storage"
)

func mustListDenials(tb testing.TB, s storage.Store, since time.Time) map[string]time.Time {
	tb.Helper()
	d, err := s.ListDenials(context.Background(), since)
	if err != nil {
		tb.Fatalf("ListDenials: %v", err)
	}
	return d
}

// testDenials checks that ListDenials follows keys as they are revoked,
// disabled, enabled again and deleted, and honours since.
func testDenials(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustCreateOrg(t, s, "acme", 10)
	ks := mustCreateAPIKeys(t, s, "acme", 4)
	start := time.Now().Add(-time.Second)
	if got := mustListDenials(t, s, start); len(got) != 0 {
		t.Fatalf("ListDenials of fresh keys=%v, want none", got)
	}
	update := func(id string, fn func(*keys.APIKey)) {
		t.Helper()
		if _, err := s.UpdateAPIKey(ctx, id, func(k keys.APIKey) (keys.APIKey, error) { fn(&k); return k, nil }); err != nil {
			t.Fatalf("UpdateAPIKey: %v", err)
		}
	}
	now := time.Now()
	update(ks[0].ID, func(k *keys.APIKey) { k.RevokedAt = &now })
	update(ks[1].ID, func(k *keys.APIKey) { k.Enabled = false })
	update(ks[2].ID, func(k *keys.APIKey) { k.Enabled = false })
	update(ks[2].ID, func(k *keys.APIKey) { k.Enabled = true })
	update(ks[3].ID, func(k *keys.APIKey) { k.Name = "renamed" })
	got := mustListDenials(t, s, start)
	for _, tt := range []struct {
		id   string
		want bool
	}{{ks[0].ID, true}, {ks[1].ID, true}, {ks[2].ID, false}, {ks[3].ID, false}} {
		if _, ok := got[tt.id]; ok != tt.want {
			t.Fatalf("key %s listed=%v, want %v (denials %v)", tt.id, ok, tt.want, got)
		}
	}
	if err := s.DeleteAPIKey(ctx, ks[3].ID, nil); err != nil {
		t.Fatal(err)
	}
	got = mustListDenials(t, s, start)
	if _, ok := got[ks[3].ID]; !ok || len(got) != 3 {
		t.Fatalf("after a delete: denials=%v, want the deleted key too (3 in all)", got)
	}
	for id, at := range got {
		if at.Before(start) || at.After(time.Now().Add(time.Second)) {
			t.Fatalf("denial of %s dated %v, outside the test", id, at)
		}
	}
	if got := mustListDenials(t, s, time.Now().Add(time.Minute)); len(got) != 0 {
		t.Fatalf("ListDenials since the future=%v, want none", got)
	}
}
