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
// keys.Org, keys.APIKey and keys.SigningKey survives a round trip (times
// with time.Time.Equal, nil and empty slices as equal, custom claims as
// JSON values), ordering and paging of the lists, and that revoking or
// deleting a key frees a max_keys slot.
//
// RunConcurrent checks the invariants that only concurrency can break: no
// org ever exceeds max_keys, and no update made through an updater
// function is lost.
package storagetest
