package jwks

import (
	"context"
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
	"time"
)

// Verifier verifies keymint access tokens offline. It is safe for
// concurrent use; make one and share it.
type Verifier struct {
	issuers    map[string]struct{}
	issuerFunc func(string) bool
	audience   string
	leeway     time.Duration
	now        func() time.Time
	source     Source
}

// NewVerifier returns a Verifier. At least one of WithIssuer and
// WithIssuerFunc is required. Without WithSource it fetches key sets with
// a RemoteSource made from the SharedOptions given (WithHTTPClient,
// WithClock, WithMinRefreshInterval, WithMaxResponseSize); the issuers
// given with WithIssuer must then be http or https URLs.
func NewVerifier(opts ...Option) (*Verifier, error) {
	cfg := verifierConfig{leeway: DefaultLeeway, now: time.Now}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o.applyVerifier(&cfg); err != nil {
			return nil, err
		}
	}
	if !cfg.hasIssuer {
		return nil, errors.New("jwks: NewVerifier: no issuer allowed; use WithIssuer or WithIssuerFunc")
	}
	v := &Verifier{
		issuerFunc: cfg.issuerFunc,
		audience:   cfg.audience,
		leeway:     cfg.leeway,
		now:        cfg.now,
		source:     cfg.source,
	}
	if len(cfg.issuers) > 0 {
		v.issuers = make(map[string]struct{}, len(cfg.issuers))
		for _, iss := range cfg.issuers {
			v.issuers[iss] = struct{}{}
		}
	}
	if v.source == nil {
		for _, iss := range cfg.issuers {
			if u, err := url.Parse(iss); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return nil, errors.New("jwks: NewVerifier: issuer " + iss + " is not an http(s) URL")
			}
		}
		v.source = NewRemoteSource(cfg.remote...)
	} else if cfg.remoteOnly {
		return nil, errors.New("jwks: NewVerifier: WithHTTPClient, WithMinRefreshInterval and WithMaxResponseSize configure the default source; they cannot be used with WithSource")
	}
	return v, nil
}

// MaxTokenSize is the longest token Verify reads.
const MaxTokenSize = 16 << 10

// The longest decoded header and signature Verify reads; the signature of
// an RSA-8192 key is 1024 bytes.
const (
	maxHeaderSize    = 1024
	maxSignatureSize = 1024
	stackPayloadSize = 2048
)

// maxHeaderMembers bounds the members of a header.
const maxHeaderMembers = 16

var b64 = base64.RawURLEncoding.Strict()

// isB64 marks the base64url alphabet.
var isB64 = func() (t [256]bool) {
	for _, r := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" {
		t[r] = true
	}
	return t
}()

// Refusals that carry no cause are allocated once.
var (
	errEmpty          = invalid(ErrMalformed, "empty token")
	errTooLong        = invalid(ErrMalformed, "token too long")
	errJSONSerialized = invalid(ErrMalformed, "JWS JSON serialization is not accepted")
	errJWE            = invalid(ErrMalformed, "JWE is not accepted")
	errParts          = invalid(ErrMalformed, "want three base64url parts")
	errBase64         = invalid(ErrMalformed, "invalid base64url")
	errHeaderSize     = invalid(ErrMalformed, "header too large")
	errSigSize        = invalid(ErrMalformed, "signature too large")
	errHeaderJSON     = invalid(ErrMalformed, "header is not a JSON object")
	errHeaderDup      = invalid(ErrMalformed, "duplicate header")
	errHeaderMany     = invalid(ErrMalformed, "too many headers")
	errHeaderType     = invalid(ErrMalformed, "header of the wrong type")
	errCaseVariant    = invalid(ErrForbiddenHeader, "case variant of a header name")
	errNoAlg          = invalid(ErrUnsupportedAlg, "missing alg")
	errAlg            = invalid(ErrUnsupportedAlg, "alg not accepted")
	errAlgMismatch    = invalid(ErrUnsupportedAlg, "alg differs from the key's")
	errNoTyp          = invalid(ErrWrongType, "missing typ")
	errTyp            = invalid(ErrWrongType, "typ is not at+jwt")
	errNoKid          = invalid(ErrUnknownKey, "missing kid")
	errKid            = invalid(ErrUnknownKey, "no key with this kid")
	errNoIss          = invalid(ErrIssuer, "missing iss")
	errIss            = invalid(ErrIssuer, "")
	errSig            = invalid(ErrSignature, "")
	errNoSig          = invalid(ErrSignature, "missing signature")
	errNoExp          = invalid(ErrMalformed, "missing exp")
	errNoSub          = invalid(ErrMalformed, "missing sub")
	errExp            = invalid(ErrExpired, "")
	errNbf            = invalid(ErrNotYetValid, "nbf is in the future")
	errIat            = invalid(ErrNotYetValid, "iat is in the future")
	errAud            = invalid(ErrAudience, "")
	errCustom         = invalid(ErrMalformed, "custom claims")
)

// forbidden headers: keys and key locations are never taken from the
// token; crit and b64 change how it must be processed.
func forbidden(name string) error {
	switch name {
	case "jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256":
		return invalid(ErrForbiddenHeader, name+" header")
	case "crit", "b64":
		return invalid(ErrForbiddenHeader, name+" header")
	}
	return nil
}

// headerNames are the names whose case variants are refused, in case some
// other parser in the request's path folds case.
var headerNames = [...]string{"alg", "kid", "typ", "jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256", "crit", "b64", "cty", "enc", "zip"}

type header struct {
	alg, kid, typ          string
	hasAlg, hasKid, hasTyp bool
}

func parseHeader(s string) (h header, err error) {
	var names [maxHeaderMembers]string
	n := 0
	sc := scanner{s: s}
	err = sc.members(func(name string) error {
		for _, prev := range names[:n] {
			if prev == name {
				return errHeaderDup
			}
		}
		if n == len(names) {
			return errHeaderMany
		}
		names[n] = name
		n++
		var err error
		switch name {
		case "alg":
			h.alg, err = sc.str()
			h.hasAlg = true
		case "kid":
			h.kid, err = sc.str()
			h.hasKid = true
		case "typ":
			h.typ, err = sc.str()
			h.hasTyp = true
		default:
			if err := forbidden(name); err != nil {
				return err
			}
			for _, known := range headerNames {
				if len(name) == len(known) && strings.EqualFold(name, known) && name != known {
					return errCaseVariant
				}
			}
			return sc.skip(0)
		}
		if err != nil {
			return errHeaderType
		}
		return nil
	})
	if err == errJSON {
		err = errHeaderJSON
	}
	return h, err
}

// accepted reports whether alg is one Verify accepts at all.
func accepted(alg string) bool {
	return alg == AlgES256 || alg == AlgEdDSA || alg == AlgRS256
}

// Verify checks token and returns its claims. Any refusal is an error
// that wraps ErrInvalidToken and one specific sentinel (ErrMalformed,
// ErrExpired, …); see the package documentation for the rules.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	// Shape: three non-empty base64url parts; nothing else is read.
	switch {
	case token == "":
		return nil, errEmpty
	case len(token) > MaxTokenSize:
		return nil, errTooLong
	case token[0] == '{':
		return nil, errJSONSerialized
	}
	dot1, dot2, dots := -1, -1, 0
	for i := 0; i < len(token); i++ {
		c := token[i]
		if c == '.' {
			switch dots {
			case 0:
				dot1 = i
			case 1:
				dot2 = i
			}
			dots++
		} else if !isB64[c] {
			return nil, errParts
		}
	}
	switch {
	case dots == 4:
		return nil, errJWE
	case dots != 2, dot1 == 0, dot2 == dot1+1:
		return nil, errParts // an empty signature is refused after alg is read
	}

	// One allocation holds the token (jwx verifies a []byte signing
	// input) and the decoded signature.
	sigLen := b64.DecodedLen(len(token) - dot2 - 1)
	if sigLen > maxSignatureSize {
		return nil, errSigSize
	}
	tb := make([]byte, len(token), len(token)+sigLen)
	copy(tb, token)
	sig := tb[len(token) : len(token)+sigLen]
	sn, err := b64.Decode(sig, tb[dot2+1:])
	if err != nil {
		return nil, errBase64
	}
	sig = sig[:sn]
	var hbuf [maxHeaderSize]byte
	if b64.DecodedLen(dot1) > len(hbuf) {
		return nil, errHeaderSize
	}
	n, err := b64.Decode(hbuf[:], tb[:dot1])
	if err != nil {
		return nil, errBase64
	}

	// Header: decoded here, never by a library that might act on it.
	h, err := parseHeader(string(hbuf[:n]))
	if err != nil {
		return nil, err
	}
	switch {
	case !h.hasAlg:
		return nil, errNoAlg
	case !accepted(h.alg):
		return nil, errAlg
	case !h.hasTyp:
		return nil, errNoTyp
	case !strings.EqualFold(h.typ, "at+jwt") && !strings.EqualFold(h.typ, "application/at+jwt"):
		return nil, errTyp
	case h.kid == "":
		return nil, errNoKid
	case len(sig) == 0:
		return nil, errNoSig
	}

	// Claims: decoded once; iss is read before the signature is checked,
	// only to choose the key set, and must be allowed before any lookup.
	var pbuf [stackPayloadSize]byte
	var payload []byte
	if pl := b64.DecodedLen(dot2 - dot1 - 1); pl <= len(pbuf) {
		payload = pbuf[:pl]
	} else {
		payload = make([]byte, pl)
	}
	pn, err := b64.Decode(payload, tb[dot1+1:dot2])
	if err != nil {
		return nil, errBase64
	}
	ps := string(payload[:pn])
	c := &Claims{KeyID: h.kid}
	p, err := parseClaims(ps, c)
	if err != nil {
		return nil, err
	}
	if p.seen&claimIss == 0 || c.Issuer == "" {
		return nil, errNoIss
	}
	if !v.allowed(c.Issuer) {
		return nil, errIss
	}

	// Key: only from the issuer's own set, only with its published alg.
	set, err := v.source.KeySet(ctx, c.Issuer, false)
	if err != nil {
		return nil, &verifyError{kind: ErrKeysUnavailable, cause: err}
	}
	key, ok := set.lookup(h.kid)
	if !ok {
		if set, err = v.source.KeySet(ctx, c.Issuer, true); err == nil {
			key, ok = set.lookup(h.kid)
		}
		if !ok {
			return nil, errKid
		}
	}
	if key.alg != h.alg {
		return nil, errAlgMismatch
	}
	if err := key.verifier.Verify(key.key, tb[:dot2:dot2], sig); err != nil {
		return nil, errSig
	}

	// Claims checks, now that the claims are the issuer's.
	now := v.now()
	if p.seen&claimExp == 0 {
		return nil, errNoExp
	}
	if !now.Before(p.exp.Add(v.leeway)) {
		return nil, errExp
	}
	if p.seen&claimNbf != 0 && now.Add(v.leeway).Before(p.nbf) {
		return nil, errNbf
	}
	if p.seen&claimIat != 0 && now.Add(v.leeway).Before(p.iat) {
		return nil, errIat
	}
	want := v.audience
	if want == "" {
		want = c.Issuer
	}
	if p.audSingle != "" {
		if p.audSingle != want {
			return nil, errAud
		}
		c.Audience = []string{p.audSingle}
	} else if !c.HasAudience(want) {
		return nil, errAud
	}
	if c.Subject == "" {
		return nil, errNoSub
	}

	c.ExpiresAt, c.NotBefore, c.IssuedAt = p.exp, p.nbf, p.iat
	c.Scopes = parseScopes(c.Scope)
	if p.custom {
		if c.Custom, err = customClaims(ps); err != nil {
			return nil, errCustom
		}
	}
	return c, nil
}

func (v *Verifier) allowed(iss string) bool {
	if _, ok := v.issuers[iss]; ok {
		return true
	}
	return v.issuerFunc != nil && v.issuerFunc(iss)
}
