package handlers

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/keymint/keymint/issuer"
	"github.com/keymint/keymint/jwks"
	"github.com/keymint/keymint/keys"
)

// jwksMaxAge is how long clients may cache a JWKS. Rotation publishes a
// key well before it signs, so a cached set is never missing the key of a
// fresh token for longer than this.
const jwksMaxAge = 300

// jwksDoc is an org's serialized JWKS and the key set parsed from it.
type jwksDoc struct {
	src  *issuer.Published // what it was built from
	body []byte
	etag string
	set  *jwks.KeySet
}

// jwksCache serializes each org's JWKS once per change of its keys, and
// serves keymint's own Verifier from the same bytes it publishes.
type jwksCache struct {
	svc  *issuer.Service
	mu   sync.Mutex
	docs map[string]*jwksDoc
}

func newJWKSCache(svc *issuer.Service) *jwksCache {
	return &jwksCache{svc: svc, docs: make(map[string]*jwksDoc)}
}

// doc returns org's current JWKS document; nil if it has no keys.
func (jc *jwksCache) doc(ctx context.Context, org string) (*jwksDoc, error) {
	pub, err := jc.svc.Keyring().Published(ctx, org)
	if err != nil {
		return nil, err
	}
	if len(pub.Keys) == 0 {
		return nil, nil
	}
	jc.mu.Lock()
	d := jc.docs[org]
	jc.mu.Unlock()
	if d != nil && d.src == pub {
		return d, nil
	}
	in := make([]jwks.PublicKey, len(pub.Keys))
	for i, k := range pub.Keys {
		in[i] = jwks.PublicKey{KID: k.KID, Alg: k.Alg, Key: k.Key}
	}
	body, err := jwks.Marshal(in)
	if err != nil {
		return nil, err
	}
	set, err := jwks.ParseKeySet(body)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	d = &jwksDoc{src: pub, body: body, set: set, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`}
	jc.mu.Lock()
	jc.docs[org] = d
	jc.mu.Unlock()
	return d, nil
}

// KeySet implements jwks.Source for keymint's own endpoints: the key set
// is the org's published one, read from memory.
func (jc *jwksCache) KeySet(ctx context.Context, iss string, _ bool) (*jwks.KeySet, error) {
	org, ok := jc.svc.IssuerOrg(iss)
	if !ok {
		return nil, fmt.Errorf("handlers: %q is not a keymint issuer: %w", iss, jwks.ErrIssuer)
	}
	d, err := jc.doc(ctx, org)
	if err != nil {
		return nil, err
	}
	if d == nil {
		return nil, fmt.Errorf("handlers: org has no keys: %w", jwks.ErrUnknownKey)
	}
	return d.set, nil
}

func (s *Server) getJWKS(c echo.Context) error {
	org := c.Param("org")
	if !keys.ValidOrgID(org) {
		return notFound("org")
	}
	d, err := s.jwks.doc(c.Request().Context(), org)
	if err != nil {
		return err
	}
	if d == nil {
		return notFound("org")
	}
	h := c.Response().Header()
	h.Set(echo.HeaderCacheControl, fmt.Sprintf("public, max-age=%d", jwksMaxAge))
	h.Set("ETag", d.etag)
	if match := c.Request().Header.Get("If-None-Match"); match != "" && etagMatches(match, d.etag) {
		return c.NoContent(http.StatusNotModified)
	}
	return c.Blob(http.StatusOK, "application/jwk-set+json", d.body)
}

// etagMatches implements If-None-Match's weak comparison over a list.
func etagMatches(header, etag string) bool {
	for _, part := range strings.Split(header, ",") {
		part = strings.TrimSpace(part)
		if part == "*" || part == etag || part == "W/"+etag {
			return true
		}
	}
	return false
}

// metadata is the RFC 8414 authorization server metadata of an org.
type metadata struct {
	Issuer                            string   `json:"issuer"`
	JWKSURI                           string   `json:"jwks_uri"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	IntrospectionEndpoint             string   `json:"introspection_endpoint"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported"`
	AccessTokenSigningAlgValues       []string `json:"access_token_signing_alg_values_supported"`
	ScopesSupported                   []string `json:"scopes_supported"`
}

func (s *Server) getMetadata(c echo.Context) error {
	id := c.Param("org")
	if !keys.ValidOrgID(id) {
		return notFound("org")
	}
	org, err := s.svc.GetOrg(c.Request().Context(), id)
	if err != nil {
		return err
	}
	iss := s.svc.IssuerURL(org.ID)
	c.Response().Header().Set(echo.HeaderCacheControl, fmt.Sprintf("public, max-age=%d", jwksMaxAge))
	return c.JSON(http.StatusOK, metadata{
		Issuer:                            iss,
		JWKSURI:                           iss + "/.well-known/jwks.json",
		TokenEndpoint:                     s.svc.PublicURL() + "/oauth2/token",
		IntrospectionEndpoint:             s.svc.PublicURL() + "/oauth2/introspect",
		GrantTypesSupported:               []string{"client_credentials"},
		TokenEndpointAuthMethodsSupported: []string{"client_secret_basic", "client_secret_post"},
		ResponseTypesSupported:            []string{}, // no authorization endpoint: client_credentials only
		SubjectTypesSupported:             []string{"public"},
		IDTokenSigningAlgValuesSupported:  []string{org.Alg},
		AccessTokenSigningAlgValues:       []string{org.Alg},
		ScopesSupported: []string{
			"api_keys:read", "api_keys:write", "signing_keys:read", "signing_keys:admin",
			"usage:read", "audit:read", "org:read", "org:admin",
		},
	})
}
