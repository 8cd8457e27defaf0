package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/keymint/keymint/issuer"
	"github.com/keymint/keymint/jwks"
)

// Config is what the HTTP layer needs. Zero values mean defaults.
type Config struct {
	Service *issuer.Service
	// RootKey is the operator's credential for creating orgs.
	RootKey string
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	Logger         *slog.Logger
	// Ready reports whether the server can serve (the database is open).
	Ready func(context.Context) error
	// Backup, if set, serves GET /api/v1/admin/backup; nil answers 404.
	Backup Backuper
	// Metrics, if set, are served at /metrics and count every request.
	Metrics *Metrics
	// FailureLimit failed exchanges per FailureWindow from one address
	// turn its exchanges into 429s; zero values mean 30 a minute.
	FailureLimit  int
	FailureWindow time.Duration
	// RequestTimeout bounds each request's context; zero means 30 s.
	RequestTimeout time.Duration
}

// Server is keymint's HTTP API.
type Server struct {
	svc      *issuer.Service
	rootKey  string
	verifier *jwks.Verifier
	tokens   *verifiedTokens
	jwks     *jwksCache
	log      *slog.Logger
	ready    func(context.Context) error
	echo     *echo.Echo
	backuper Backuper
	metrics  *Metrics
	limiter  *failureLimiter
}

// New builds the HTTP API.
func New(cfg Config) (*Server, error) {
	if cfg.Service == nil {
		return nil, errors.New("handlers: Service is required")
	}
	if len(cfg.RootKey) < 32 {
		return nil, errors.New("handlers: root key must be at least 32 characters")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Ready == nil {
		cfg.Ready = func(context.Context) error { return nil }
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	s := &Server{svc: cfg.Service, rootKey: cfg.RootKey, log: cfg.Logger, ready: cfg.Ready, metrics: cfg.Metrics,
		limiter: newFailureLimiter(cfg.FailureLimit, cfg.FailureWindow, cfg.Service.Now)}
	s.backuper = cfg.Backup
	s.jwks = newJWKSCache(cfg.Service)
	v, err := jwks.NewVerifier(
		jwks.WithIssuerFunc(func(iss string) bool { _, ok := cfg.Service.IssuerOrg(iss); return ok }),
		jwks.WithSource(s.jwks),
		jwks.WithClock(cfg.Service.Now),
	)
	if err != nil {
		return nil, err
	}
	s.verifier = v
	s.tokens = &verifiedTokens{verifier: v, now: cfg.Service.Now}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = errorHandler(cfg.Logger)
	e.IPExtractor = ipExtractor(cfg.TrustedProxies)
	e.Use(middleware.RequestID())
	e.Use(requestLogger(cfg.Logger))
	if cfg.Metrics != nil {
		e.Use(cfg.Metrics.middleware())
	}
	e.Use(middleware.ContextTimeout(cfg.RequestTimeout))
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{DisablePrintStack: true}))
	e.Use(middleware.BodyLimit("64K"))
	s.echo = e
	s.routes()
	return s, nil
}

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler { return s.echo }

// Echo returns the echo instance, for tests that drive it directly.
func (s *Server) Echo() *echo.Echo { return s.echo }

func (s *Server) routes() {
	e := s.echo
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/openapi.json", s.openAPI)
	e.GET("/docs", s.docs)
	e.GET("/docs/:asset", s.docsAsset)
	if s.metrics != nil {
		e.GET("/metrics", s.metrics.handler())
	}

	e.GET("/orgs/:org/.well-known/jwks.json", s.getJWKS)
	e.GET("/orgs/:org/.well-known/oauth-authorization-server", s.getMetadata)
	e.GET("/orgs/:org/.well-known/openid-configuration", s.getMetadata)
	// RFC 8414 §3.1 inserts the well-known segment before the issuer's path.
	e.GET("/.well-known/oauth-authorization-server/orgs/:org", s.getMetadata)

	api := e.Group("/api/v1")
	api.POST("/orgs", s.createOrg, s.requireRoot)
	api.GET("/admin/backup", s.backup, s.requireRoot)
	api.GET("/orgs", s.listOrgs, s.authenticate)
	api.GET("/orgs/:org", s.getOrg, s.authenticate)
	api.PATCH("/orgs/:org", s.patchOrg, s.authenticate)

	api.GET("/apikeys/:id/token", s.exchange)
	api.POST("/apikeys/:id/token", s.exchange)
	api.GET("/apikeys", s.listKeys, s.authenticate)
	api.POST("/apikeys", s.createKey, s.authenticate)
	api.GET("/apikeys/:id", s.getKey, s.authenticate)
	api.PUT("/apikeys/:id", s.updateKey, s.authenticate)
	api.PATCH("/apikeys/:id", s.updateKey, s.authenticate)
	api.DELETE("/apikeys/:id", s.deleteKey, s.authenticate)
	api.POST("/apikeys/:id/revoke", s.revokeKey, s.authenticate)
	api.POST("/apikeys/:id/roll", s.rollKey, s.authenticate)
	api.GET("/audit", s.listAudit, s.authenticate)
	api.GET("/usage", s.orgUsage, s.authenticate)
	api.GET("/apikeys/:id/usage", s.keyUsage, s.authenticate)
	api.GET("/signing-keys", s.listSigningKeys, s.authenticate)
	api.POST("/signing-keys/rotate", s.rotateSigningKeys, s.authenticate)

	e.POST("/oauth2/token", s.oauthToken)
	e.POST("/oauth2/introspect", s.introspect, s.authenticate)

	compat := e.Group("/auth/api_keys", s.authenticate)
	compat.GET("", s.arthurList)
	compat.POST("", s.arthurCreate)
	compat.DELETE("/deactivate/:id", s.arthurDeactivate)
}

// ipExtractor believes X-Forwarded-For only from trusted proxies; with none
// configured the client is the TCP peer.
func ipExtractor(trusted []netip.Prefix) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range trusted {
		opts = append(opts, echo.TrustIPRange(prefixToIPNet(p)))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// clientAddr is the request's client address; the zero Addr if unparsable.
func clientAddr(c echo.Context) netip.Addr {
	a, _ := netip.ParseAddr(c.RealIP())
	return a.Unmap()
}

// requestLogger logs one line per request (successes at debug level,
// client errors at info, server errors at error): never the query
// string, the body or any credential header.
func requestLogger(log *slog.Logger) echo.MiddlewareFunc {
	return middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogStatus: true, LogMethod: true, LogRoutePath: true, LogLatency: true, LogRequestID: true, LogRemoteIP: true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			// Successes are debug lines: at thousands of exchanges a
			// second, metrics count them better than logs.
			level := slog.LevelDebug
			switch {
			case v.Status >= 500:
				level = slog.LevelError
			case v.Status >= 400:
				level = slog.LevelInfo
			}
			if !log.Enabled(c.Request().Context(), level) {
				return nil
			}
			log.LogAttrs(c.Request().Context(), level, "request",
				slog.String("method", v.Method), slog.String("route", v.RoutePath),
				slog.Int("status", v.Status), slog.Duration("latency", v.Latency),
				slog.String("remote_ip", v.RemoteIP), slog.String("request_id", v.RequestID))
			return nil
		},
	})
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		s.log.WarnContext(ctx, "not ready", "err", err)
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

func jsonEncode(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// noStore marks a response that carries a secret or a token.
func noStore(c echo.Context) {
	h := c.Response().Header()
	h.Set(echo.HeaderCacheControl, "no-store")
	h.Set("Pragma", "no-cache")
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
