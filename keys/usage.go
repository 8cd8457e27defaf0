package keys

import "time"

// UsageDay is one key's exchange counts for one UTC day.
type UsageDay struct {
	Org       string           `json:"org"`
	KeyID     string           `json:"key_id"`
	Date      string           `json:"date"` // YYYY-MM-DD, UTC
	Exchanges int64            `json:"exchanges"`
	Failures  map[string]int64 `json:"failures,omitempty"` // by reason
}

// Add merges o's counts into u.
func (u *UsageDay) Add(o UsageDay) {
	u.Exchanges += o.Exchanges
	for r, n := range o.Failures {
		if u.Failures == nil {
			u.Failures = make(map[string]int64)
		}
		u.Failures[r] += n
	}
}

// FailureCount is the sum of u's failures.
func (u UsageDay) FailureCount() int64 {
	var n int64
	for _, v := range u.Failures {
		n += v
	}
	return n
}

// UsageDate is the day bucket of t.
func UsageDate(t time.Time) string { return t.UTC().Format(time.DateOnly) }
