package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keymint/keymint/keys"
	"github.com/keymint/keymint/storage"
)

// t0 is the base time of every fixture: UTC and whole seconds, as keymint
// writes them, so any backend can store it exactly.
var t0 = time.Date(2025, time.March, 14, 15, 9, 26, 0, time.UTC)

// errBoom is what failing updater functions return; the store must hand it
// back unchanged.
var errBoom = errors.New("storagetest: boom")

// newOrg returns an org with every field set.
func newOrg(id string, maxKeys int) keys.Org {
	longerTTLUntil := t0.Add(2 * time.Hour)
	return keys.Org{
		ID:        id,
		Name:      "Org " + id,
		Alg:       keys.AlgES256,
		CreatedAt: t0,
		UpdatedAt: t0.Add(time.Minute),
		Policy: keys.Policy{
			MaxKeys:        maxKeys,
			MaxKeyLifetime: keys.Duration(90 * 24 * time.Hour),
			RequireExpiry:  true,
			TokenTTL:       keys.Duration(15 * time.Minute),
			Audiences:      []string{"https://api.example.com", "https://" + id + ".example.com"},
			ExpiryWarning:  keys.Duration(7 * 24 * time.Hour),
		},
		Limits: keys.Limits{
			MaxKeys:        2 * maxKeys,
			MaxKeyLifetime: keys.Duration(365 * 24 * time.Hour),
		},
		LongerTTLTokensUntil: &longerTTLUntil,
	}
}

// newID returns a fresh UUIDv7 string.
func newID(tb testing.TB) string {
	tb.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		tb.Fatalf("uuid.NewV7: %v", err)
	}
	return id.String()
}

// newAPIKey returns a live key of org with a fresh UUIDv7 id and every
// field set except RevokedAt.
func newAPIKey(tb testing.TB, org string) keys.APIKey {
	tb.Helper()
	id := newID(tb)
	expires := t0.Add(30 * 24 * time.Hour)
	lastUsed := t0.Add(time.Hour)
	prevUntil := t0.Add(2 * time.Hour)
	hash := sha256.Sum256([]byte("secret of " + id))
	prev := sha256.Sum256([]byte("previous secret of " + id))
	return keys.APIKey{
		ID:              id,
		Org:             org,
		Name:            "key " + id,
		Type:            keys.TypeSecret,
		Role:            "developer",
		Scopes:          []string{"devices:read", "devices/42:write"},
		AllowedCIDRs:    []string{"10.0.0.0/8", "2001:db8::/32"},
		ExpiresAt:       &expires,
		Enabled:         true,
		Claims:          json.RawMessage(`{"tier":"gold","limits":{"rps":10}}`),
		CreatedBy:       "root",
		UpdatedBy:       "key:" + id,
		CreatedAt:       t0,
		UpdatedAt:       t0.Add(time.Second),
		LastUsedAt:      &lastUsed,
		MaskedValue:     "km_sk_…" + id[len(id)-4:],
		SecretHash:      hash[:],
		PrevSecretHash:  prev[:],
		PrevSecretUntil: &prevUntil,
	}
}

// newRevokedAPIKey is newAPIKey with RevokedAt set too, so that every
// field is set.
func newRevokedAPIKey(tb testing.TB, org string) keys.APIKey {
	tb.Helper()
	k := newAPIKey(tb, org)
	revoked := t0.Add(3 * time.Hour)
	k.RevokedAt = &revoked
	return k
}

// newSigningKey returns a retiring signing key (so that every field is
// set) created at created.
func newSigningKey(org, kid string, created time.Time) keys.SigningKey {
	activated := created.Add(time.Hour)
	retired := created.Add(48 * time.Hour)
	remove := created.Add(72 * time.Hour)
	return keys.SigningKey{
		KID:         kid,
		Org:         org,
		Alg:         keys.AlgES256,
		Status:      keys.SigningRetiring,
		PublicKey:   []byte("public key of " + kid),
		Sealed:      []byte("sealed private key of " + kid),
		CreatedAt:   created,
		ActivatedAt: &activated,
		RetiredAt:   &retired,
		RemoveAfter: &remove,
	}
}

// fixture is an org created with two signing keys and its admin key.
type fixture struct {
	org     keys.Org
	signing []keys.SigningKey
	admin   keys.APIKey
}

// mustCreateOrg creates org id with max_keys maxKeys, two signing keys
// and an admin key (which counts toward max_keys).
func mustCreateOrg(tb testing.TB, s storage.Store, id string, maxKeys int) fixture {
	tb.Helper()
	f := fixture{
		org: newOrg(id, maxKeys),
		signing: []keys.SigningKey{
			newSigningKey(id, id+"-sk-1", t0),
			newSigningKey(id, id+"-sk-2", t0.Add(24*time.Hour)),
		},
		admin: newAPIKey(tb, id),
	}
	f.admin.Role = "admin"
	if err := s.CreateOrg(context.Background(), f.org, f.signing, f.admin); err != nil {
		tb.Fatalf("CreateOrg(%q): %v", id, err)
	}
	return f
}

// mustCreateAPIKeys creates n keys in org and returns them in creation
// order.
func mustCreateAPIKeys(tb testing.TB, s storage.Store, org string, n int) []keys.APIKey {
	tb.Helper()
	out := make([]keys.APIKey, n)
	for i := range out {
		out[i] = newAPIKey(tb, org)
		out[i].Name = fmt.Sprintf("key %d", i)
		if err := s.CreateAPIKey(context.Background(), out[i]); err != nil {
			tb.Fatalf("CreateAPIKey #%d: %v", i, err)
		}
	}
	return out
}

// mustGetAPIKey returns the stored key.
func mustGetAPIKey(tb testing.TB, s storage.Store, id string) keys.APIKey {
	tb.Helper()
	k, err := s.GetAPIKey(context.Background(), id)
	if err != nil {
		tb.Fatalf("GetAPIKey(%q): %v", id, err)
	}
	return k
}

// mustGetOrg returns the stored org.
func mustGetOrg(tb testing.TB, s storage.Store, id string) keys.Org {
	tb.Helper()
	o, err := s.GetOrg(context.Background(), id)
	if err != nil {
		tb.Fatalf("GetOrg(%q): %v", id, err)
	}
	return o
}

// mustListAPIKeys lists org's keys with opts.
func mustListAPIKeys(tb testing.TB, s storage.Store, org string, opts storage.ListOptions) []keys.APIKey {
	tb.Helper()
	ks, err := s.ListAPIKeys(context.Background(), org, opts)
	if err != nil {
		tb.Fatalf("ListAPIKeys(%q, %+v): %v", org, opts, err)
	}
	return ks
}

// mustListSigningKeys lists org's signing keys.
func mustListSigningKeys(tb testing.TB, s storage.Store, org string) []keys.SigningKey {
	tb.Helper()
	ks, err := s.ListSigningKeys(context.Background(), org)
	if err != nil {
		tb.Fatalf("ListSigningKeys(%q): %v", org, err)
	}
	return ks
}

// newAuditEvent returns an event of org with a fresh UUIDv7 id, acting
// on keyID (which may be ""), with every other field set.
func newAuditEvent(tb testing.TB, org, actor, action, keyID string) keys.AuditEvent {
	tb.Helper()
	id := newID(tb)
	return keys.AuditEvent{
		ID:       id,
		Org:      org,
		Time:     t0.Add(time.Minute),
		Actor:    actor,
		Action:   action,
		KeyID:    keyID,
		ClientIP: "192.0.2.7",
		Reason:   "reason of " + id,
		Details:  map[string]string{"event": id, "field": "name"},
	}
}

// mustAppendAudit appends events in one call.
func mustAppendAudit(tb testing.TB, s storage.Store, events ...keys.AuditEvent) {
	tb.Helper()
	if err := s.AppendAudit(context.Background(), events); err != nil {
		tb.Fatalf("AppendAudit(%d events): %v", len(events), err)
	}
}

// mustListAudit lists org's events with opts.
func mustListAudit(tb testing.TB, s storage.Store, org string, opts storage.AuditListOptions) []keys.AuditEvent {
	tb.Helper()
	es, err := s.ListAudit(context.Background(), org, opts)
	if err != nil {
		tb.Fatalf("ListAudit(%q, %+v): %v", org, opts, err)
	}
	if es == nil {
		tb.Fatalf("ListAudit(%q, %+v)=nil, want a non-nil slice", org, opts)
	}
	return es
}

// mustListTombstones lists the tombstones since since.
func mustListTombstones(tb testing.TB, s storage.Store, since time.Time) map[string]time.Time {
	tb.Helper()
	ts, err := s.ListTombstones(context.Background(), since)
	if err != nil {
		tb.Fatalf("ListTombstones(%v): %v", since, err)
	}
	if ts == nil {
		tb.Fatalf("ListTombstones(%v)=nil, want a non-nil map", since)
	}
	return ts
}

// eventIDs returns the ids of es, in order.
func eventIDs(es []keys.AuditEvent) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

// byNewest returns a copy of es sorted as ListAudit orders them: highest
// (newest UUIDv7) id first.
func byNewest(es []keys.AuditEvent) []keys.AuditEvent {
	out := slices.Clone(es)
	slices.SortFunc(out, func(a, b keys.AuditEvent) int { return strings.Compare(b.ID, a.ID) })
	return out
}

// checkErrorIs fails unless errors.Is(err, want).
func checkErrorIs(tb testing.TB, what string, err, want error) {
	tb.Helper()
	if !errors.Is(err, want) {
		tb.Fatalf("%s: err=%v, want errors.Is %v", what, err, want)
	}
}

// checkAPIKeyAbsent fails unless no key has this id.
func checkAPIKeyAbsent(tb testing.TB, s storage.Store, id string) {
	tb.Helper()
	_, err := s.GetAPIKey(context.Background(), id)
	checkErrorIs(tb, fmt.Sprintf("GetAPIKey(%q)", id), err, storage.ErrNotFound)
}

// ids returns the ids of ks, in order.
func ids(ks []keys.APIKey) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.ID
	}
	return out
}

// sortedIDs returns the ids of ks sorted, as ListAPIKeys orders them.
func sortedIDs(ks []keys.APIKey) []string {
	out := ids(ks)
	slices.Sort(out)
	return out
}

// checkEqual fails with one line per field of got that differs from want.
// It compares the way a user of the store would: time.Time with Equal, nil
// and empty slices (and maps) as equal, json.RawMessage as JSON values.
func checkEqual[T any](tb testing.TB, what string, got, want T) {
	tb.Helper()
	var d []string
	diff(&d, reflect.TypeFor[T]().String(), reflect.ValueOf(got), reflect.ValueOf(want))
	for _, line := range d {
		tb.Errorf("%s: %s", what, line)
	}
	if len(d) > 0 {
		tb.FailNow()
	}
}

var (
	timeType = reflect.TypeFor[time.Time]()
	rawType  = reflect.TypeFor[json.RawMessage]()
	bytesTyp = reflect.TypeFor[[]byte]()
)

// diff appends to d a line for every leaf of got that differs from want.
func diff(d *[]string, path string, got, want reflect.Value) {
	report := func(g, w any) { *d = append(*d, fmt.Sprintf("%s=%v, want %v", path, g, w)) }
	switch got.Type() {
	case timeType:
		if g, w := got.Interface().(time.Time), want.Interface().(time.Time); !g.Equal(w) {
			report(g, w)
		}
		return
	case rawType:
		if g, w := got.Bytes(), want.Bytes(); !jsonEqual(g, w) {
			report(string(g), string(w))
		}
		return
	case bytesTyp:
		if g, w := got.Bytes(), want.Bytes(); !bytes.Equal(g, w) {
			report(fmt.Sprintf("%x", g), fmt.Sprintf("%x", w))
		}
		return
	}
	switch got.Kind() {
	case reflect.Struct:
		for i := range got.NumField() {
			if f := got.Type().Field(i); f.IsExported() {
				diff(d, path+"."+f.Name, got.Field(i), want.Field(i))
			}
		}
	case reflect.Pointer:
		switch {
		case got.IsNil() && want.IsNil():
		case got.IsNil():
			report("nil", want.Elem())
		case want.IsNil():
			report(got.Elem(), "nil")
		default:
			diff(d, path, got.Elem(), want.Elem())
		}
	case reflect.Map:
		if got.Len() != want.Len() {
			report(got, want)
			return
		}
		for _, k := range want.MapKeys() {
			g := got.MapIndex(k)
			if !g.IsValid() {
				*d = append(*d, fmt.Sprintf("%s[%v] missing, want %v", path, k, want.MapIndex(k)))
				continue
			}
			diff(d, fmt.Sprintf("%s[%v]", path, k), g, want.MapIndex(k))
		}
	case reflect.Slice:
		if got.Len() != want.Len() {
			report(got, want)
			return
		}
		for i := range got.Len() {
			diff(d, fmt.Sprintf("%s[%d]", path, i), got.Index(i), want.Index(i))
		}
	default:
		if !got.Equal(want) {
			report(got, want)
		}
	}
}

// jsonEqual reports whether a and b are the same JSON value; empty means
// absent and equals only empty.
func jsonEqual(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return bytes.Equal(a, b)
	}
	return reflect.DeepEqual(va, vb)
}

// checkAllSet fails if a fixture leaves a field at its zero value, which
// would let a backend drop that field unnoticed.
func checkAllSet(tb testing.TB, what string, v any) {
	tb.Helper()
	checkAllSetValue(tb, what, reflect.ValueOf(v))
}

func checkAllSetValue(tb testing.TB, path string, v reflect.Value) {
	tb.Helper()
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		fv := v.Field(i)
		if fv.IsZero() {
			tb.Fatalf("fixture leaves %s.%s unset; set it so that its round trip is tested", path, f.Name)
		}
		if fv.Kind() == reflect.Struct && fv.Type() != timeType {
			checkAllSetValue(tb, path+"."+f.Name, fv)
		}
	}
}
