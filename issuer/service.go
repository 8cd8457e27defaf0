package issuer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/keymint/keymint/keys"
	"github.com/keymint/keymint/storage"
)

// Errors the HTTP layer maps to statuses. Credential failures all wrap
// ErrUnauthenticated and say nothing more to the caller; the reason is
// kept in CredentialError for audit and metrics.
var (
	ErrUnauthenticated = errors.New("issuer: invalid credential")
	ErrForbidden       = errors.New("issuer: permission denied")
	// ErrAddressNotAllowed: the client address is outside the key's
	// allowed_cidrs. It wraps ErrForbidden.
	ErrAddressNotAllowed = fmt.Errorf("%w: client address not in the key's allowed_cidrs", ErrForbidden)
)

// CredentialError is a failed authentication. Reason is for logs, audit
// and metrics only, never for the caller.
type CredentialError struct{ Reason string }

func (e *CredentialError) Error() string { return "issuer: invalid credential (" + e.Reason + ")" }
func (e *CredentialError) Unwrap() error { return ErrUnauthenticated }

// Reasons a credential is refused.
const (
	ReasonMalformed  = "malformed"
	ReasonIDMismatch = "id_mismatch"
	ReasonUnknownKey = "unknown_key"
	ReasonBadSecret  = "bad_secret"
	ReasonDisabled   = "disabled"
	ReasonExpired    = "expired"
	ReasonRevoked    = "revoked"
)

func credErr(reason string) error { return &CredentialError{Reason: reason} }

// Config configures a Service. Zero Now means time.Now, nil Rand crypto/rand.
type Config struct {
	Store     storage.Store
	Master    *MasterKey
	PublicURL string // e.g. "https://keymint.example.com", no trailing slash
	Now       func() time.Time
	Rand      io.Reader
	Logger    *slog.Logger // nil discards
	// Observer receives exchange outcomes and signing times (metrics);
	// nil ignores them.
	Observer Observer
	// UsageFlushInterval is how often usage counts are written; zero
	// means DefaultUsageFlushInterval.
	UsageFlushInterval time.Duration
	// Retention is how long audit events and usage days are kept; zero
	// means DefaultRetention.
	Retention time.Duration
}

// Service is keymint's application core: bootstrap, key creation and the
// secret-for-token exchange. It is safe for concurrent use.
type Service struct {
	store     storage.Store
	master    *MasterKey
	ring      *Keyring
	hasher    *keys.Hasher
	publicURL string
	now       func() time.Time
	rand      io.Reader
	deny      denyList
	orgs      orgCache
	keys      keyCache
	auditLog  *auditLog
	usage     *usageCounter
	observer  Observer
	log       *slog.Logger
	retention time.Duration
	stopPrune chan struct{}
	pruneDone chan struct{}
	closeOnce sync.Once
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Master == nil {
		return nil, errors.New("issuer: Store and Master are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	if cfg.UsageFlushInterval <= 0 {
		cfg.UsageFlushInterval = DefaultUsageFlushInterval
	}
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	h, err := keys.NewHasher(cfg.Master.Pepper())
	if err != nil {
		return nil, err
	}
	s := &Service{
		store:     cfg.Store,
		master:    cfg.Master,
		ring:      NewKeyring(cfg.Store, cfg.Master, cfg.Now, cfg.Observer),
		hasher:    h,
		publicURL: strings.TrimRight(cfg.PublicURL, "/"),
		now:       cfg.Now,
		rand:      cfg.Rand,
		deny:      denyList{since: make(map[string]time.Time)},
		orgs:      orgCache{orgs: make(map[string]keys.Org)},
		keys:      keyCache{keys: make(map[string]keys.APIKey)},
		auditLog:  newAuditLog(cfg.Store, cfg.Logger),
		usage:     newUsageCounter(cfg.Store, cfg.Logger, cfg.UsageFlushInterval),
		observer:  cfg.Observer,
		log:       cfg.Logger,
		retention: cfg.Retention,
		stopPrune: make(chan struct{}),
		pruneDone: make(chan struct{}),
	}
	go s.runRetention(s.stopPrune, s.pruneDone)
	return s, nil
}

// Now returns the service's clock reading.
func (s *Service) Now() time.Time { return s.now() }

// Keyring returns the signing-key cache.
func (s *Service) Keyring() *Keyring { return s.ring }

// IssuerURL is the "iss" of org's tokens and the base of its discovery
// documents.
func (s *Service) IssuerURL(org string) string { return s.publicURL + "/orgs/" + org }

// IssuerOrg returns the org whose issuer URL iss is, if it is one of ours.
func (s *Service) IssuerOrg(iss string) (string, bool) {
	org, ok := strings.CutPrefix(iss, s.publicURL+"/orgs/")
	return org, ok && keys.ValidOrgID(org)
}

// Principal is an authenticated caller of the management API.
type Principal struct {
	Root   bool        // the operator's root key
	Org    string      // the caller's org; "" for root
	KeyID  string      // the API key behind the credential
	Scopes keys.Scopes // effective scopes (of the token, or of the key)
	Addr   netip.Addr  // the client address, for audit
}

// Actor names the principal in created_by, updated_by and audit.
func (p Principal) Actor() string {
	if p.Root {
		return keys.RootActor
	}
	return p.KeyID
}

// Allows reports whether p's scopes grant permission. The root key has no
// scopes; the org routes check it by their own rules.
func (p Principal) Allows(permission keys.Scope) bool { return p.Scopes.Allows(permission) }

// BootstrapRequest creates an org.
type BootstrapRequest struct {
	ID     string
	Name   string
	Alg    string // "" means ES256
	Policy keys.PolicyPatch
	By     Principal // the root principal, for audit
}

// Bootstrapped is the result of Bootstrap. Secret is shown once.
type Bootstrapped struct {
	Org        keys.Org
	SigningKey keys.SigningKey
	Admin      keys.APIKey
	Secret     keys.Secret
}

// Bootstrap creates an org with its active signing keypair and its first
// admin key, in one transaction. It returns a *keys.ValidationError for
// bad input and storage.ErrExists if the org exists.
func (s *Service) Bootstrap(ctx context.Context, req BootstrapRequest) (Bootstrapped, error) {
	now := s.now().UTC().Truncate(time.Second)
	if req.Alg == "" {
		req.Alg = keys.AlgES256
	}
	org := keys.Org{
		ID:        req.ID,
		Name:      keys.NormalizeName(req.Name),
		Alg:       req.Alg,
		CreatedAt: now,
		UpdatedAt: now,
		Policy:    req.Policy.Apply(keys.DefaultPolicy()),
	}
	org.Limits = keys.Limits{MaxKeys: org.Policy.MaxKeys, MaxKeyLifetime: org.Policy.MaxKeyLifetime}
	if err := org.Validate(); err != nil {
		return Bootstrapped{}, err
	}
	sk, err := GenerateSigningKey(s.master, org.ID, org.Alg, keys.SigningActive, now)
	if err != nil {
		return Bootstrapped{}, err
	}
	// The next key is published from the start, so the first rotation
	// switches to a key every verifier's cached JWKS already holds.
	next, err := GenerateSigningKey(s.master, org.ID, org.Alg, keys.SigningNext, now)
	if err != nil {
		return Bootstrapped{}, err
	}
	exp := now.Add(time.Duration(org.Policy.MaxKeyLifetime))
	admin, secret, err := s.newKey(org.ID, keys.RootActor, keys.KeySpec{
		Name: "bootstrap admin", Type: keys.TypeSecret, Role: "admin",
		Scopes: []string{}, AllowedCIDRs: []string{}, ExpiresAt: &exp,
	}, now)
	if err != nil {
		return Bootstrapped{}, err
	}
	if err := s.store.CreateOrg(ctx, org, []keys.SigningKey{sk, next}, admin); err != nil {
		return Bootstrapped{}, err
	}
	s.cacheOrg(org)
	s.audit(req.By, org.ID, keys.AuditOrgBootstrap, admin.ID, map[string]string{"alg": org.Alg, "signing_kid": sk.KID})
	return Bootstrapped{Org: org, SigningKey: sk, Admin: admin, Secret: secret}, nil
}

// newKey builds a key record and its secret from a validated spec.
func (s *Service) newKey(org, actor string, spec keys.KeySpec, now time.Time) (keys.APIKey, keys.Secret, error) {
	id, err := uuid.NewV7FromReader(s.randReader())
	if err != nil {
		return keys.APIKey{}, keys.Secret{}, err
	}
	secret, err := keys.NewSecret(spec.Type, id, s.rand)
	if err != nil {
		return keys.APIKey{}, keys.Secret{}, err
	}
	k := keys.APIKey{
		ID: id.String(), Org: org, Name: spec.Name, Type: spec.Type, Role: spec.Role,
		Scopes: spec.Scopes, AllowedCIDRs: spec.AllowedCIDRs, ExpiresAt: spec.ExpiresAt,
		Enabled: true, Claims: spec.Claims,
		CreatedBy: actor, UpdatedBy: actor, CreatedAt: now, UpdatedAt: now,
		MaskedValue: secret.Masked(), SecretHash: s.hasher.Hash(secret),
	}
	return k, secret, nil
}

func (s *Service) randReader() io.Reader {
	if s.rand == nil {
		return cryptoRand
	}
	return s.rand
}

// Created is a newly created key; Secret is shown once.
type Created struct {
	Key      keys.APIKey
	Secret   keys.Secret
	Warnings []string
}

// CreateKey creates a key in p's org. It returns ErrForbidden if p lacks
// api_keys:write or the key's effective scopes exceed p's, a
// *keys.ValidationError for bad input, and storage.ErrKeyLimit past the
// org's max_keys.
func (s *Service) CreateKey(ctx context.Context, p Principal, spec keys.KeySpec) (Created, error) {
	if err := requireOrg(p, keys.PermAPIKeysWrite); err != nil {
		return Created{}, err
	}
	org, err := s.org(ctx, p.Org)
	if err != nil {
		return Created{}, err
	}
	now := s.now().UTC().Truncate(time.Second)
	spec = spec.Normalized()
	warnings, err := spec.Validate(org.Policy, now, true)
	if err != nil {
		return Created{}, err
	}
	own, _ := keys.ParseScopes(spec.Scopes) // validated above
	if !p.Scopes.Covers(keys.EffectiveScopes(spec.Role, own)) {
		return Created{}, fmt.Errorf("%w: the key's effective scopes exceed the caller's", ErrForbidden)
	}
	k, secret, err := s.newKey(org.ID, p.Actor(), spec, now)
	if err != nil {
		return Created{}, err
	}
	if err := s.store.CreateAPIKey(ctx, k); err != nil {
		return Created{}, err
	}
	s.audit(p, k.Org, keys.AuditKeyCreate, k.ID, map[string]string{"name": k.Name, "role": k.Role, "scopes": strings.Join(k.Scopes, " ")})
	return Created{Key: k, Secret: secret, Warnings: warnings}, nil
}

// GetKey returns a key of p's org; another org's key is storage.ErrNotFound.
func (s *Service) GetKey(ctx context.Context, p Principal, id string) (keys.APIKey, error) {
	if err := requireOrg(p, keys.PermAPIKeysRead); err != nil {
		return keys.APIKey{}, err
	}
	k, err := s.store.GetAPIKey(ctx, id)
	if err != nil {
		return keys.APIKey{}, err
	}
	if k.Org != p.Org {
		return keys.APIKey{}, fmt.Errorf("issuer: key %q: %w", id, storage.ErrNotFound)
	}
	return k, nil
}

// GetOrg returns an org.
func (s *Service) GetOrg(ctx context.Context, id string) (keys.Org, error) {
	return s.org(ctx, id)
}

// authenticate checks a secret and its key's state at now. Every failure
// is a *CredentialError; the key is returned with it when one was found,
// for audit only.
func (s *Service) authenticate(ctx context.Context, raw string, now time.Time) (keys.APIKey, error) {
	secret, err := keys.ParseSecret(raw)
	if err != nil {
		return keys.APIKey{}, credErr(ReasonMalformed)
	}
	k, err := s.authKey(ctx, secret.KeyID)
	if errors.Is(err, storage.ErrNotFound) {
		return keys.APIKey{}, credErr(ReasonUnknownKey)
	}
	if err != nil {
		return keys.APIKey{}, err
	}
	if !k.SecretMatches(s.hasher, secret, now) {
		return k, credErr(ReasonBadSecret)
	}
	switch k.Status(now) {
	case keys.StatusDisabled:
		return k, credErr(ReasonDisabled)
	case keys.StatusExpired:
		return k, credErr(ReasonExpired)
	case keys.StatusRevoked:
		return k, credErr(ReasonRevoked)
	}
	return k, nil
}

// AuthenticateSecret authenticates an API key secret presented directly
// to the management API, from addr.
func (s *Service) AuthenticateSecret(ctx context.Context, raw string, addr netip.Addr) (Principal, error) {
	k, err := s.authenticate(ctx, raw, s.now())
	if err != nil {
		return Principal{}, err
	}
	if !keys.AllowedFrom(k.AllowedCIDRs, addr) {
		return Principal{}, ErrAddressNotAllowed
	}
	return Principal{Org: k.Org, KeyID: k.ID, Scopes: k.EffectiveScopes(), Addr: addr}, nil
}

// ExchangeRequest is one secret-for-token exchange.
type ExchangeRequest struct {
	KeyID    string     // the {id} of the path; "" when the secret alone names the key
	Secret   string     // the presented secret
	Addr     netip.Addr // the client address
	Scope    string     // space-separated subset of the key's scopes; "" for all
	Audience string     // one of the org's audiences; "" for the first
	TTL      time.Duration
}

// Exchange authenticates a secret and mints a token for its key. Errors:
// *CredentialError (wrapping ErrUnauthenticated) for any bad credential,
// including a path id that is not the secret's; ErrAddressNotAllowed; a
// *keys.ValidationError naming "scope", "audience" or "ttl".
func (s *Service) Exchange(ctx context.Context, req ExchangeRequest) (Token, keys.APIKey, error) {
	tok, k, err := s.exchange(ctx, req)
	if err != nil {
		reason := FailureReason(err)
		s.observer.Exchange(reason)
		s.recordExchangeFailure(ctx, req, k, reason)
		return Token{}, keys.APIKey{}, err
	}
	s.observer.Exchange("ok")
	s.usage.record(k.Org, k.ID, tok.IssuedAt, "")
	return tok, k, nil
}

func (s *Service) exchange(ctx context.Context, req ExchangeRequest) (Token, keys.APIKey, error) {
	now := s.now()
	k, err := s.authenticate(ctx, req.Secret, now)
	if err != nil {
		return Token{}, k, err
	}
	if req.KeyID != "" && req.KeyID != k.ID {
		return Token{}, keys.APIKey{}, credErr(ReasonIDMismatch)
	}
	if !keys.AllowedFrom(k.AllowedCIDRs, req.Addr) {
		return Token{}, k, ErrAddressNotAllowed
	}
	org, err := s.org(ctx, k.Org)
	if err != nil {
		return Token{}, k, err
	}
	var v keys.ValidationError
	scopes := k.EffectiveScopes()
	if req.Scope != "" {
		asked, err := keys.ParseScopes(strings.Fields(req.Scope))
		switch {
		case err != nil:
			v.Add("scope", "%v", err)
		case !scopes.Covers(asked):
			v.Add("scope", "asks for scopes the key does not hold")
		default:
			scopes = asked.Dedup()
		}
	}
	iss := s.IssuerURL(org.ID)
	auds := org.Policy.AudiencesFor(iss)
	aud := auds[0]
	if req.Audience != "" {
		if !slices.Contains(auds, req.Audience) {
			v.Add("audience", "not one of the org's audiences")
		}
		aud = req.Audience
	}
	ttl := time.Duration(org.Policy.TokenTTL)
	if req.TTL != 0 {
		if req.TTL < time.Second || req.TTL > ttl {
			v.Add("ttl", "must be between 1s and the org's token_ttl (%s)", ttl)
		}
		ttl = req.TTL
	}
	if err := v.Err(); err != nil {
		return Token{}, k, err
	}
	tok, err := s.ring.mint(ctx, mintParams{
		issuer: iss, audience: aud, scope: scopes.String(),
		ttl: ttl, key: k, now: now,
	})
	return tok, k, err
}

// PublicURL is the base URL clients reach keymint at.
func (s *Service) PublicURL() string { return s.publicURL }

// Reasons an exchange fails other than a bad credential.
const (
	ReasonAddressNotAllowed = "address_not_allowed"
	ReasonInvalidRequest    = "invalid_request"
)

// FailureReason names why an exchange failed, for audit and metrics.
func FailureReason(err error) string {
	var ce *CredentialError
	switch {
	case errors.As(err, &ce):
		return ce.Reason
	case errors.Is(err, ErrAddressNotAllowed):
		return ReasonAddressNotAllowed
	case errors.Is(err, keys.ErrInvalid):
		return ReasonInvalidRequest
	}
	return "error"
}

// recordExchangeFailure records a failed exchange, in audit and usage,
// against the org of the key it named: the key found, else the key of the
// path id. The path id is looked up only here, on the failure path.
func (s *Service) recordExchangeFailure(ctx context.Context, req ExchangeRequest, k keys.APIKey, reason string) {
	pathID := ""
	if _, perr := uuid.Parse(req.KeyID); perr == nil {
		pathID = req.KeyID
	}
	if k.ID == "" && pathID != "" {
		k, _ = s.store.GetAPIKey(ctx, pathID)
	}
	keyID := k.ID
	if keyID == "" {
		keyID = pathID
	}
	s.auditLog.record(keys.AuditEvent{
		Org: k.Org, Time: s.now().UTC(), Actor: keys.AnonymousActor, Action: keys.AuditExchangeFailure,
		KeyID: keyID, ClientIP: addrString(req.Addr), Reason: reason,
	})
	if k.Org != "" {
		s.usage.record(k.Org, k.ID, s.now(), reason)
	}
}
