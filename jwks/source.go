package jwks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Source provides the key set of an issuer.
//
// refresh is true when the caller saw a kid the set it got before did not
// have: a Source that caches should fetch again, within its own rate
// limit, in case the issuer rotated keys. A Source must be safe for
// concurrent use. A nil set with a nil error is an empty set.
type Source interface {
	KeySet(ctx context.Context, issuer string, refresh bool) (*KeySet, error)
}

// SourceFunc adapts a function to Source.
type SourceFunc func(ctx context.Context, issuer string, refresh bool) (*KeySet, error)

// KeySet calls f.
func (f SourceFunc) KeySet(ctx context.Context, issuer string, refresh bool) (*KeySet, error) {
	return f(ctx, issuer, refresh)
}

// StaticSource is a Source with a fixed key set per issuer.
type StaticSource map[string]*KeySet

// KeySet returns the issuer's set, or an error if there is none.
func (s StaticSource) KeySet(_ context.Context, issuer string, _ bool) (*KeySet, error) {
	set, ok := s[issuer]
	if !ok {
		return nil, errors.New("jwks: no key set for issuer")
	}
	return set, nil
}

// StaticKeySet returns a Source that serves set for every issuer; the
// Verifier's issuer options still decide which issuers are allowed.
func StaticKeySet(set *KeySet) Source {
	return SourceFunc(func(context.Context, string, bool) (*KeySet, error) { return set, nil })
}

// Cache lifetimes of a fetched JWKS: the response's Cache-Control max-age
// clamped to [MinCacheTTL, MaxCacheTTL], DefaultCacheTTL without one.
const (
	MinCacheTTL     = time.Minute
	MaxCacheTTL     = time.Hour
	DefaultCacheTTL = 5 * time.Minute
)

// RemoteSource fetches each issuer's JWKS from issuer +
// "/.well-known/jwks.json" and caches it.
//
//   - A cached set is used until the response's Cache-Control max-age
//     runs out (clamped to [MinCacheTTL, MaxCacheTTL]; DefaultCacheTTL
//     without one), then fetched again.
//   - No issuer's JWKS is fetched more than once per MinRefreshInterval,
//     whatever the callers ask: a flood of tokens with unknown kids costs
//     at most one fetch per interval.
//   - When a fetch fails, the last good set keeps being served (and the
//     fetch is retried after MinRefreshInterval). Without one, the error
//     is returned, and repeated for MinRefreshInterval.
//   - Callers that arrive while a fetch for the issuer is in flight wait
//     for it and share its result.
//
// RemoteSource fetches whatever issuer it is asked for: use it behind a
// Verifier, which asks only for allowed issuers. It logs nothing.
type RemoteSource struct {
	cfg remoteConfig

	mu      sync.RWMutex
	entries map[string]*remoteEntry
}

type remoteEntry struct {
	url   string
	state atomic.Pointer[remoteState]
	lock  chan struct{} // held (full) while fetching
}

// remoteState is an immutable snapshot of one issuer's cache.
type remoteState struct {
	set     *KeySet   // last good set, or nil
	expires time.Time // when set should be fetched again
	fetched time.Time // last fetch attempt, successful or not
	err     error     // the last attempt's error
}

// NewRemoteSource returns a RemoteSource configured by opts
// (WithHTTPClient, WithClock, WithMinRefreshInterval, WithMaxResponseSize).
func NewRemoteSource(opts ...RemoteOption) *RemoteSource {
	cfg := remoteConfig{
		maxSize:    DefaultMaxResponseSize,
		minRefresh: DefaultMinRefreshInterval,
		now:        time.Now,
	}
	for _, o := range opts {
		o.applyRemote(&cfg)
	}
	if cfg.client == nil {
		cfg.client = defaultHTTPClient()
	}
	return &RemoteSource{cfg: cfg, entries: make(map[string]*remoteEntry)}
}

func defaultHTTPClient() *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("jwks: too many redirects")
			}
			if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
				return errors.New("jwks: refusing redirect from https to http")
			}
			return nil
		},
	}
}

// JWKSURL returns where a RemoteSource fetches the JWKS of issuer.
func JWKSURL(issuer string) string {
	return strings.TrimSuffix(issuer, "/") + "/.well-known/jwks.json"
}

func (s *RemoteSource) entry(issuer string) *remoteEntry {
	s.mu.RLock()
	e := s.entries[issuer]
	s.mu.RUnlock()
	if e != nil {
		return e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e = s.entries[issuer]; e == nil {
		issuer = strings.Clone(issuer) // not a substring of some token's claims
		e = &remoteEntry{url: JWKSURL(issuer), lock: make(chan struct{}, 1)}
		s.entries[issuer] = e
	}
	return e
}

// KeySet returns the issuer's key set, fetching it if it is not cached,
// has expired, or refresh asks for it (subject to MinRefreshInterval).
func (s *RemoteSource) KeySet(ctx context.Context, issuer string, refresh bool) (*KeySet, error) {
	e := s.entry(issuer)
	if st := e.state.Load(); st != nil {
		now := s.cfg.now()
		if st.set != nil && !refresh && now.Before(st.expires) {
			return st.set, nil
		}
		if now.Sub(st.fetched) < s.cfg.minRefresh {
			return st.result() // fetched moments ago: no new fetch yet
		}
	}

	select {
	case e.lock <- struct{}{}:
	case <-ctx.Done():
		if st := e.state.Load(); st != nil && st.set != nil {
			return st.set, nil
		}
		return nil, ctx.Err()
	}
	defer func() { <-e.lock }()

	now := s.cfg.now()
	st := e.state.Load()
	if !s.due(st, now, refresh) {
		return st.result()
	}
	set, ttl, err := s.fetch(ctx, e.url)
	if err != nil {
		if ctx.Err() != nil { // the caller gave up; that says nothing of the server
			if st != nil && st.set != nil {
				return st.set, nil
			}
			return nil, err
		}
		next := &remoteState{expires: now.Add(s.cfg.minRefresh), fetched: now, err: err}
		if st != nil {
			next.set = st.set
		}
		e.state.Store(next)
		return next.result()
	}
	e.state.Store(&remoteState{set: set, expires: now.Add(ttl), fetched: now})
	return set, nil
}

// due reports whether the issuer's JWKS should be fetched now.
func (s *RemoteSource) due(st *remoteState, now time.Time, refresh bool) bool {
	switch {
	case st == nil:
		return true
	case now.Sub(st.fetched) < s.cfg.minRefresh:
		return false
	case refresh, st.set == nil:
		return true
	default:
		return !now.Before(st.expires)
	}
}

func (st *remoteState) result() (*KeySet, error) {
	if st.set != nil {
		return st.set, nil
	}
	return nil, st.err
}

func (s *RemoteSource) fetch(ctx context.Context, url string) (*KeySet, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("jwks: fetch %s: %w", url, err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := s.cfg.client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("jwks: fetch %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("jwks: fetch %s: status %d", url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.cfg.maxSize+1))
	if err != nil {
		return nil, 0, fmt.Errorf("jwks: fetch %s: %w", url, err)
	}
	if int64(len(body)) > s.cfg.maxSize {
		return nil, 0, fmt.Errorf("jwks: fetch %s: response larger than %d bytes", url, s.cfg.maxSize)
	}
	set, err := ParseKeySet(body)
	if err != nil {
		return nil, 0, fmt.Errorf("jwks: fetch %s: %w", url, err)
	}
	return set, cacheTTL(resp.Header.Values("Cache-Control")), nil
}

// cacheTTL returns the max-age of Cache-Control clamped to [MinCacheTTL,
// MaxCacheTTL], or DefaultCacheTTL if there is none. no-store and no-cache
// mean MinCacheTTL: the set is needed, and a fetch per token is no option.
func cacheTTL(values []string) time.Duration {
	ttl, found := DefaultCacheTTL, false
	for _, v := range values {
		for d := range strings.SplitSeq(v, ",") {
			d = strings.TrimSpace(d)
			name, arg, _ := strings.Cut(d, "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store", "no-cache":
				return MinCacheTTL
			case "max-age":
				if found {
					continue
				}
				n, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(arg), `"`), 10, 64)
				if err != nil || n < 0 {
					continue
				}
				found = true
				ttl = time.Duration(min(n, int64(MaxCacheTTL/time.Second))) * time.Second
			}
		}
	}
	return min(max(ttl, MinCacheTTL), MaxCacheTTL)
}
