// Command loadref is the reference server for make loadtest: the smallest
// echo service that does what keymint's exchange must do at the least, sign
// one ES256 JWT per request with golang-jwt. It has one route, POST /token,
// no middleware and no logging, so the load test can report keymint's
// throughput as a ratio to it on the same machine in the same run.
//
//	go run ./cmd/loadref --addr 127.0.0.1:9099
//	curl -X POST http://127.0.0.1:9099/token
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
)

// claims has the shape of a keymint token's claims (issuer/token.go):
// iss, sub, aud, exp, nbf, iat, jti, client_id, org, role, scope.
type claims struct {
	jwt.RegisteredClaims
	ClientID string `json:"client_id"`
	Org      string `json:"org"`
	Role     string `json:"role"`
	Scope    string `json:"scope"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "loadref:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("loadref", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9099", "listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	const (
		kid = "loadref-es256"
		iss = "http://loadref.invalid/orgs/ref"
		sub = "0190a5e0-0000-7000-8000-000000000000"
	)

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.POST("/token", func(c echo.Context) error {
		now := time.Now().Truncate(time.Second)
		t := jwt.NewWithClaims(jwt.SigningMethodES256, claims{
			RegisteredClaims: jwt.RegisteredClaims{
				Issuer:    iss,
				Subject:   sub,
				Audience:  jwt.ClaimStrings{iss},
				ExpiresAt: jwt.NewNumericDate(now.Add(15 * time.Minute)),
				NotBefore: jwt.NewNumericDate(now),
				IssuedAt:  jwt.NewNumericDate(now),
				ID:        uuid.NewString(),
			},
			ClientID: sub, Org: "ref", Role: "admin", Scope: "*:*",
		})
		t.Header["kid"] = kid
		t.Header["typ"] = "at+jwt"
		raw, err := t.SignedString(key)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]string{"token": raw})
	})

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 120 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintln(os.Stderr, "loadref listening on", ln.Addr())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
