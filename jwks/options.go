package jwks

import (
	"errors"
	"net/http"
	"time"
)

// Option configures a Verifier (see NewVerifier).
type Option interface {
	applyVerifier(*verifierConfig) error
}

// RemoteOption configures a RemoteSource (see NewRemoteSource).
type RemoteOption interface {
	applyRemote(*remoteConfig)
}

// SharedOption configures a RemoteSource, or a Verifier and the
// RemoteSource it creates when it is not given WithSource.
type SharedOption interface {
	Option
	RemoteOption
}

type verifierConfig struct {
	issuers    []string
	issuerFunc func(string) bool
	hasIssuer  bool
	audience   string
	leeway     time.Duration
	now        func() time.Time
	source     Source
	remote     []RemoteOption // for the default RemoteSource
	remoteOnly bool           // an option that means nothing with WithSource
}

type remoteConfig struct {
	client     *http.Client
	maxSize    int64
	minRefresh time.Duration
	now        func() time.Time
}

type verifierOption func(*verifierConfig) error

func (f verifierOption) applyVerifier(c *verifierConfig) error { return f(c) }

type sharedOption struct {
	verifier func(*verifierConfig) error
	remote   func(*remoteConfig)
}

func (o sharedOption) applyVerifier(c *verifierConfig) error {
	if err := o.verifier(c); err != nil {
		return err
	}
	c.remote = append(c.remote, o)
	return nil
}

func (o sharedOption) applyRemote(c *remoteConfig) { o.remote(c) }

// WithIssuer allows tokens whose iss is exactly one of iss. It may be
// given several times; the allowed issuers add up. A token's iss is
// checked against them before any key set is looked up or fetched.
func WithIssuer(iss ...string) Option {
	return verifierOption(func(c *verifierConfig) error {
		for _, s := range iss {
			if s == "" {
				return errors.New("jwks: WithIssuer: empty issuer")
			}
		}
		c.issuers = append(c.issuers, iss...)
		c.hasIssuer = c.hasIssuer || len(iss) > 0
		return nil
	})
}

// WithIssuerFunc allows tokens whose iss makes allow return true, for a
// server that accepts any of a changing set of issuers (keymint's own, one
// per org). allow must be cheap and must not fetch anything: it runs
// before the signature is checked, on an iss an attacker chose. Together
// with WithIssuer, an issuer is allowed if either allows it.
func WithIssuerFunc(allow func(iss string) bool) Option {
	return verifierOption(func(c *verifierConfig) error {
		if allow == nil {
			return errors.New("jwks: WithIssuerFunc: nil func")
		}
		c.issuerFunc = allow
		c.hasIssuer = true
		return nil
	})
}

// WithAudience sets the audience a token's aud must contain. Without it
// the expected audience is the token's own (allowed) issuer, which is
// what keymint puts in aud unless the org lists other audiences.
func WithAudience(aud string) Option {
	return verifierOption(func(c *verifierConfig) error {
		if aud == "" {
			return errors.New("jwks: WithAudience: empty audience")
		}
		c.audience = aud
		return nil
	})
}

// DefaultLeeway is the clock skew allowed when checking exp, nbf and iat.
const DefaultLeeway = 30 * time.Second

// WithLeeway sets the clock skew allowed when checking exp, nbf and iat
// (default DefaultLeeway; at most 5 minutes).
func WithLeeway(d time.Duration) Option {
	return verifierOption(func(c *verifierConfig) error {
		if d < 0 || d > 5*time.Minute {
			return errors.New("jwks: WithLeeway: leeway must be between 0 and 5 minutes")
		}
		c.leeway = d
		return nil
	})
}

// WithSource sets where the Verifier gets key sets from (default: a
// RemoteSource made with the SharedOptions given to NewVerifier).
func WithSource(s Source) Option {
	return verifierOption(func(c *verifierConfig) error {
		if s == nil {
			return errors.New("jwks: WithSource: nil source")
		}
		c.source = s
		return nil
	})
}

// WithClock sets the clock (default time.Now): for a Verifier, the time
// tokens are checked against, and the clock of its default RemoteSource;
// for a RemoteSource, the clock its cache ages by.
func WithClock(now func() time.Time) SharedOption {
	return sharedOption{
		verifier: func(c *verifierConfig) error {
			if now == nil {
				return errors.New("jwks: WithClock: nil clock")
			}
			c.now = now
			return nil
		},
		remote: func(c *remoteConfig) {
			if now != nil {
				c.now = now
			}
		},
	}
}

// WithHTTPClient sets the HTTP client that fetches JWKS documents
// (default: a client with a 10 s timeout that refuses redirects from
// https to http).
func WithHTTPClient(client *http.Client) SharedOption {
	return remoteOnly(func(c *remoteConfig) {
		if client != nil {
			c.client = client
		}
	})
}

// DefaultMinRefreshInterval is how often, at most, a RemoteSource fetches
// one issuer's JWKS.
const DefaultMinRefreshInterval = 10 * time.Second

// WithMinRefreshInterval sets how often, at most, a RemoteSource fetches
// one issuer's JWKS (default DefaultMinRefreshInterval). It bounds the
// fetches a flood of tokens with unknown kids can cause.
func WithMinRefreshInterval(d time.Duration) SharedOption {
	return remoteOnly(func(c *remoteConfig) {
		if d > 0 {
			c.minRefresh = d
		}
	})
}

// DefaultMaxResponseSize is the largest JWKS document a RemoteSource reads.
const DefaultMaxResponseSize = 1 << 20

// WithMaxResponseSize sets the largest JWKS document, in bytes, a
// RemoteSource reads (default DefaultMaxResponseSize).
func WithMaxResponseSize(n int64) SharedOption {
	return remoteOnly(func(c *remoteConfig) {
		if n > 0 {
			c.maxSize = n
		}
	})
}

func remoteOnly(f func(*remoteConfig)) SharedOption {
	return sharedOption{
		verifier: func(c *verifierConfig) error {
			c.remoteOnly = true
			return nil
		},
		remote: f,
	}
}
