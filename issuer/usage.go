package issuer

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keymint/keymint/keys"
	"github.com/keymint/keymint/storage"
)

// DefaultUsageFlushInterval is how often usage counts reach the database
// unless Config.UsageFlushInterval says otherwise. A crash loses at most
// one interval of counts.
const DefaultUsageFlushInterval = 10 * time.Second

// Observer receives what metrics count. Implementations must be cheap and
// safe for concurrent use.
type Observer interface {
	// Exchange is called once per exchange with "ok" or the failure reason.
	Exchange(outcome string)
	// Signed is called after each signature with its algorithm and time.
	Signed(alg string, d time.Duration)
}

type nopObserver struct{}

func (nopObserver) Exchange(string)              {}
func (nopObserver) Signed(string, time.Duration) {}

type usageKey struct{ org, keyID, date string }

// dayCount is one key's counts for one day while in memory. Exchanges and
// the last use are atomics, so concurrent exchanges of a busy key never
// wait on each other; failures, rarer, take a small lock.
type dayCount struct {
	exchanges atomic.Int64
	lastUsed  atomic.Int64 // unix nanoseconds of the latest success

	mu       sync.Mutex
	failures map[string]int64
}

// usageCounter counts exchanges in memory, so the exchange path never
// opens a write transaction; flush moves the counts to the store in one
// transaction.
type usageCounter struct {
	store storage.Store
	log   *slog.Logger

	// mu guards the swap of days at a flush: recorders hold it shared,
	// so they run in parallel with each other.
	mu   sync.RWMutex
	days *sync.Map // usageKey → *dayCount

	flushMu sync.Mutex // one flush at a time, so counts land in order
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

func newUsageCounter(store storage.Store, log *slog.Logger, interval time.Duration) *usageCounter {
	u := &usageCounter{
		store: store, log: log, days: new(sync.Map),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	go u.run(interval)
	return u
}

// record counts one exchange of the key at now: a success when reason is
// "", else a failure for that reason.
func (u *usageCounter) record(org, keyID string, now time.Time, reason string) {
	k := usageKey{org: org, keyID: keyID, date: keys.UsageDate(now)}
	u.mu.RLock()
	defer u.mu.RUnlock()
	v, ok := u.days.Load(k)
	if !ok {
		v, _ = u.days.LoadOrStore(k, new(dayCount))
	}
	d := v.(*dayCount)
	if reason == "" {
		d.exchanges.Add(1)
		for t := now.UnixNano(); ; {
			last := d.lastUsed.Load()
			if t <= last || d.lastUsed.CompareAndSwap(last, t) {
				break
			}
		}
		return
	}
	d.mu.Lock()
	if d.failures == nil {
		d.failures = make(map[string]int64, 1)
	}
	d.failures[reason]++
	d.mu.Unlock()
}

// take swaps out the counts gathered so far.
func (u *usageCounter) take() ([]keys.UsageDay, map[string]time.Time) {
	u.mu.Lock()
	days := u.days
	u.days = new(sync.Map)
	u.mu.Unlock()
	var deltas []keys.UsageDay
	last := map[string]time.Time{}
	days.Range(func(k, v any) bool {
		uk, d := k.(usageKey), v.(*dayCount)
		day := keys.UsageDay{Org: uk.org, KeyID: uk.keyID, Date: uk.date, Exchanges: d.exchanges.Load()}
		d.mu.Lock()
		if len(d.failures) > 0 {
			day.Failures = d.failures
		}
		d.mu.Unlock()
		deltas = append(deltas, day)
		if ns := d.lastUsed.Load(); ns > 0 {
			if t := time.Unix(0, ns); t.After(last[uk.keyID]) {
				last[uk.keyID] = t
			}
		}
		return true
	})
	return deltas, last
}

// flush writes the counts gathered so far. On failure they are put back
// for the next try.
func (u *usageCounter) flush(ctx context.Context) error {
	u.flushMu.Lock()
	defer u.flushMu.Unlock()
	deltas, last := u.take()
	if len(deltas) == 0 {
		return nil
	}
	if err := u.store.AddUsage(ctx, deltas, last); err != nil {
		u.putBack(deltas, last)
		return fmt.Errorf("issuer: flush usage: %w", err)
	}
	return nil
}

// putBack merges counts that failed to flush into the current ones.
func (u *usageCounter) putBack(deltas []keys.UsageDay, last map[string]time.Time) {
	u.mu.RLock()
	defer u.mu.RUnlock()
	for _, day := range deltas {
		v, _ := u.days.LoadOrStore(usageKey{day.Org, day.KeyID, day.Date}, new(dayCount))
		d := v.(*dayCount)
		d.exchanges.Add(day.Exchanges)
		if t, ok := last[day.KeyID]; ok && t.UnixNano() > d.lastUsed.Load() {
			d.lastUsed.Store(t.UnixNano())
		}
		d.mu.Lock()
		for r, n := range day.Failures {
			if d.failures == nil {
				d.failures = make(map[string]int64)
			}
			d.failures[r] += n
		}
		d.mu.Unlock()
	}
}

func (u *usageCounter) run(interval time.Duration) {
	defer close(u.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if err := u.flush(context.Background()); err != nil {
				u.log.Error("usage flush failed; counts kept for the next try", "err", err)
			}
		case <-u.stop:
			return
		}
	}
}

// close stops the periodic flush and writes what is left.
func (u *usageCounter) close() error {
	u.once.Do(func() { close(u.stop) })
	<-u.done
	return u.flush(context.Background())
}

// UsageReport is the usage of a key, or of a whole org.
type UsageReport struct {
	Org            string          `json:"org"`
	KeyID          string          `json:"key_id,omitempty"`
	From           string          `json:"from"`
	To             string          `json:"to"`
	Days           []UsageDaySum   `json:"days"`
	TotalExchanges int64           `json:"total_exchanges"`
	TotalFailures  int64           `json:"total_failures"`
	LastUsedAt     *time.Time      `json:"last_used_at"`
	Keys           []UsageKeyTotal `json:"keys,omitempty"` // org reports only
}

// UsageDaySum is one day of a report.
type UsageDaySum struct {
	Date      string           `json:"date"`
	Exchanges int64            `json:"exchanges"`
	Failures  map[string]int64 `json:"failures"`
}

// UsageKeyTotal is one key's share of an org report.
type UsageKeyTotal struct {
	KeyID     string `json:"key_id"`
	Exchanges int64  `json:"exchanges"`
	Failures  int64  `json:"failures"`
}

// MaxUsageDays bounds the window of a usage report.
const MaxUsageDays = 90

// Usage reports exchanges and failures per day over the last days days
// (1..90; 0 means 30), for one key of p's org, or for the whole org when
// keyID is "". Counts not yet flushed are flushed first.
func (s *Service) Usage(ctx context.Context, p Principal, keyID string, days int) (UsageReport, error) {
	if err := requireOrg(p, keys.PermUsageRead); err != nil {
		return UsageReport{}, err
	}
	switch {
	case days == 0:
		days = 30
	case days < 1 || days > MaxUsageDays:
		return UsageReport{}, &keys.ValidationError{Fields: []*keys.FieldError{{Field: "days", Message: fmt.Sprintf("must be between 1 and %d", MaxUsageDays)}}}
	}
	r := UsageReport{Org: p.Org, KeyID: keyID}
	if err := s.usage.flush(ctx); err != nil {
		return UsageReport{}, err
	}
	if keyID != "" {
		k, err := s.store.GetAPIKey(ctx, keyID) // after the flush: its last_used_at is current
		if err != nil {
			return UsageReport{}, err
		}
		if k.Org != p.Org {
			return UsageReport{}, fmt.Errorf("issuer: key %q: %w", keyID, storage.ErrNotFound)
		}
		r.LastUsedAt = k.LastUsedAt
	}
	now := s.now().UTC()
	r.From, r.To = keys.UsageDate(now.AddDate(0, 0, -(days-1))), keys.UsageDate(now)
	stored, err := s.store.ListUsage(ctx, p.Org, keyID, r.From, r.To)
	if err != nil {
		return UsageReport{}, err
	}
	byDate := map[string]*UsageDaySum{}
	byKey := map[string]*UsageKeyTotal{}
	for _, d := range stored {
		sum := byDate[d.Date]
		if sum == nil {
			sum = &UsageDaySum{Date: d.Date, Failures: map[string]int64{}}
			byDate[d.Date] = sum
		}
		sum.Exchanges += d.Exchanges
		for reason, n := range d.Failures {
			sum.Failures[reason] += n
		}
		kt := byKey[d.KeyID]
		if kt == nil {
			kt = &UsageKeyTotal{KeyID: d.KeyID}
			byKey[d.KeyID] = kt
		}
		kt.Exchanges += d.Exchanges
		kt.Failures += d.FailureCount()
		r.TotalExchanges += d.Exchanges
		r.TotalFailures += d.FailureCount()
	}
	r.Days = make([]UsageDaySum, 0, len(byDate))
	for _, d := range byDate {
		r.Days = append(r.Days, *d)
	}
	sort.Slice(r.Days, func(i, j int) bool { return r.Days[i].Date < r.Days[j].Date })
	if keyID == "" {
		for _, kt := range byKey {
			r.Keys = append(r.Keys, *kt)
		}
		sort.Slice(r.Keys, func(i, j int) bool { return r.Keys[i].Exchanges > r.Keys[j].Exchanges })
	}
	if keyID == "" {
		r.LastUsedAt, err = s.orgLastUsed(ctx, p.Org)
	}
	return r, err
}

// orgLastUsed is the latest last use of the org's keys.
func (s *Service) orgLastUsed(ctx context.Context, org string) (*time.Time, error) {
	var latest *time.Time
	_, err := s.store.ListAPIKeys(ctx, org, storage.ListOptions{Filter: func(k keys.APIKey) bool {
		if k.LastUsedAt != nil && (latest == nil || k.LastUsedAt.After(*latest)) {
			t := *k.LastUsedAt
			latest = &t
		}
		return false
	}})
	return latest, err
}
