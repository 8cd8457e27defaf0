// Package storagetest is the conformance suite of storage.Store. Every
// backend runs it from its own tests; it is a normal package (not a _test
// one) so that they can import it.
//
// # Usage
//
// A backend's test passes a constructor that returns a fresh, empty store
// and registers its Close with t.Cleanup:
//
//	func TestStore(t *testing.T) {
//		storagetest.Run(t, newStore)
//	}
//
//	func TestStoreConcurrent(t *testing.T) {
//		storagetest.RunConcurrent(t, newStore)
//	}
//
// The Close subtest closes its store itself, so Close must tolerate being
// called again by the cleanup. A backend that needs an outside service
// (etcd, Postgres) should skip unless an environment variable points at
// one.
//
// # What is checked
//
// Run checks each method's results and its sentinel errors with
// errors.Is, that failed writes write nothing, that every field of
// keys.Org, keys.APIKey, keys.SigningKey and keys.AuditEvent survives a
// round trip (times with time.Time.Equal, nil and empty slices and maps as
// equal, custom claims as JSON values), ordering, paging and filtering of
// the lists, that list methods return empty rather than nil results, that
// revoking or deleting a key frees a max_keys slot and unrevoking one
// takes a slot only if one is free, that updaters and checks get their
// errors back unchanged, and that DeleteAPIKey records a tombstone dated
// during the call (within a millisecond, for backends with coarser
// clocks) exactly when its check lets it delete.
//
// RunConcurrent checks the invariants that only concurrency can break: no
// org ever exceeds max_keys, no update made through an updater function
// is lost, and every audit event appended concurrently is listed exactly
// once.
package storagetest
