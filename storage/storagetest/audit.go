package storagetest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/keymint/keymint/keys"
	"github.com/keymint/keymint/storage"
)

// testAuditRoundTrip appends an event with every field set and one with
// only the required ones, in one batch, and lists both back equal.
func testAuditRoundTrip(t *testing.T, s storage.Store) {
	f := mustCreateOrg(t, s, "acme", 10)
	full := newAuditEvent(t, "acme", f.admin.ID, keys.AuditKeyUpdate, newID(t))
	checkAllSet(t, "audit event", full)
	bare := keys.AuditEvent{ID: newID(t), Org: "acme", Time: t0, Actor: "root", Action: keys.AuditOrgBootstrap}
	want := byNewest([]keys.AuditEvent{full, bare})
	want[0].Details, want[1].Details = maps.Clone(want[0].Details), maps.Clone(want[1].Details)

	mustAppendAudit(t, s, full, bare)
	// The store keeps its own copy of what it was given.
	full.Details["field"] = "changed after AppendAudit"

	got := mustListAudit(t, s, "acme", storage.AuditListOptions{})
	checkEqual(t, "ListAudit", got, want)
	// Nor does it share what it returns.
	for _, e := range got {
		if e.Details != nil {
			e.Details["field"] = "changed after ListAudit"
		}
	}
	checkEqual(t, "ListAudit again", mustListAudit(t, s, "acme", storage.AuditListOptions{}), want)
}

// testAppendAuditErrExists checks that a batch holding a taken id, or the
// same id twice, is refused whole.
func testAppendAuditErrExists(t *testing.T, s storage.Store) {
	ctx := context.Background()
	f := mustCreateOrg(t, s, "acme", 10)
	first := newAuditEvent(t, "acme", f.admin.ID, keys.AuditKeyCreate, newID(t))
	mustAppendAudit(t, s, first)
	want := []keys.AuditEvent{first}

	t.Run("Taken", func(t *testing.T) {
		dup := newAuditEvent(t, "acme", "root", keys.AuditKeyDelete, newID(t))
		dup.ID = first.ID
		batch := []keys.AuditEvent{
			newAuditEvent(t, "acme", "root", keys.AuditKeyEnable, first.KeyID),
			newAuditEvent(t, "acme", "root", keys.AuditKeyDisable, first.KeyID),
			dup,
		}
		checkErrorIs(t, "AppendAudit with a taken id", s.AppendAudit(ctx, batch), storage.ErrExists)
		checkEqual(t, "ListAudit", mustListAudit(t, s, "acme", storage.AuditListOptions{}), want)
	})
	t.Run("Repeated", func(t *testing.T) {
		e := newAuditEvent(t, "acme", "root", keys.AuditKeyRoll, first.KeyID)
		again := newAuditEvent(t, "acme", "root", keys.AuditKeyRevoke, first.KeyID)
		again.ID = e.ID
		checkErrorIs(t, "AppendAudit with an id twice", s.AppendAudit(ctx, []keys.AuditEvent{e, again}), storage.ErrExists)
		checkEqual(t, "ListAudit", mustListAudit(t, s, "acme", storage.AuditListOptions{}), want)
	})
	t.Run("ThenOK", func(t *testing.T) {
		// The refused batches left nothing behind that blocks their events.
		batch := []keys.AuditEvent{
			newAuditEvent(t, "acme", "root", keys.AuditKeyEnable, first.KeyID),
			newAuditEvent(t, "acme", "root", keys.AuditKeyDisable, first.KeyID),
		}
		mustAppendAudit(t, s, batch...)
		all := byNewest(append(batch, first))
		checkEqual(t, "ListAudit", mustListAudit(t, s, "acme", storage.AuditListOptions{}), all)
	})
}

// testListAuditOrder appends events in batches out of id order and lists
// them newest first.
func testListAuditOrder(t *testing.T, s storage.Store) {
	mustCreateOrg(t, s, "acme", 10)
	es := make([]keys.AuditEvent, 10)
	for i := range es {
		es[i] = newAuditEvent(t, "acme", "root", keys.AuditKeyUpdate, "")
		es[i].Time = t0.Add(time.Duration(i) * time.Minute)
	}
	for _, batch := range [][]int{{7, 2}, {9, 0, 5}, {4}, {1, 8, 3, 6}} {
		var b []keys.AuditEvent
		for _, i := range batch {
			b = append(b, es[i])
		}
		mustAppendAudit(t, s, b...)
	}
	checkEqual(t, "ListAudit", mustListAudit(t, s, "acme", storage.AuditListOptions{}), byNewest(es))
}

// testListAuditPaging pages through an org's events and checks the pages
// join into the whole list, newest first, with no gap and no repeat.
func testListAuditPaging(t *testing.T, s storage.Store) {
	mustCreateOrg(t, s, "acme", 10)
	mustCreateOrg(t, s, "acme-2", 10)
	var all []keys.AuditEvent
	for range 5 {
		batch := make([]keys.AuditEvent, 5)
		for i := range batch {
			batch[i] = newAuditEvent(t, "acme", "root", keys.AuditKeyUpdate, "")
		}
		// Events of a neighbour org interleave in time.
		mustAppendAudit(t, s, append(batch, newAuditEvent(t, "acme-2", "root", keys.AuditKeyUpdate, ""))...)
		all = append(all, batch...)
	}
	want := eventIDs(byNewest(all)) // 25 events

	checkPaging(t, want, func(t *testing.T, after string, limit int) []string {
		return eventIDs(mustListAudit(t, s, "acme", storage.AuditListOptions{After: after, Limit: limit}))
	})
	t.Run("AfterOldest", func(t *testing.T) {
		page := mustListAudit(t, s, "acme", storage.AuditListOptions{After: want[len(want)-1]})
		if got, want := len(page), 0; got != want {
			t.Fatalf("len(page after the oldest event)=%d, want %d", got, want)
		}
	})
	t.Run("NoLimit", func(t *testing.T) {
		page := mustListAudit(t, s, "acme", storage.AuditListOptions{After: want[9]})
		if got, want := eventIDs(page), want[10:]; !slices.Equal(got, want) {
			t.Fatalf("ids after #9=%v, want %v", got, want)
		}
	})
	t.Run("AfterUnknown", func(t *testing.T) {
		// An id that is not stored still bounds the page: one newer than
		// every event starts at the newest.
		page := mustListAudit(t, s, "acme", storage.AuditListOptions{After: newID(t), Limit: 3})
		if got, want := eventIDs(page), want[:3]; !slices.Equal(got, want) {
			t.Fatalf("ids after an unknown newer id=%v, want %v", got, want)
		}
	})
}

// auditFilterFixture stores, in org acme, three rounds of six events
// about keys k1 and k2, plus events about k1 in org acme-2, and returns
// acme's events.
func auditFilterFixture(tb testing.TB, s storage.Store) (k1, k2 string, acme []keys.AuditEvent) {
	tb.Helper()
	f := mustCreateOrg(tb, s, "acme", 10)
	mustCreateOrg(tb, s, "acme-2", 10)
	k1, k2 = f.admin.ID, newID(tb)
	for range 3 {
		round := []keys.AuditEvent{
			newAuditEvent(tb, "acme", "root", keys.AuditKeyCreate, k1),         // k1 by KeyID
			newAuditEvent(tb, "acme", k1, keys.AuditKeyCreate, k2),             // k1 by Actor
			newAuditEvent(tb, "acme", "root", keys.AuditKeyUpdate, k2),         // neither
			newAuditEvent(tb, "acme", k1, keys.AuditKeyRevoke, ""),             // k1 by Actor
			newAuditEvent(tb, "acme", "root", keys.AuditExchangeFailure, k1),   // k1 by KeyID
			newAuditEvent(tb, "acme", k2, keys.AuditKeyUpdate, k2),             // neither
			newAuditEvent(tb, "acme-2", k1, keys.AuditKeyCreate, k1),           // another org
			newAuditEvent(tb, "acme-2", "root", keys.AuditExchangeFailure, k1), // another org
		}
		mustAppendAudit(tb, s, round...)
		acme = append(acme, round[:6]...)
	}
	return k1, k2, acme
}

// filterEvents returns the ids of es that keep returns true for, newest
// first.
func filterEvents(es []keys.AuditEvent, keep func(keys.AuditEvent) bool) []string {
	var out []keys.AuditEvent
	for _, e := range es {
		if keep(e) {
			out = append(out, e)
		}
	}
	return eventIDs(byNewest(out))
}

// pageAudit lists every page of opts.Limit events and returns their ids.
func pageAudit(tb testing.TB, s storage.Store, org string, opts storage.AuditListOptions, maxPages int) []string {
	tb.Helper()
	var got []string
	for range maxPages + 1 {
		page := mustListAudit(tb, s, org, opts)
		if len(page) > opts.Limit {
			tb.Fatalf("page of %+v: len=%d, want at most %d", opts, len(page), opts.Limit)
		}
		if len(page) == 0 {
			return got
		}
		got = append(got, eventIDs(page)...)
		opts.After = page[len(page)-1].ID
	}
	tb.Fatalf("paging %+v does not end; got %d ids", opts, len(got))
	return nil
}

// testListAuditKeyID checks that the KeyID filter keeps events whose KeyID
// or Actor is the key, and that events it drops do not count toward
// Limit.
func testListAuditKeyID(t *testing.T, s storage.Store) {
	k1, k2, acme := auditFilterFixture(t, s)
	for _, k := range []string{k1, k2} {
		want := filterEvents(acme, func(e keys.AuditEvent) bool { return e.KeyID == k || e.Actor == k })
		got := eventIDs(mustListAudit(t, s, "acme", storage.AuditListOptions{KeyID: k}))
		if !slices.Equal(got, want) {
			t.Fatalf("ListAudit(KeyID %s)=%v, want %v", k, got, want)
		}
		first := eventIDs(mustListAudit(t, s, "acme", storage.AuditListOptions{KeyID: k, Limit: 3}))
		if !slices.Equal(first, want[:3]) {
			t.Fatalf("first page of 3 for KeyID %s=%v, want %v", k, first, want[:3])
		}
		if got := pageAudit(t, s, "acme", storage.AuditListOptions{KeyID: k, Limit: 2}, len(acme)); !slices.Equal(got, want) {
			t.Fatalf("pages of 2 for KeyID %s=%v, want %v", k, got, want)
		}
	}
	none := mustListAudit(t, s, "acme", storage.AuditListOptions{KeyID: newID(t), Limit: 5})
	if got, want := len(none), 0; got != want {
		t.Fatalf("len(ListAudit of an unknown key)=%d, want %d", got, want)
	}
}

// testListAuditAction checks the Action filter, alone and with KeyID.
func testListAuditAction(t *testing.T, s storage.Store) {
	k1, _, acme := auditFilterFixture(t, s)
	tests := []struct {
		name string
		opts storage.AuditListOptions
		keep func(keys.AuditEvent) bool
	}{
		{"Action", storage.AuditListOptions{Action: keys.AuditKeyUpdate},
			func(e keys.AuditEvent) bool { return e.Action == keys.AuditKeyUpdate }},
		{"ActionAndKeyID", storage.AuditListOptions{Action: keys.AuditKeyCreate, KeyID: k1},
			func(e keys.AuditEvent) bool {
				return e.Action == keys.AuditKeyCreate && (e.KeyID == k1 || e.Actor == k1)
			}},
		{"NoMatch", storage.AuditListOptions{Action: keys.AuditSigningKeyRotate},
			func(keys.AuditEvent) bool { return false }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := filterEvents(acme, tt.keep)
			if got := eventIDs(mustListAudit(t, s, "acme", tt.opts)); !slices.Equal(got, want) {
				t.Fatalf("ListAudit(%+v)=%v, want %v", tt.opts, got, want)
			}
			opts := tt.opts
			opts.Limit = 2
			if got := pageAudit(t, s, "acme", opts, len(acme)); !slices.Equal(got, want) {
				t.Fatalf("pages of 2 of %+v=%v, want %v", tt.opts, got, want)
			}
		})
	}
}

// testListAuditOtherOrgs checks that an org's audit log holds only its
// events, also when one org id is a prefix of another.
func testListAuditOtherOrgs(t *testing.T, s storage.Store) {
	orgs := []string{"acme", "acme-2", "ac", "zeta"}
	want := map[string][]keys.AuditEvent{}
	for _, org := range orgs {
		mustCreateOrg(t, s, org, 10)
	}
	// Round-robin, so the orgs' ids interleave in time.
	for range 3 {
		var batch []keys.AuditEvent
		for _, org := range orgs {
			e := newAuditEvent(t, org, "root", keys.AuditOrgUpdate, "")
			batch = append(batch, e)
			want[org] = append(want[org], e)
		}
		mustAppendAudit(t, s, batch...)
	}
	for _, org := range orgs {
		want := byNewest(want[org])
		got := mustListAudit(t, s, org, storage.AuditListOptions{})
		checkEqual(t, fmt.Sprintf("ListAudit(%q)", org), got, want)
		// Starting after the org's oldest event must not run into the
		// previous org.
		rest := mustListAudit(t, s, org, storage.AuditListOptions{After: want[len(want)-1].ID})
		if got, want := len(rest), 0; got != want {
			t.Fatalf("len(ListAudit(%q) after its oldest event)=%d, want %d", org, got, want)
		}
	}
	if got, want := len(mustListAudit(t, s, "nope", storage.AuditListOptions{})), 0; got != want {
		t.Fatalf("len(ListAudit of a missing org)=%d, want %d", got, want)
	}
}
