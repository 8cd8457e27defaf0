package handlers

import (
	"math"
	"net/netip"
	"strconv"
	"sync"
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

	mu    sync.Mutex
	addrs map[netip.Addr]*rate.Limiter
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
		addrs: make(map[netip.Addr]*rate.Limiter),
	}
}

// retryAfter returns how long addr must wait before its next exchange is
// heard, or 0 if it may go ahead.
func (l *failureLimiter) retryAfter(addr netip.Addr) time.Duration {
	addr = limitKey(addr)
	l.mu.Lock()
	lim := l.addrs[addr]
	l.mu.Unlock()
	if lim == nil {
		return 0
	}
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
	l.mu.Lock()
	lim := l.addrs[addr]
	if lim == nil {
		if len(l.addrs) >= maxTrackedAddrs {
			l.prune(now)
		}
		lim = rate.NewLimiter(l.limit, l.burst)
		l.addrs[addr] = lim
	}
	l.mu.Unlock()
	lim.AllowN(now, 1)
}

// prune forgets addresses whose bucket has refilled, and if that is not
// enough (failures from very many addresses), arbitrary ones, so memory
// stays bounded; l.mu is held.
func (l *failureLimiter) prune(now time.Time) {
	for a, lim := range l.addrs {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.addrs, a)
		}
	}
	for a := range l.addrs {
		if len(l.addrs) < maxTrackedAddrs*9/10 {
			break
		}
		delete(l.addrs, a)
	}
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
