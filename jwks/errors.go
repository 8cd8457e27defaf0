package jwks

import (
	"errors"
	"strings"
)

// ErrInvalidToken is wrapped by every error Verifier.Verify returns,
// together with exactly one of the more specific sentinels below, so that
// errors.Is matches both:
//
//	errors.Is(err, jwks.ErrInvalidToken) // true for any refusal
//	errors.Is(err, jwks.ErrExpired)      // true only for an expired token
var ErrInvalidToken = errors.New("jwks: invalid token")

// Reasons a token is refused. Each is wrapped together with
// ErrInvalidToken. Error messages never contain the token or its claims.
var (
	// ErrMalformed: not a compact JWS of three base64url parts, a header
	// or claims set that is not a JSON object (or has duplicate members),
	// a claim of the wrong type, or a missing exp or sub.
	ErrMalformed = errors.New("jwks: malformed token")

	// ErrUnsupportedAlg: alg missing, not one keymint signs with (none
	// and HS* included), or not the alg the key was published with.
	ErrUnsupportedAlg = errors.New("jwks: unsupported or mismatched alg")

	// ErrForbiddenHeader: a jwk, jku, x5u, x5c, x5t, x5t#S256, crit or
	// b64 header, or a case variant of a header name.
	ErrForbiddenHeader = errors.New("jwks: forbidden header")

	// ErrWrongType: typ is missing or not at+jwt.
	ErrWrongType = errors.New("jwks: wrong token type")

	// ErrUnknownKey: kid missing, or not in the issuer's key set even
	// after a refresh.
	ErrUnknownKey = errors.New("jwks: unknown key")

	// ErrKeysUnavailable: the Source could not provide the issuer's key
	// set (for example the first fetch of its JWKS failed). The Source's
	// error is wrapped too.
	ErrKeysUnavailable = errors.New("jwks: key set unavailable")

	// ErrSignature: the signature does not verify.
	ErrSignature = errors.New("jwks: invalid signature")

	// ErrIssuer: iss missing or not an allowed issuer.
	ErrIssuer = errors.New("jwks: issuer not allowed")

	// ErrAudience: aud missing or without the expected audience.
	ErrAudience = errors.New("jwks: audience not allowed")

	// ErrExpired: exp (plus leeway) has passed.
	ErrExpired = errors.New("jwks: token expired")

	// ErrNotYetValid: nbf or iat lies in the future (beyond the leeway).
	ErrNotYetValid = errors.New("jwks: token not valid yet")
)

// verifyError is what Verify returns: ErrInvalidToken, one reason
// sentinel, an optional fixed detail and an optional cause.
type verifyError struct {
	kind   error
	detail string
	cause  error
}

func invalid(kind error, detail string) error {
	return &verifyError{kind: kind, detail: detail}
}

func (e *verifyError) Error() string {
	var b strings.Builder
	b.WriteString(ErrInvalidToken.Error())
	b.WriteString(": ")
	b.WriteString(strings.TrimPrefix(e.kind.Error(), "jwks: "))
	if e.detail != "" {
		b.WriteString(": ")
		b.WriteString(e.detail)
	}
	if e.cause != nil {
		b.WriteString(": ")
		b.WriteString(e.cause.Error())
	}
	return b.String()
}

func (e *verifyError) Unwrap() []error {
	if e.cause != nil {
		return []error{ErrInvalidToken, e.kind, e.cause}
	}
	return []error{ErrInvalidToken, e.kind}
}
