package storagetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keymint/keymint/keys"
	"github.com/keymint/keymint/storage"
)

// test is one conformance test; it gets a fresh, empty store.
type test struct {
	name string
	run  func(t *testing.T, s storage.Store)
}

// group is the tests of one method, or one concern, run as subtests of
// name.
type group struct {
	name  string
	tests []test
}

// runGroups runs each test as the subtest group/test, with a fresh store.
func runGroups(t *testing.T, newStore func(t *testing.T) storage.Store, groups []group) {
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tt := range g.tests {
				t.Run(tt.name, func(t *testing.T) {
					tt.run(t, newStore(t))
				})
			}
		})
	}
}

// Run runs the behaviour tests of storage.Store, each as a subtest against
// a fresh, empty store from newStore. newStore should close the store with
// t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store) {
	runGroups(t, newStore, []group{
		{"Errors", []test{{"Sentinels", testErrors}}},
		{"CreateOrg", []test{
			{"OK", testCreateOrg},
			{"ErrExists", testCreateOrgErrExists},
			{"AdminIDTaken", testCreateOrgAdminIDTaken},
			{"AdminOfOtherOrg", testCreateOrgAdminOfOtherOrg},
		}},
		{"ListOrgs", []test{{"OK", testListOrgs}}},
		{"ListDenials", []test{{"OK", testDenials}}},
		{"Prune", []test{{"OK", testPrune}}},
		{"UpdateOrg", []test{
			{"OK", testUpdateOrg},
			{"FnError", testUpdateOrgFnError},
			{"ErrConflict", testUpdateOrgErrConflict},
		}},
		{"CreateAPIKey", []test{
			{"RoundTrip", testAPIKeyRoundTrip},
			{"ErrExists", testCreateAPIKeyErrExists},
			{"ErrKeyLimit", testCreateAPIKeyErrKeyLimit},
			{"RevokeFreesSlot", testRevokeFreesSlot},
			{"DeleteFreesSlot", testDeleteFreesSlot},
		}},
		{"ListAPIKeys", []test{
			{"Order", testListAPIKeysOrder},
			{"Paging", testListAPIKeysPaging},
			{"AfterDeleted", testListAPIKeysAfterDeleted},
			{"Filter", testListAPIKeysFilter},
			{"OtherOrgs", testListAPIKeysOtherOrgs},
		}},
		{"UpdateAPIKey", []test{
			{"OK", testUpdateAPIKey},
			{"FnError", testUpdateAPIKeyFnError},
			{"ErrConflict", testUpdateAPIKeyErrConflict},
			{"UnrevokeAtLimit", testUnrevokeAtLimit},
		}},
		{"DeleteAPIKey", []test{
			{"OK", testDeleteAPIKey},
			{"CheckRefuses", testDeleteAPIKeyCheckRefuses},
			{"Tombstone", testDeleteAPIKeyTombstone},
		}},
		{"AppendAudit", []test{
			{"RoundTrip", testAuditRoundTrip},
			{"ErrExists", testAppendAuditErrExists},
		}},
		{"ListAudit", []test{
			{"Order", testListAuditOrder},
			{"Paging", testListAuditPaging},
			{"KeyID", testListAuditKeyID},
			{"Action", testListAuditAction},
			{"OtherOrgs", testListAuditOtherOrgs},
		}},
		{"ListSigningKeys", []test{{"OK", testListSigningKeys}}},
		{"UpdateSigningKeys", []test{
			{"OK", testUpdateSigningKeys},
			{"FnError", testUpdateSigningKeysFnError},
		}},
		{"Settings", []test{{"OK", testSettings}}},
		{"Lists", []test{{"EmptyNotNil", testListsEmptyNotNil}}},
		{"Close", []test{{"OK", testClose}}},
	})
}

// testErrors checks each method's sentinel errors.
func testErrors(t *testing.T, s storage.Store) {
	ctx := context.Background()
	f := mustCreateOrg(t, s, "acme", 2) // the admin key takes one slot
	existing := mustCreateAPIKeys(t, s, "acme", 1)[0]
	other := mustCreateOrg(t, s, "other", 10)
	keep := func(k keys.APIKey) (keys.APIKey, error) { return k, nil }
	event := newAuditEvent(t, "acme", f.admin.ID, keys.AuditKeyCreate, existing.ID)
	mustAppendAudit(t, s, event)

	tests := []struct {
		name string
		call func(t *testing.T) error
		want error
	}{
		{"CreateOrg/ErrExists", func(t *testing.T) error {
			return s.CreateOrg(ctx, newOrg("acme", 5), nil, newAPIKey(t, "acme"))
		}, storage.ErrExists},
		{"CreateOrg/AdminIDTaken/ErrExists", func(t *testing.T) error {
			admin := newAPIKey(t, "beta")
			admin.ID = existing.ID
			return s.CreateOrg(ctx, newOrg("beta", 5), nil, admin)
		}, storage.ErrExists},
		{"CreateOrg/AdminOfOtherOrg/ErrConflict", func(t *testing.T) error {
			return s.CreateOrg(ctx, newOrg("beta", 5), nil, newAPIKey(t, "acme"))
		}, storage.ErrConflict},
		{"GetOrg/ErrNotFound", func(t *testing.T) error {
			_, err := s.GetOrg(ctx, "nope")
			return err
		}, storage.ErrNotFound},
		{"UpdateOrg/ErrNotFound", func(t *testing.T) error {
			_, err := s.UpdateOrg(ctx, "nope", func(o keys.Org) (keys.Org, error) { return o, nil })
			return err
		}, storage.ErrNotFound},
		{"UpdateOrg/ChangeID/ErrConflict", func(t *testing.T) error {
			_, err := s.UpdateOrg(ctx, "acme", func(o keys.Org) (keys.Org, error) {
				o.ID = "beta"
				return o, nil
			})
			return err
		}, storage.ErrConflict},
		{"CreateAPIKey/ErrNotFound", func(t *testing.T) error {
			return s.CreateAPIKey(ctx, newAPIKey(t, "nope"))
		}, storage.ErrNotFound},
		{"CreateAPIKey/ErrExists", func(t *testing.T) error {
			k := newAPIKey(t, "other")
			k.ID = existing.ID
			return s.CreateAPIKey(ctx, k)
		}, storage.ErrExists},
		{"CreateAPIKey/ErrKeyLimit", func(t *testing.T) error {
			return s.CreateAPIKey(ctx, newAPIKey(t, "acme"))
		}, storage.ErrKeyLimit},
		{"CreateAPIKey/ErrKeyLimit/ErrConflict", func(t *testing.T) error {
			return s.CreateAPIKey(ctx, newAPIKey(t, "acme"))
		}, storage.ErrConflict},
		{"GetAPIKey/ErrNotFound", func(t *testing.T) error {
			_, err := s.GetAPIKey(ctx, newID(t))
			return err
		}, storage.ErrNotFound},
		{"UpdateAPIKey/ErrNotFound", func(t *testing.T) error {
			_, err := s.UpdateAPIKey(ctx, newID(t), keep)
			return err
		}, storage.ErrNotFound},
		{"UpdateAPIKey/ChangeID/ErrConflict", func(t *testing.T) error {
			_, err := s.UpdateAPIKey(ctx, existing.ID, func(k keys.APIKey) (keys.APIKey, error) {
				k.ID = newID(t)
				return k, nil
			})
			return err
		}, storage.ErrConflict},
		{"UpdateAPIKey/ChangeOrg/ErrConflict", func(t *testing.T) error {
			_, err := s.UpdateAPIKey(ctx, existing.ID, func(k keys.APIKey) (keys.APIKey, error) {
				k.Org = other.org.ID
				return k, nil
			})
			return err
		}, storage.ErrConflict},
		{"DeleteAPIKey/ErrNotFound", func(t *testing.T) error {
			return s.DeleteAPIKey(ctx, newID(t), nil)
		}, storage.ErrNotFound},
		{"AppendAudit/ErrExists", func(t *testing.T) error {
			return s.AppendAudit(ctx, []keys.AuditEvent{event})
		}, storage.ErrExists},
		{"UpdateSigningKeys/ErrNotFound", func(t *testing.T) error {
			_, err := s.UpdateSigningKeys(ctx, "nope", func(ks []keys.SigningKey) ([]keys.SigningKey, error) { return ks, nil })
			return err
		}, storage.ErrNotFound},
		{"GetSetting/ErrNotFound", func(t *testing.T) error {
			_, err := s.GetSetting(ctx, "nope")
			return err
		}, storage.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(t); !errors.Is(err, tt.want) {
				t.Fatalf("err=%v, want errors.Is %v", err, tt.want)
			}
		})
	}
	// None of the failed writes above changed anything.
	checkEqual(t, "org", mustGetOrg(t, s, "acme"), f.org)
	_, err := s.GetOrg(ctx, "beta")
	checkErrorIs(t, "GetOrg(beta)", err, storage.ErrNotFound)
	checkEqual(t, "audit", mustListAudit(t, s, "acme", storage.AuditListOptions{}), []keys.AuditEvent{event})
	if got, want := len(mustListTombstones(t, s, time.Time{})), 0; got != want {
		t.Fatalf("len(ListTombstones)=%d, want %d", got, want)
	}
	checkEqual(t, "admin key", mustGetAPIKey(t, s, f.admin.ID), f.admin)
	checkEqual(t, "key", mustGetAPIKey(t, s, existing.ID), existing)
	if got, want := ids(mustListAPIKeys(t, s, "acme", storage.ListOptions{})), sortedIDs([]keys.APIKey{f.admin, existing}); !slices.Equal(got, want) {
		t.Fatalf("acme keys=%v, want %v", got, want)
	}
	if got, want := ids(mustListAPIKeys(t, s, "other", storage.ListOptions{})), []string{other.admin.ID}; !slices.Equal(got, want) {
		t.Fatalf("other keys=%v, want %v", got, want)
	}
}

func testCreateOrg(t *testing.T, s storage.Store) {
	ctx := context.Background()
	org := newOrg("acme", 10)
	checkAllSet(t, "org", org)
	// Handed over newest first; listed oldest first.
	signing := []keys.SigningKey{
		newSigningKey("acme", "kid-3", t0.Add(48*time.Hour)),
		newSigningKey("acme", "kid-1", t0),
		newSigningKey("acme", "kid-2", t0.Add(24*time.Hour)),
	}
	checkAllSet(t, "signing key", signing[0])
	admin := newRevokedAPIKey(t, "acme")
	admin.RevokedAt = nil
	if err := s.CreateOrg(ctx, org, signing, admin); err != nil {
		t.Fatalf("CreateOrg: %v", err)
	}

	checkEqual(t, "GetOrg", mustGetOrg(t, s, "acme"), org)
	want := []keys.SigningKey{signing[1], signing[2], signing[0]}
	checkEqual(t, "ListSigningKeys", mustListSigningKeys(t, s, "acme"), want)
	checkEqual(t, "admin key", mustGetAPIKey(t, s, admin.ID), admin)
	checkEqual(t, "ListAPIKeys", mustListAPIKeys(t, s, "acme", storage.ListOptions{}), []keys.APIKey{admin})
}

// testCreateOrgErrExists checks that a CreateOrg refused with ErrExists
// writes nothing: not the org, not its signing keys, not its admin key.
func testCreateOrgErrExists(t *testing.T, s storage.Store) {
	ctx := context.Background()
	f := mustCreateOrg(t, s, "acme", 10)

	org2 := newOrg("acme", 99)
	org2.Name = "Impostor"
	admin2 := newAPIKey(t, "acme")
	signing2 := []keys.SigningKey{newSigningKey("acme", "kid-impostor", t0.Add(time.Hour))}
	err := s.CreateOrg(ctx, org2, signing2, admin2)
	checkErrorIs(t, "CreateOrg again", err, storage.ErrExists)

	checkEqual(t, "GetOrg", mustGetOrg(t, s, "acme"), f.org)
	checkEqual(t, "ListSigningKeys", mustListSigningKeys(t, s, "acme"), f.signing)
	checkEqual(t, "admin key", mustGetAPIKey(t, s, f.admin.ID), f.admin)
	checkAPIKeyAbsent(t, s, admin2.ID)
	if got, want := ids(mustListAPIKeys(t, s, "acme", storage.ListOptions{})), []string{f.admin.ID}; !slices.Equal(got, want) {
		t.Fatalf("ListAPIKeys=%v, want %v", got, want)
	}
}

// testCreateOrgAdminIDTaken checks that CreateOrg refuses an admin key id
// that is already stored, and then creates no org.
func testCreateOrgAdminIDTaken(t *testing.T, s storage.Store) {
	ctx := context.Background()
	f := mustCreateOrg(t, s, "acme", 10)

	admin2 := newAPIKey(t, "beta")
	admin2.ID = f.admin.ID
	err := s.CreateOrg(ctx, newOrg("beta", 10), []keys.SigningKey{newSigningKey("beta", "kid-b", t0)}, admin2)
	checkErrorIs(t, "CreateOrg", err, storage.ErrExists)

	_, err = s.GetOrg(ctx, "beta")
	checkErrorIs(t, "GetOrg(beta)", err, storage.ErrNotFound)
	if got, want := len(mustListSigningKeys(t, s, "beta")), 0; got != want {
		t.Fatalf("len(ListSigningKeys(beta))=%d, want %d", got, want)
	}
	if got, want := len(mustListAPIKeys(t, s, "beta", storage.ListOptions{})), 0; got != want {
		t.Fatalf("len(ListAPIKeys(beta))=%d, want %d", got, want)
	}
	checkEqual(t, "acme admin key", mustGetAPIKey(t, s, f.admin.ID), f.admin)
}

// testCreateOrgAdminOfOtherOrg checks that CreateOrg refuses an admin key
// whose Org is not the new org, and then writes nothing, neither to the
// new org nor to the admin key's org.
func testCreateOrgAdminOfOtherOrg(t *testing.T, s storage.Store) {
	ctx := context.Background()
	beta := mustCreateOrg(t, s, "beta", 10)
	for _, org := range []string{"beta", "nope"} {
		t.Run(org, func(t *testing.T) {
			admin := newAPIKey(t, org)
			err := s.CreateOrg(ctx, newOrg("acme", 10), []keys.SigningKey{newSigningKey("acme", "kid-a", t0)}, admin)
			checkErrorIs(t, "CreateOrg", err, storage.ErrConflict)

			_, err = s.GetOrg(ctx, "acme")
			checkErrorIs(t, "GetOrg(acme)", err, storage.ErrNotFound)
			if got, want := len(mustListSigningKeys(t, s, "acme")), 0; got != want {
				t.Fatalf("len(ListSigningKeys(acme))=%d, want %d", got, want)
			}
			checkAPIKeyAbsent(t, s, admin.ID)
			if got, want := ids(mustListAPIKeys(t, s, "beta", storage.ListOptions{})), []string{beta.admin.ID}; !slices.Equal(got, want) {
				t.Fatalf("beta keys=%v, want %v", got, want)
			}
		})
	}
}

func testListOrgs(t *testing.T, s storage.Store) {
	ctx := context.Background()
	got, err := s.ListOrgs(ctx)
	if err != nil {
		t.Fatalf("ListOrgs on an empty store: %v", err)
	}
	if got, want := len(got), 0; got != want {
		t.Fatalf("len(ListOrgs) on an empty store=%d, want %d", got, want)
	}

	var want []keys.Org
	for _, id := range []string{"charlie", "alpha", "bravo", "alpha-2"} {
		want = append(want, mustCreateOrg(t, s, id, 10).org)
	}
	slices.SortFunc(want, func(a, b keys.Org) int { return strings.Compare(a.ID, b.ID) })
	got, err = s.ListOrgs(ctx)
	if err != nil {
		t.Fatalf("ListOrgs: %v", err)
	}
	checkEqual(t, "ListOrgs", got, want)
}

func testUpdateOrg(t *testing.T, s storage.Store) {
	ctx := context.Background()
	f := mustCreateOrg(t, s, "acme", 10)

	want := f.org
	want.Name = "Acme Corporation"
	want.UpdatedAt = t0.Add(time.Hour)
	want.Policy.MaxKeys = 20
	want.Policy.Audiences = []string{"https://new.example.com"}
	calls := 0
	got, err := s.UpdateOrg(ctx, "acme", func(o keys.Org) (keys.Org, error) {
		calls++
		checkEqual(t, "org passed to fn", o, f.org)
		o.Name = want.Name
		o.UpdatedAt = want.UpdatedAt
		o.Policy.MaxKeys = want.Policy.MaxKeys
		o.Policy.Audiences = want.Policy.Audiences
		return o, nil
	})
	if err != nil {
		t.Fatalf("UpdateOrg: %v", err)
	}
	if calls < 1 {
		t.Fatalf("fn calls=%d, want at least 1", calls)
	}
	checkEqual(t, "UpdateOrg result", got, want)
	checkEqual(t, "GetOrg", mustGetOrg(t, s, "acme"), want)
}

func testUpdateOrgFnError(t *testing.T, s storage.Store) {
	ctx := context.Background()
	f := mustCreateOrg(t, s, "acme", 10)
	_, err := s.UpdateOrg(ctx, "acme", func(o keys.Org) (keys.Org, error) {
		o.Name = "changed"
		o.Policy.MaxKeys = 1
		return o, errBoom
	})
	if got, want := err, errBoom; got != want {
		t.Fatalf("UpdateOrg err=%v, want fn's error %v unchanged", got, want)
	}
	checkEqual(t, "GetOrg", mustGetOrg(t, s, "acme"), f.org)
}

// testUpdateOrgErrConflict checks that an updater may not rename an org,
// neither to a free id nor to a taken one, and that nothing is written
// when it tries.
func testUpdateOrgErrConflict(t *testing.T, s storage.Store) {
	ctx := context.Background()
	f := mustCreateOrg(t, s, "acme", 10)
	other := mustCreateOrg(t, s, "other", 10)
	for _, id := range []string{"beta", "other"} {
		t.Run(id, func(t *testing.T) {
			_, err := s.UpdateOrg(ctx, "acme", func(o keys.Org) (keys.Org, error) {
				o.ID = id
				o.Name = "renamed"
				return o, nil
			})
			checkErrorIs(t, "UpdateOrg", err, storage.ErrConflict)
			checkEqual(t, "GetOrg(acme)", mustGetOrg(t, s, "acme"), f.org)
			checkEqual(t, "GetOrg(other)", mustGetOrg(t, s, "other"), other.org)
			_, err = s.GetOrg(ctx, "beta")
			checkErrorIs(t, "GetOrg(beta)", err, storage.ErrNotFound)
		})
	}
}

// testAPIKeyRoundTrip stores keys with every field set, live and revoked,
// and with every optional field unset, and reads each back equal.
func testAPIKeyRoundTrip(t *testing.T, s storage.Store) {
	ctx := context.Background()
	f := mustCreateOrg(t, s, "acme", 10)

	full := newRevokedAPIKey(t, "acme")
	checkAllSet(t, "api key", full)
	live := newAPIKey(t, "acme")
	bare := keys.APIKey{
		ID: newID(t), Org: "acme", Name: "bare", Type: keys.TypePublishable, Role: "viewer",
		CreatedAt: t0, UpdatedAt: t0, MaskedValue: "km_pk_…wxyz", SecretHash: []byte{1, 2, 3},
	}
	for _, k := range []keys.APIKey{full, live, bare} {
		if err := s.CreateAPIKey(ctx, k); err != nil {
			t.Fatalf("CreateAPIKey(%s): %v", k.Name, err)
		}
	}
	for _, k := range []keys.APIKey{full, live, bare} {
		got := mustGetAPIKey(t, s, k.ID)
		checkEqual(t, "GetAPIKey "+k.Name, got, k)
		if got, want := got.RevokedAt == nil, k.RevokedAt == nil; got != want {
			t.Fatalf("%s: RevokedAt==nil is %v, want %v", k.Name, got, want)
		}
	}
	all := []keys.APIKey{f.admin, full, live, bare}
	slices.SortFunc(all, func(a, b keys.APIKey) int { return strings.Compare(a.ID, b.ID) })
	checkEqual(t, "ListAPIKeys", mustListAPIKeys(t, s, "acme", storage.ListOptions{}), all)
}

func testCreateAPIKeyErrExists(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustCreateOrg(t, s, "acme", 10)
	k := mustCreateAPIKeys(t, s, "acme", 1)[0]

	dup := newAPIKey(t, "acme")
	dup.ID = k.ID
	dup.Name = "duplicate"
	checkErrorIs(t, "CreateAPIKey duplicate", s.CreateAPIKey(ctx, dup), storage.ErrExists)
	checkEqual(t, "GetAPIKey", mustGetAPIKey(t, s, k.ID), k)
}

// testCreateAPIKeyErrKeyLimit fills an org to max_keys, admin key
// included, and checks that one more is refused and not stored.
func testCreateAPIKeyErrKeyLimit(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustCreateOrg(t, s, "acme", 4)
	mustCreateAPIKeys(t, s, "acme", 3)

	extra := newAPIKey(t, "acme")
	err := s.CreateAPIKey(ctx, extra)
	checkErrorIs(t, "CreateAPIKey past max_keys", err, storage.ErrKeyLimit)
	checkErrorIs(t, "CreateAPIKey past max_keys", err, storage.ErrConflict)
	checkAPIKeyAbsent(t, s, extra.ID)
	if got, want := len(mustListAPIKeys(t, s, "acme", storage.ListOptions{})), 4; got != want {
		t.Fatalf("len(ListAPIKeys)=%d, want %d", got, want)
	}

	// Raising max_keys lets exactly that many more keys in.
	if _, err := s.UpdateOrg(ctx, "acme", func(o keys.Org) (keys.Org, error) {
		o.Policy.MaxKeys = 5
		return o, nil
	}); err != nil {
		t.Fatalf("UpdateOrg: %v", err)
	}
	if err := s.CreateAPIKey(ctx, extra); err != nil {
		t.Fatalf("CreateAPIKey after raising max_keys: %v", err)
	}
	err = s.CreateAPIKey(ctx, newAPIKey(t, "acme"))
	checkErrorIs(t, "CreateAPIKey past raised max_keys", err, storage.ErrKeyLimit)
}

// testRevokeFreesSlot fills an org to max_keys, revokes one key, and checks
// that exactly one more key fits.
func testRevokeFreesSlot(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustCreateOrg(t, s, "acme", 3)
	ks := mustCreateAPIKeys(t, s, "acme", 2)
	checkErrorIs(t, "CreateAPIKey at max_keys", s.CreateAPIKey(ctx, newAPIKey(t, "acme")), storage.ErrKeyLimit)

	revokedAt := t0.Add(time.Hour)
	got, err := s.UpdateAPIKey(ctx, ks[0].ID, func(k keys.APIKey) (keys.APIKey, error) {
		k.RevokedAt = &revokedAt
		return k, nil
	})
	if err != nil {
		t.Fatalf("UpdateAPIKey revoke: %v", err)
	}
	if got.RevokedAt == nil || !got.RevokedAt.Equal(revokedAt) {
		t.Fatalf("RevokedAt=%v, want %v", got.RevokedAt, revokedAt)
	}
	if k := mustGetAPIKey(t, s, ks[0].ID); k.RevokedAt == nil || !k.RevokedAt.Equal(revokedAt) {
		t.Fatalf("stored RevokedAt=%v, want %v", k.RevokedAt, revokedAt)
	}

	if err := s.CreateAPIKey(ctx, newAPIKey(t, "acme")); err != nil {
		t.Fatalf("CreateAPIKey after a revoke: %v", err)
	}
	checkErrorIs(t, "CreateAPIKey at max_keys again", s.CreateAPIKey(ctx, newAPIKey(t, "acme")), storage.ErrKeyLimit)
	// Revoked keys are still listed.
	if got, want := len(mustListAPIKeys(t, s, "acme", storage.ListOptions{})), 4; got != want {
		t.Fatalf("len(ListAPIKeys)=%d, want %d", got, want)
	}
}

func testDeleteFreesSlot(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustCreateOrg(t, s, "acme", 3)
	ks := mustCreateAPIKeys(t, s, "acme", 2)
	checkErrorIs(t, "CreateAPIKey at max_keys", s.CreateAPIKey(ctx, newAPIKey(t, "acme")), storage.ErrKeyLimit)

	if err := s.DeleteAPIKey(ctx, ks[1].ID, nil); err != nil {
		t.Fatalf("DeleteAPIKey: %v", err)
	}
	if err := s.CreateAPIKey(ctx, newAPIKey(t, "acme")); err != nil {
		t.Fatalf("CreateAPIKey after a delete: %v", err)
	}
	checkErrorIs(t, "CreateAPIKey at max_keys again", s.CreateAPIKey(ctx, newAPIKey(t, "acme")), storage.ErrKeyLimit)
}

// testListAPIKeysOrder creates keys out of id order and lists them in id
// order.
func testListAPIKeysOrder(t *testing.T, s storage.Store) {
	ctx := context.Background()
	f := mustCreateOrg(t, s, "acme", 100)
	ks := []keys.APIKey{f.admin}
	for range 10 {
		ks = append(ks, newAPIKey(t, "acme"))
	}
	// Create them in a fixed shuffled order: odd positions first, then
	// even ones, newest first.
	var order []keys.APIKey
	for i := len(ks) - 1; i >= 1; i-- {
		if i%2 == 1 {
			order = append(order, ks[i])
		}
	}
	for i := len(ks) - 1; i >= 1; i-- {
		if i%2 == 0 {
			order = append(order, ks[i])
		}
	}
	for _, k := range order {
		if err := s.CreateAPIKey(ctx, k); err != nil {
			t.Fatalf("CreateAPIKey: %v", err)
		}
	}
	if got, want := ids(mustListAPIKeys(t, s, "acme", storage.ListOptions{})), sortedIDs(ks); !slices.Equal(got, want) {
		t.Fatalf("ListAPIKeys ids=%v, want %v", got, want)
	}
}

// testListAPIKeysPaging pages through an org's keys and checks the pages
// join into the whole list with no gap and no repeat.
func testListAPIKeysPaging(t *testing.T, s storage.Store) {
	f := mustCreateOrg(t, s, "acme", 100)
	all := append([]keys.APIKey{f.admin}, mustCreateAPIKeys(t, s, "acme", 24)...)
	want := sortedIDs(all) // 25 keys

	checkPaging(t, want, func(t *testing.T, after string, limit int) []string {
		return ids(mustListAPIKeys(t, s, "acme", storage.ListOptions{After: after, Limit: limit}))
	})
	t.Run("AfterLast", func(t *testing.T) {
		page := mustListAPIKeys(t, s, "acme", storage.ListOptions{After: want[len(want)-1]})
		if got, want := len(page), 0; got != want {
			t.Fatalf("len(page after the last key)=%d, want %d", got, want)
		}
	})
	t.Run("NoLimit", func(t *testing.T) {
		page := mustListAPIKeys(t, s, "acme", storage.ListOptions{After: want[9]})
		if got, want := ids(page), want[10:]; !slices.Equal(got, want) {
			t.Fatalf("ids after #9=%v, want %v", got, want)
		}
	})
}

// testListAPIKeysAfterDeleted checks that a page can start after a key
// that has since been deleted.
func testListAPIKeysAfterDeleted(t *testing.T, s storage.Store) {
	ctx := context.Background()
	f := mustCreateOrg(t, s, "acme", 100)
	want := sortedIDs(append([]keys.APIKey{f.admin}, mustCreateAPIKeys(t, s, "acme", 9)...))

	first := mustListAPIKeys(t, s, "acme", storage.ListOptions{Limit: 4})
	last := first[len(first)-1].ID
	if err := s.DeleteAPIKey(ctx, last, nil); err != nil {
		t.Fatalf("DeleteAPIKey: %v", err)
	}
	rest := mustListAPIKeys(t, s, "acme", storage.ListOptions{After: last, Limit: 100})
	if got, want := ids(rest), want[4:]; !slices.Equal(got, want) {
		t.Fatalf("ids after a deleted key=%v, want %v", got, want)
	}
}

// testListAPIKeysFilter checks that keys Filter drops do not count toward
// Limit, also across pages.
func testListAPIKeysFilter(t *testing.T, s storage.Store) {
	mustCreateOrg(t, s, "acme", 100)
	ks := mustCreateAPIKeys(t, s, "acme", 20)
	keep := map[string]bool{}
	var want []string
	for i, k := range ks {
		if i%3 == 0 { // 7 of 20
			keep[k.ID] = true
			want = append(want, k.ID)
		}
	}
	slices.Sort(want)
	filter := func(k keys.APIKey) bool { return keep[k.ID] }

	first := mustListAPIKeys(t, s, "acme", storage.ListOptions{Limit: 3, Filter: filter})
	if got, want := ids(first), want[:3]; !slices.Equal(got, want) {
		t.Fatalf("first filtered page=%v, want %v", got, want)
	}
	var got []string
	after := ""
	for range len(ks) {
		page := mustListAPIKeys(t, s, "acme", storage.ListOptions{After: after, Limit: 2, Filter: filter})
		if len(page) == 0 {
			break
		}
		got = append(got, ids(page)...)
		after = page[len(page)-1].ID
	}
	if !slices.Equal(got, want) {
		t.Fatalf("filtered pages=%v, want %v", got, want)
	}
	none := mustListAPIKeys(t, s, "acme", storage.ListOptions{Limit: 5, Filter: func(keys.APIKey) bool { return false }})
	if got, want := len(none), 0; got != want {
		t.Fatalf("len(ListAPIKeys with a filter that drops all)=%d, want %d", got, want)
	}
}

// testListAPIKeysOtherOrgs checks that an org's list holds only its keys,
// also when one org id is a prefix of another.
func testListAPIKeysOtherOrgs(t *testing.T, s storage.Store) {
	want := map[string][]string{}
	for _, org := range []string{"acme", "acme-2", "ac", "zeta"} {
		f := mustCreateOrg(t, s, org, 100)
		want[org] = sortedIDs(append([]keys.APIKey{f.admin}, mustCreateAPIKeys(t, s, org, 3)...))
	}
	for org, want := range want {
		page := mustListAPIKeys(t, s, org, storage.ListOptions{})
		if got := ids(page); !slices.Equal(got, want) {
			t.Fatalf("ListAPIKeys(%q)=%v, want %v", org, got, want)
		}
		for _, k := range page {
			if got, want := k.Org, org; got != want {
				t.Fatalf("ListAPIKeys(%q) lists a key of org %q", want, got)
			}
		}
		// Starting after the org's last key must not run into the next org.
		rest := mustListAPIKeys(t, s, org, storage.ListOptions{After: want[len(want)-1]})
		if got, want := len(rest), 0; got != want {
			t.Fatalf("len(ListAPIKeys(%q) after its last key)=%d, want %d", org, got, want)
		}
	}
	if got, want := len(mustListAPIKeys(t, s, "nope", storage.ListOptions{})), 0; got != want {
		t.Fatalf("len(ListAPIKeys of a missing org)=%d, want %d", got, want)
	}
}

func testUpdateAPIKey(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustCreateOrg(t, s, "acme", 10)
	orig := mustCreateAPIKeys(t, s, "acme", 1)[0]

	want := orig
	want.Name = "renamed"
	want.Scopes = []string{"billing:read"}
	want.AllowedCIDRs = nil
	want.Enabled = false
	want.UpdatedBy = "someone"
	want.UpdatedAt = t0.Add(time.Hour)
	lastUsed := t0.Add(90 * time.Minute)
	want.LastUsedAt = &lastUsed
	want.ExpiresAt = nil
	want.SecretHash = []byte("new hash")

	calls := 0
	got, err := s.UpdateAPIKey(ctx, orig.ID, func(k keys.APIKey) (keys.APIKey, error) {
		calls++
		checkEqual(t, "key passed to fn", k, orig)
		return want, nil
	})
	if err != nil {
		t.Fatalf("UpdateAPIKey: %v", err)
	}
	if calls < 1 {
		t.Fatalf("fn calls=%d, want at least 1", calls)
	}
	checkEqual(t, "UpdateAPIKey result", got, want)
	stored := mustGetAPIKey(t, s, orig.ID)
	checkEqual(t, "GetAPIKey", stored, want)
	if stored.ExpiresAt != nil {
		t.Fatalf("ExpiresAt=%v, want nil", stored.ExpiresAt)
	}
	list := mustListAPIKeys(t, s, "acme", storage.ListOptions{})
	i := slices.IndexFunc(list, func(k keys.APIKey) bool { return k.ID == orig.ID })
	if i < 0 {
		t.Fatalf("ListAPIKeys=%v, want it to hold %s", ids(list), orig.ID)
	}
	checkEqual(t, "listed key", list[i], want)
}

func testUpdateAPIKeyFnError(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustCreateOrg(t, s, "acme", 10)
	orig := mustCreateAPIKeys(t, s, "acme", 1)[0]

	revokedAt := t0.Add(time.Hour)
	_, err := s.UpdateAPIKey(ctx, orig.ID, func(k keys.APIKey) (keys.APIKey, error) {
		k.Name = "changed"
		k.RevokedAt = &revokedAt
		return k, errBoom
	})
	if got, want := err, errBoom; got != want {
		t.Fatalf("UpdateAPIKey err=%v, want fn's error %v unchanged", got, want)
	}
	checkEqual(t, "GetAPIKey", mustGetAPIKey(t, s, orig.ID), orig)

	// A wrapped fn error is returned as is too.
	wrapped := fmt.Errorf("policy says no: %w", errBoom)
	_, err = s.UpdateAPIKey(ctx, orig.ID, func(k keys.APIKey) (keys.APIKey, error) { return k, wrapped })
	if got, want := err, wrapped; got != want {
		t.Fatalf("UpdateAPIKey err=%v, want fn's error %v unchanged", got, want)
	}
}

// testUpdateAPIKeyErrConflict checks that an updater may not move a key to
// another id or org, and that nothing is written when it tries.
func testUpdateAPIKeyErrConflict(t *testing.T, s storage.Store) {
	ctx := context.Background()
	f := mustCreateOrg(t, s, "acme", 10)
	other := mustCreateOrg(t, s, "other", 10)
	orig := mustCreateAPIKeys(t, s, "acme", 1)[0]
	newID := newID(t)

	tests := []struct {
		name   string
		change func(*keys.APIKey)
	}{
		{"ID", func(k *keys.APIKey) { k.ID = newID }},
		{"Org", func(k *keys.APIKey) { k.Org = "other" }},
		{"MissingOrg", func(k *keys.APIKey) { k.Org = "nope" }},
		{"Both", func(k *keys.APIKey) { k.ID, k.Org = newID, "other" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.UpdateAPIKey(ctx, orig.ID, func(k keys.APIKey) (keys.APIKey, error) {
				k.Name = "moved"
				tt.change(&k)
				return k, nil
			})
			checkErrorIs(t, "UpdateAPIKey", err, storage.ErrConflict)
			checkEqual(t, "GetAPIKey", mustGetAPIKey(t, s, orig.ID), orig)
			checkAPIKeyAbsent(t, s, newID)
			if got, want := ids(mustListAPIKeys(t, s, "acme", storage.ListOptions{})), sortedIDs([]keys.APIKey{f.admin, orig}); !slices.Equal(got, want) {
				t.Fatalf("acme keys=%v, want %v", got, want)
			}
			if got, want := ids(mustListAPIKeys(t, s, "other", storage.ListOptions{})), []string{other.admin.ID}; !slices.Equal(got, want) {
				t.Fatalf("other keys=%v, want %v", got, want)
			}
		})
	}
}

// testUnrevokeAtLimit checks that an updater may not clear RevokedAt while
// the org has no free slot, so max_keys holds for updates too.
func testUnrevokeAtLimit(t *testing.T, s storage.Store) {
	ctx := context.Background()
	f := mustCreateOrg(t, s, "acme", 2)
	revokedAt := t0.Add(time.Hour)
	revoke := func(k keys.APIKey) (keys.APIKey, error) {
		k.RevokedAt = &revokedAt
		return k, nil
	}
	unrevoke := func(k keys.APIKey) (keys.APIKey, error) {
		k.RevokedAt = nil
		return k, nil
	}
	revoked, err := s.UpdateAPIKey(ctx, f.admin.ID, revoke)
	if err != nil {
		t.Fatalf("revoke: %v", err)
	}
	ks := mustCreateAPIKeys(t, s, "acme", 2) // the org is full again

	_, err = s.UpdateAPIKey(ctx, f.admin.ID, unrevoke)
	checkErrorIs(t, "unrevoke at max_keys", err, storage.ErrKeyLimit)
	checkErrorIs(t, "unrevoke at max_keys", err, storage.ErrConflict)
	checkEqual(t, "admin key after a refused unrevoke", mustGetAPIKey(t, s, f.admin.ID), revoked)

	// Updating a revoked key without unrevoking it is fine.
	renamed, err := s.UpdateAPIKey(ctx, f.admin.ID, func(k keys.APIKey) (keys.APIKey, error) {
		k.Name = "renamed"
		return k, nil
	})
	if err != nil {
		t.Fatalf("rename a revoked key at max_keys: %v", err)
	}
	if renamed.RevokedAt == nil {
		t.Fatalf("renamed key lost its RevokedAt")
	}
	// Once a slot is free, the key may come back, and then fills it.
	if _, err := s.UpdateAPIKey(ctx, ks[0].ID, revoke); err != nil {
		t.Fatalf("revoke another key: %v", err)
	}
	if _, err := s.UpdateAPIKey(ctx, f.admin.ID, unrevoke); err != nil {
		t.Fatalf("unrevoke with a free slot: %v", err)
	}
	checkErrorIs(t, "CreateAPIKey after the unrevoke", s.CreateAPIKey(ctx, newAPIKey(t, "acme")), storage.ErrKeyLimit)
}

func testDeleteAPIKey(t *testing.T, s storage.Store) {
	ctx := context.Background()
	f := mustCreateOrg(t, s, "acme", 10)
	ks := mustCreateAPIKeys(t, s, "acme", 2)

	if err := s.DeleteAPIKey(ctx, ks[0].ID, nil); err != nil {
		t.Fatalf("DeleteAPIKey: %v", err)
	}
	checkAPIKeyAbsent(t, s, ks[0].ID)
	checkEqual(t, "other key", mustGetAPIKey(t, s, ks[1].ID), ks[1])
	if got, want := ids(mustListAPIKeys(t, s, "acme", storage.ListOptions{})), sortedIDs([]keys.APIKey{f.admin, ks[1]}); !slices.Equal(got, want) {
		t.Fatalf("ListAPIKeys=%v, want %v", got, want)
	}
	checkErrorIs(t, "DeleteAPIKey again", s.DeleteAPIKey(ctx, ks[0].ID, nil), storage.ErrNotFound)
	err := s.DeleteAPIKey(ctx, newID(t), func(keys.APIKey) error {
		t.Errorf("check called for a missing key")
		return nil
	})
	checkErrorIs(t, "DeleteAPIKey of a missing key with a check", err, storage.ErrNotFound)

	// The id is free again.
	if err := s.CreateAPIKey(ctx, ks[0]); err != nil {
		t.Fatalf("CreateAPIKey with a deleted key's id: %v", err)
	}
	checkEqual(t, "recreated key", mustGetAPIKey(t, s, ks[0].ID), ks[0])
}

// testDeleteAPIKeyCheckRefuses checks that when check fails, DeleteAPIKey
// returns its error unchanged and neither deletes the key nor records a
// tombstone.
func testDeleteAPIKeyCheckRefuses(t *testing.T, s storage.Store) {
	ctx := context.Background()
	f := mustCreateOrg(t, s, "acme", 10)
	k := mustCreateAPIKeys(t, s, "acme", 1)[0]

	for _, want := range []error{errBoom, fmt.Errorf("key is not revoked: %w", errBoom)} {
		calls := 0
		err := s.DeleteAPIKey(ctx, k.ID, func(got keys.APIKey) error {
			calls++
			checkEqual(t, "key passed to check", got, k)
			return want
		})
		if got := err; got != want {
			t.Fatalf("DeleteAPIKey err=%v, want check's error %v unchanged", got, want)
		}
		if calls < 1 {
			t.Fatalf("check calls=%d, want at least 1", calls)
		}
	}
	checkEqual(t, "GetAPIKey", mustGetAPIKey(t, s, k.ID), k)
	if got, want := ids(mustListAPIKeys(t, s, "acme", storage.ListOptions{})), sortedIDs([]keys.APIKey{f.admin, k}); !slices.Equal(got, want) {
		t.Fatalf("ListAPIKeys=%v, want %v", got, want)
	}
	if ts := mustListTombstones(t, s, time.Time{}); len(ts) != 0 {
		t.Fatalf("ListTombstones=%v, want none", ts)
	}
}

// tombstoneSlack is how far outside the window around its DeleteAPIKey
// call a tombstone's time may lie, for backends that store times coarser
// than Go's nanoseconds.
const tombstoneSlack = time.Millisecond

// testDeleteAPIKeyTombstone checks that a deletion that check lets through
// records a tombstone dated during the call, which ListTombstones lists
// from since up to and including its time, and not after.
func testDeleteAPIKeyTombstone(t *testing.T, s storage.Store) {
	ctx := context.Background()
	f := mustCreateOrg(t, s, "acme", 10)
	ks := mustCreateAPIKeys(t, s, "acme", 2)

	calls := 0
	before := time.Now()
	err := s.DeleteAPIKey(ctx, ks[0].ID, func(got keys.APIKey) error {
		calls++
		checkEqual(t, "key passed to check", got, ks[0])
		return nil
	})
	after := time.Now()
	if err != nil {
		t.Fatalf("DeleteAPIKey: %v", err)
	}
	if calls < 1 {
		t.Fatalf("check calls=%d, want at least 1", calls)
	}
	checkAPIKeyAbsent(t, s, ks[0].ID)
	if got, want := ids(mustListAPIKeys(t, s, "acme", storage.ListOptions{})), sortedIDs([]keys.APIKey{f.admin, ks[1]}); !slices.Equal(got, want) {
		t.Fatalf("ListAPIKeys=%v, want %v", got, want)
	}

	ts := mustListTombstones(t, s, before.Add(-tombstoneSlack))
	at, ok := ts[ks[0].ID]
	if !ok || len(ts) != 1 {
		t.Fatalf("ListTombstones=%v, want only %s", ts, ks[0].ID)
	}
	if at.Before(before.Add(-tombstoneSlack)) || at.After(after.Add(tombstoneSlack)) {
		t.Fatalf("tombstone time=%v, want within [%v, %v]", at, before, after)
	}
	if got := mustListTombstones(t, s, time.Time{}); !maps.Equal(got, ts) {
		t.Fatalf("ListTombstones(zero time)=%v, want %v", got, ts)
	}
	if _, ok := mustListTombstones(t, s, at)[ks[0].ID]; !ok {
		t.Fatalf("ListTombstones(since its own time) lacks %s; since is inclusive", ks[0].ID)
	}
	if got := mustListTombstones(t, s, at.Add(time.Nanosecond)); len(got) != 0 {
		t.Fatalf("ListTombstones(since just after the deletion)=%v, want none", got)
	}
	if got := mustListTombstones(t, s, after.Add(time.Hour)); len(got) != 0 {
		t.Fatalf("ListTombstones(an hour after the deletion)=%v, want none", got)
	}

	// A second deletion adds its own tombstone and keeps the first.
	if err := s.DeleteAPIKey(ctx, ks[1].ID, nil); err != nil {
		t.Fatalf("DeleteAPIKey(nil check): %v", err)
	}
	ts = mustListTombstones(t, s, before.Add(-tombstoneSlack))
	if _, ok := ts[ks[1].ID]; !ok || len(ts) != 2 || !ts[ks[0].ID].Equal(at) {
		t.Fatalf("ListTombstones after a second delete=%v, want %s at %v and %s", ts, ks[0].ID, at, ks[1].ID)
	}
}

func testListSigningKeys(t *testing.T, s storage.Store) {
	got := mustListSigningKeys(t, s, "nope")
	if got, want := len(got), 0; got != want {
		t.Fatalf("len(ListSigningKeys of a missing org)=%d, want %d", got, want)
	}
	// An org created without signing keys has none.
	ctx := context.Background()
	if err := s.CreateOrg(ctx, newOrg("bare", 10), nil, newAPIKey(t, "bare")); err != nil {
		t.Fatalf("CreateOrg: %v", err)
	}
	if got, want := len(mustListSigningKeys(t, s, "bare")), 0; got != want {
		t.Fatalf("len(ListSigningKeys of an org without keys)=%d, want %d", got, want)
	}
	// Another org's keys are not listed.
	f := mustCreateOrg(t, s, "acme", 10)
	mustCreateOrg(t, s, "acme-2", 10)
	checkEqual(t, "ListSigningKeys(acme)", mustListSigningKeys(t, s, "acme"), f.signing)
}

func testUpdateSigningKeys(t *testing.T, s storage.Store) {
	ctx := context.Background()
	f := mustCreateOrg(t, s, "acme", 10)

	// Rotate: the newest key becomes active and a new "next" key is added
	// (older than the last one, to check sorting); the oldest is removed.
	next := newSigningKey("acme", "acme-sk-3", t0.Add(12*time.Hour))
	next.Status = keys.SigningNext
	next.ActivatedAt, next.RetiredAt, next.RemoveAfter = nil, nil, nil
	activated := t0.Add(30 * time.Hour)

	calls := 0
	got, err := s.UpdateSigningKeys(ctx, "acme", func(ks []keys.SigningKey) ([]keys.SigningKey, error) {
		calls++
		checkEqual(t, "keys passed to fn", ks, f.signing)
		ks[1].Status = keys.SigningActive
		ks[1].ActivatedAt = &activated
		ks[1].RetiredAt, ks[1].RemoveAfter = nil, nil
		return []keys.SigningKey{ks[1], next}, nil
	})
	if err != nil {
		t.Fatalf("UpdateSigningKeys: %v", err)
	}
	if calls < 1 {
		t.Fatalf("fn calls=%d, want at least 1", calls)
	}
	active := f.signing[1]
	active.Status = keys.SigningActive
	active.ActivatedAt = &activated
	active.RetiredAt, active.RemoveAfter = nil, nil
	want := []keys.SigningKey{next, active} // by CreatedAt
	checkEqual(t, "UpdateSigningKeys result", got, want)
	stored := mustListSigningKeys(t, s, "acme")
	checkEqual(t, "ListSigningKeys", stored, want)
	if stored[0].ActivatedAt != nil || stored[0].RetiredAt != nil || stored[0].RemoveAfter != nil {
		t.Fatalf("next key's times=%v/%v/%v, want all nil", stored[0].ActivatedAt, stored[0].RetiredAt, stored[0].RemoveAfter)
	}

	// Replacing the set with nothing empties it.
	if _, err := s.UpdateSigningKeys(ctx, "acme", func([]keys.SigningKey) ([]keys.SigningKey, error) { return nil, nil }); err != nil {
		t.Fatalf("UpdateSigningKeys to none: %v", err)
	}
	if got, want := len(mustListSigningKeys(t, s, "acme")), 0; got != want {
		t.Fatalf("len(ListSigningKeys)=%d, want %d", got, want)
	}
}

func testUpdateSigningKeysFnError(t *testing.T, s storage.Store) {
	ctx := context.Background()
	f := mustCreateOrg(t, s, "acme", 10)
	_, err := s.UpdateSigningKeys(ctx, "acme", func(ks []keys.SigningKey) ([]keys.SigningKey, error) {
		return append(ks[:1], newSigningKey("acme", "kid-x", t0)), errBoom
	})
	if got, want := err, errBoom; got != want {
		t.Fatalf("UpdateSigningKeys err=%v, want fn's error %v unchanged", got, want)
	}
	checkEqual(t, "ListSigningKeys", mustListSigningKeys(t, s, "acme"), f.signing)
}

func testSettings(t *testing.T, s storage.Store) {
	ctx := context.Background()
	_, err := s.GetSetting(ctx, "check")
	checkErrorIs(t, "GetSetting before InitSetting", err, storage.ErrNotFound)

	first := []byte("first value")
	got, err := s.InitSetting(ctx, "check", first)
	if err != nil {
		t.Fatalf("InitSetting: %v", err)
	}
	if want := "first value"; string(got) != want {
		t.Fatalf("InitSetting=%q, want %q", got, want)
	}
	// Neither the caller's slice nor the returned one aliases the store.
	first[0] = 'X'
	got[0] = 'Y'

	got, err = s.InitSetting(ctx, "check", []byte("second value"))
	if err != nil {
		t.Fatalf("InitSetting again: %v", err)
	}
	if want := "first value"; string(got) != want {
		t.Fatalf("InitSetting again=%q, want the first value %q", got, want)
	}
	got[0] = 'Y'
	for range 2 { // the second time after writing to what the first returned
		got, err = s.GetSetting(ctx, "check")
		if err != nil {
			t.Fatalf("GetSetting: %v", err)
		}
		if want := "first value"; string(got) != want {
			t.Fatalf("GetSetting=%q, want %q", got, want)
		}
		got[0] = 'Z'
	}

	// Settings are independent, and an empty value is still a value.
	got, err = s.InitSetting(ctx, "empty", []byte{})
	if err != nil {
		t.Fatalf("InitSetting(empty): %v", err)
	}
	if got, want := len(got), 0; got != want {
		t.Fatalf("len(InitSetting(empty))=%d, want %d", got, want)
	}
	got, err = s.InitSetting(ctx, "empty", []byte("late"))
	if err != nil {
		t.Fatalf("InitSetting(empty) again: %v", err)
	}
	if len(got) != 0 {
		t.Fatalf("InitSetting(empty) again=%q, want the empty first value", got)
	}
	if _, err := s.GetSetting(ctx, "empty"); err != nil {
		t.Fatalf("GetSetting(empty): %v", err)
	}
}

// testListsEmptyNotNil checks that every list method returns an empty,
// non-nil result when nothing matches.
func testListsEmptyNotNil(t *testing.T, s storage.Store) {
	ctx := context.Background()
	orgs, err := s.ListOrgs(ctx)
	if err != nil || orgs == nil || len(orgs) != 0 {
		t.Fatalf("ListOrgs on an empty store=%#v, %v; want an empty non-nil slice", orgs, err)
	}
	mustCreateOrg(t, s, "acme", 10)
	for _, tt := range []struct {
		name string
		list func() (isNil bool, n int, err error)
	}{
		{"ListAPIKeys/MissingOrg", func() (bool, int, error) {
			ks, err := s.ListAPIKeys(ctx, "nope", storage.ListOptions{})
			return ks == nil, len(ks), err
		}},
		{"ListAPIKeys/FilterDropsAll", func() (bool, int, error) {
			ks, err := s.ListAPIKeys(ctx, "acme", storage.ListOptions{Filter: func(keys.APIKey) bool { return false }})
			return ks == nil, len(ks), err
		}},
		{"ListSigningKeys/MissingOrg", func() (bool, int, error) {
			ks, err := s.ListSigningKeys(ctx, "nope")
			return ks == nil, len(ks), err
		}},
		{"ListAudit/NoEvents", func() (bool, int, error) {
			es, err := s.ListAudit(ctx, "acme", storage.AuditListOptions{})
			return es == nil, len(es), err
		}},
		{"ListTombstones/NoDeletions", func() (bool, int, error) {
			ts, err := s.ListTombstones(ctx, time.Time{})
			return ts == nil, len(ts), err
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			isNil, n, err := tt.list()
			if err != nil {
				t.Fatalf("err=%v", err)
			}
			if isNil || n != 0 {
				t.Fatalf("nil=%v, len=%d; want an empty non-nil result", isNil, n)
			}
		})
	}
}

// testClose checks that methods fail after Close.
func testClose(t *testing.T, s storage.Store) {
	ctx := context.Background()
	f := mustCreateOrg(t, s, "acme", 10)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.GetOrg(ctx, "acme"); err == nil {
		t.Fatalf("GetOrg after Close: err=nil, want an error")
	}
	if _, err := s.GetAPIKey(ctx, f.admin.ID); err == nil {
		t.Fatalf("GetAPIKey after Close: err=nil, want an error")
	}
	if err := s.CreateAPIKey(ctx, newAPIKey(t, "acme")); err == nil {
		t.Fatalf("CreateAPIKey after Close: err=nil, want an error")
	}
}

// checkPaging walks list page by page for limits 1, 7, 25 and 26 and
// checks that the pages, each at most limit long, join into want with no
// gap and no repeat.
func checkPaging(t *testing.T, want []string, list func(t *testing.T, after string, limit int) []string) {
	t.Helper()
	for _, limit := range []int{1, 7, 25, 26} {
		t.Run(fmt.Sprintf("Limit%d", limit), func(t *testing.T) {
			var got []string
			after := ""
			for pages := 0; ; pages++ {
				if pages > len(want)+1 {
					t.Fatalf("paging does not end; got %d ids so far", len(got))
				}
				page := list(t, after, limit)
				if len(page) > limit {
					t.Fatalf("page %d: len=%d, want at most %d", pages, len(page), limit)
				}
				if len(page) == 0 {
					break
				}
				got = append(got, page...)
				after = page[len(page)-1]
			}
			if !slices.Equal(got, want) {
				t.Fatalf("paged ids=%v, want %v", got, want)
			}
		})
	}
}
