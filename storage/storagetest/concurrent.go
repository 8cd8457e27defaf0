package storagetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keymint/keymint/keys"
	"github.com/keymint/keymint/storage"
)

// RunConcurrent runs the tests that only concurrency can fail: many
// goroutines writing to one store at once must neither exceed an org's
// max_keys nor lose an update or an audit event. Each subtest gets a fresh
// store from newStore.
func RunConcurrent(t *testing.T, newStore func(t *testing.T) storage.Store) {
	runGroups(t, newStore, []group{
		{"CreateAPIKey", []test{{"MaxKeys", testConcurrentCreateAPIKeyLimit}}},
		{"UpdateAPIKey", []test{{"NoLostUpdate", testConcurrentUpdateAPIKey}}},
		{"UpdateOrg", []test{{"NoLostUpdate", testConcurrentUpdateOrg}}},
		{"UpdateSigningKeys", []test{{"NoLostUpdate", testConcurrentUpdateSigningKeys}}},
		{"InitSetting", []test{{"OneWinner", testConcurrentInitSetting}}},
		{"AppendAudit", []test{{"NoLostEvent", testConcurrentAppendAudit}}},
	})
}

// parallel runs fn(0) … fn(n-1) in n goroutines released together, and
// returns their errors by index.
func parallel(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// testConcurrentCreateAPIKeyLimit races 100 creates into an org with
// max_keys 50: exactly 50 must win.
func testConcurrentCreateAPIKeyLimit(t *testing.T, s storage.Store) {
	const maxKeys, tries = 50, 100
	ctx := context.Background()
	f := mustCreateOrg(t, s, "acme", maxKeys)
	// Free the admin key's slot, so that the org starts with no keys.
	if err := s.DeleteAPIKey(ctx, f.admin.ID, nil); err != nil {
		t.Fatalf("DeleteAPIKey(admin): %v", err)
	}
	ks := make([]keys.APIKey, tries)
	for i := range ks {
		ks[i] = newAPIKey(t, "acme")
	}

	errs := parallel(tries, func(i int) error { return s.CreateAPIKey(ctx, ks[i]) })
	var created []keys.APIKey
	refused := 0
	for i, err := range errs {
		switch {
		case err == nil:
			created = append(created, ks[i])
		case errors.Is(err, storage.ErrKeyLimit):
			refused++
		default:
			t.Errorf("CreateAPIKey #%d: %v, want nil or ErrKeyLimit", i, err)
		}
	}
	if got, want := len(created), maxKeys; got != want {
		t.Fatalf("created=%d, want %d (refused %d)", got, want, refused)
	}
	if got, want := refused, tries-maxKeys; got != want {
		t.Fatalf("refused=%d, want %d", got, want)
	}
	listed := mustListAPIKeys(t, s, "acme", storage.ListOptions{})
	if got, want := ids(listed), sortedIDs(created); !slices.Equal(got, want) {
		t.Fatalf("ListAPIKeys: %d ids %v, want the %d created %v", len(got), got, len(want), want)
	}
}

// testConcurrentUpdateAPIKey has 20 goroutines each add a scope to one key:
// all 20 must be there afterwards.
func testConcurrentUpdateAPIKey(t *testing.T, s storage.Store) {
	const n = 20
	ctx := context.Background()
	mustCreateOrg(t, s, "acme", 10)
	k := mustCreateAPIKeys(t, s, "acme", 1)[0]
	scope := func(i int) string { return fmt.Sprintf("res%d:read", i) }

	errs := parallel(n, func(i int) error {
		got, err := s.UpdateAPIKey(ctx, k.ID, func(k keys.APIKey) (keys.APIKey, error) {
			k.Scopes = append(k.Scopes, scope(i))
			return k, nil
		})
		if err == nil && !slices.Contains(got.Scopes, scope(i)) {
			return fmt.Errorf("result %v lacks %s", got.Scopes, scope(i))
		}
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("UpdateAPIKey #%d: %v", i, err)
		}
	}
	got := mustGetAPIKey(t, s, k.ID).Scopes
	for i := range n {
		if !slices.Contains(got, scope(i)) {
			t.Errorf("scopes lack %s: an update was lost", scope(i))
		}
	}
	if got, want := len(got), len(k.Scopes)+n; got != want {
		t.Fatalf("len(scopes)=%d, want %d: %v", got, want, got)
	}
}

// testConcurrentUpdateOrg has 20 goroutines each add an audience.
func testConcurrentUpdateOrg(t *testing.T, s storage.Store) {
	const n = 20
	ctx := context.Background()
	f := mustCreateOrg(t, s, "acme", 10)
	aud := func(i int) string { return fmt.Sprintf("https://aud%d.example.com", i) }

	errs := parallel(n, func(i int) error {
		_, err := s.UpdateOrg(ctx, "acme", func(o keys.Org) (keys.Org, error) {
			o.Policy.Audiences = append(o.Policy.Audiences, aud(i))
			return o, nil
		})
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("UpdateOrg #%d: %v", i, err)
		}
	}
	got := mustGetOrg(t, s, "acme").Policy.Audiences
	for i := range n {
		if !slices.Contains(got, aud(i)) {
			t.Errorf("audiences lack %s: an update was lost", aud(i))
		}
	}
	if got, want := len(got), len(f.org.Policy.Audiences)+n; got != want {
		t.Fatalf("len(audiences)=%d, want %d", got, want)
	}
}

// testConcurrentUpdateSigningKeys has 20 goroutines each add a signing
// key: all 20 must be there afterwards, still oldest first.
func testConcurrentUpdateSigningKeys(t *testing.T, s storage.Store) {
	const n = 20
	ctx := context.Background()
	f := mustCreateOrg(t, s, "acme", 10)
	kid := func(i int) string { return fmt.Sprintf("kid-%02d", i) }

	errs := parallel(n, func(i int) error {
		sk := newSigningKey("acme", kid(i), t0.Add(time.Duration(n-i)*time.Minute))
		_, err := s.UpdateSigningKeys(ctx, "acme", func(ks []keys.SigningKey) ([]keys.SigningKey, error) {
			return append(ks, sk), nil
		})
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("UpdateSigningKeys #%d: %v", i, err)
		}
	}
	got := mustListSigningKeys(t, s, "acme")
	if got, want := len(got), len(f.signing)+n; got != want {
		t.Fatalf("len(signing keys)=%d, want %d", got, want)
	}
	for i := range n {
		if !slices.ContainsFunc(got, func(k keys.SigningKey) bool { return k.KID == kid(i) }) {
			t.Errorf("signing keys lack %s: an update was lost", kid(i))
		}
	}
	if !slices.IsSortedFunc(got, func(a, b keys.SigningKey) int { return a.CreatedAt.Compare(b.CreatedAt) }) {
		t.Fatalf("signing keys are not ordered by CreatedAt")
	}
}

// testConcurrentInitSetting races 20 InitSettings of one name: one value
// wins and every caller gets it back.
func testConcurrentInitSetting(t *testing.T, s storage.Store) {
	const n = 20
	ctx := context.Background()
	got := make([]string, n)
	errs := parallel(n, func(i int) error {
		v, err := s.InitSetting(ctx, "check", fmt.Appendf(nil, "value %d", i))
		got[i] = string(v)
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("InitSetting #%d: %v", i, err)
		}
	}
	stored, err := s.GetSetting(ctx, "check")
	if err != nil {
		t.Fatalf("GetSetting: %v", err)
	}
	for i, v := range got {
		if v != string(stored) {
			t.Fatalf("InitSetting #%d=%q, want the stored %q", i, v, stored)
		}
	}
}

// testConcurrentAppendAudit has 20 goroutines each append a batch of five
// events (four in acme, one in acme-2): every event must be listed exactly
// once, newest first, in its own org.
func testConcurrentAppendAudit(t *testing.T, s storage.Store) {
	const n, perBatch = 20, 5
	ctx := context.Background()
	mustCreateOrg(t, s, "acme", 10)
	mustCreateOrg(t, s, "acme-2", 10)
	batches := make([][]keys.AuditEvent, n)
	want := map[string][]keys.AuditEvent{}
	for i := range batches {
		for j := range perBatch {
			org := "acme"
			if j == perBatch-1 {
				org = "acme-2"
			}
			e := newAuditEvent(t, org, "root", keys.AuditKeyUpdate, "")
			e.Details = map[string]string{"batch": fmt.Sprint(i), "event": fmt.Sprint(j)}
			batches[i] = append(batches[i], e)
			want[org] = append(want[org], e)
		}
	}

	errs := parallel(n, func(i int) error { return s.AppendAudit(ctx, batches[i]) })
	for i, err := range errs {
		if err != nil {
			t.Errorf("AppendAudit #%d: %v", i, err)
		}
	}
	for org, want := range want {
		checkEqual(t, fmt.Sprintf("ListAudit(%q)", org), mustListAudit(t, s, org, storage.AuditListOptions{}), byNewest(want))
	}
}
