// Package bolt implements storage.Store on go.etcd.io/bbolt, a single-file,
// memory-mapped B+tree with serializable transactions: one writer at a
// time, any number of readers that never block it. bbolt is used only in
// this package; callers see storage.Store and the few methods of DB.
//
// # Layout
//
// Values are the JSON encoding of the keys domain types. The file holds
// these buckets, all created by Open (so a file written before a bucket
// was added gains it on the next Open):
//
//	orgs            org id                     → keys.Org
//	apikeys         key id                     → keys.APIKey
//	apikeys_by_org  org id + "\x00" + key id   → 1 byte: 1 live, 0 revoked
//	signing_keys    org id                     → []keys.SigningKey, oldest first
//	settings        name                       → raw bytes
//	tombstones      key id                     → deletion time, RFC 3339 (UTC, ns)
//	audit           org id + "\x00" + event id → keys.AuditEvent
//	usage           org id + "\x00" + date + "\x00" + key id → keys.UsageDay
//	denials         key id                     → when it was revoked or disabled
//	live_key_counts org id                     → live keys, uint64 big endian
//
// apikeys_by_org is an index kept in step with apikeys by every write that
// touches a key. ListAPIKeys walks it in key id order (ids are UUIDv7, so
// that is creation order). Every change of an entry's one-byte value also
// updates the org's count in live_key_counts, so CreateAPIKey checks
// max_keys by reading one counter; Open rebuilds the counts from the
// index for a file written before they existed. The index relies on org
// ids never containing "\x00", which keys.ValidOrgID guarantees.
//
// tombstones records each key DeleteAPIKey removes, for readers that sync
// deletions with ListTombstones. DeleteAPIKey prunes tombstones older than
// TombstoneRetention (seven days) in its own transaction, so the bucket
// stays small and ListTombstones can afford to scan all of it. Deletion
// times come from Options.Now, read inside the write transaction.
//
// audit is keyed like the index, and event ids are UUIDv7 strings, so an
// org's events sit together in time order. ListAudit seeks to the end of
// the org's range (or to opts.After) and walks back with a cursor, newest
// first; AppendAudit refuses an org id containing "\x00", so one org's
// range never holds another's events, not even when one id is a prefix of
// the other ("acme" and "acme-2").
//
// # Transactions
//
// Every write is exactly one bbolt read-write transaction (bbolt's
// Update) and commits whole or not at all; bbolt runs one at a time, so a
// write always sees the result of the previous one. This is what makes
// CreateAPIKey's max_keys check exact under concurrency: the count and the
// insert happen in the same transaction. The updater functions of
// UpdateOrg, UpdateAPIKey and UpdateSigningKeys, and the check of
// DeleteAPIKey, run inside that transaction, are called exactly once, and
// must not call back into the DB: a nested write deadlocks, and a nested
// read may. If one fails, its error is returned unchanged and nothing is
// written. AppendAudit writes its whole batch in one transaction, or none
// of it.
//
// Reads run in read-only transactions (bbolt's View). bbolt's byte slices
// are valid only inside their transaction, so every value is decoded, or
// copied, before a method returns. ListAPIKeys calls its Filter inside the
// read transaction, so a Filter must not call the DB either.
//
// Methods return ctx.Err() without touching the file if ctx is already
// done. After Close, they fail with an error wrapping bbolt's "database not
// open".
package bolt
