package handlers

import (
	"math"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Failure limiting defaults: past 30 failed exchanges a minute from one
// address, its exchanges get 429 until the bucket refills.
const (
	DefaultFailureLimit  = 30
	DefaultFailureWindow = time.Minute
	maxTrackedAddrs      = 100_000
)

// failureLimiter throttles client addresses that fail exchanges. Only
// failures spend tokens, and they are kept per address, so the owner of a
// key calling from another address is never locked out by someone else's
// failures, and a client that never fails is never slowed.
type failureLimiter struct {
	limit rate.Limit
	burst int
	now   func() time.Time

	// addrs maps an address to its *rate.Limiter. Every exchange reads
	// it, so it is a sync.Map: lookups take no lock.
	addrs sync.Map
	size  atomic.Int64
	mu    sync.Mutex // serializes pruning
}

func newFailureLimiter(failures int, window time.Duration, now func() time.Time) *failureLimiter {
	if failures <= 0 {
		failures = DefaultFailureLimit
	}
	if window <= 0 {
		window = DefaultFailureWindow
	}
	return &failureLimiter{
		limit: rate.Limit(float64(failures) / window.Seconds()), burst: failures, now: now,
	}
}

// retryAfter returns how long addr must wait before its next exchange is
// heard, or 0 if it may go ahead.
func (l *failureLimiter) retryAfter(addr netip.Addr) time.Duration {
	v, ok := l.addrs.Load(limitKey(addr))
	if !ok {
		return 0
	}
	lim := v.(*rate.Limiter)
	now := l.now()
	if lim.TokensAt(now) >= 1 {
		return 0
	}
	r := lim.ReserveN(now, 1)
	defer r.CancelAt(now)
	return r.DelayFrom(now)
}

// failed spends one of addr's tokens.
func (l *failureLimiter) failed(addr netip.Addr) {
	addr = limitKey(addr)
	now := l.now()
	v, ok := l.addrs.Load(addr)
	if !ok {
		if l.size.Load() >= maxTrackedAddrs {
			l.prune(now)
		}
		var loaded bool
		if v, loaded = l.addrs.LoadOrStore(addr, rate.NewLimiter(l.limit, l.burst)); !loaded {
			l.size.Add(1)
		}
	}
	v.(*rate.Limiter).AllowN(now, 1)
}

// prune forgets addresses whose bucket has refilled, and if that is not
// enough (failures from very many addresses), arbitrary ones, so memory
// stays bounded.
func (l *failureLimiter) prune(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.addrs.Range(func(k, v any) bool {
		if v.(*rate.Limiter).TokensAt(now) >= float64(l.burst) {
			l.addrs.Delete(k)
			l.size.Add(-1)
		}
		return true
	})
	l.addrs.Range(func(k, _ any) bool {
		if l.size.Load() < maxTrackedAddrs*9/10 {
			return false
		}
		l.addrs.Delete(k)
		l.size.Add(-1)
		return true
	})
}

// limitKey is the unit an address is limited as: an IPv4 address, or the
// /64 of an IPv6 address (one host usually holds a whole /64).
func limitKey(a netip.Addr) netip.Addr {
	if a.Is6() && !a.Is4In6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a.Unmap()
}

// retryAfterSeconds renders a Retry-After value, at least 1.
func retryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(int(math.Max(1, math.Ceil(d.Seconds()))))
}
