// Command downstream is a small example service that accepts keymint
// tokens offline. It protects GET /deploys with the scope deploys:read
// and POST /deploys with deploys:write, verifying each request's bearer
// token against the issuer's published JWKS with jwks.RequireScope; it
// never calls keymint per request.
//
//	go run ./cmd/downstream --issuer http://127.0.0.1:8080/orgs/acme
//	curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:9090/deploys
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/keymint/keymint/jwks"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "downstream:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("downstream", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9090", "listen address")
	issuer := fs.String("issuer", "", "keymint issuer URL, e.g. http://127.0.0.1:8080/orgs/acme (required)")
	audience := fs.String("audience", "", "expected audience (default: the issuer)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *issuer == "" {
		return errors.New("--issuer is required")
	}
	h, err := newHandler(*issuer, *audience)
	if err != nil {
		return err
	}
	srv := &http.Server{Addr: *addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	slog.Info("downstream serving", "addr", *addr, "issuer", *issuer)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newHandler builds the service's routes, each guarded by RequireScope.
func newHandler(issuer, audience string) (http.Handler, error) {
	opts := []jwks.Option{jwks.WithIssuer(issuer)}
	if audience != "" {
		opts = append(opts, jwks.WithAudience(audience))
	}
	v, err := jwks.NewVerifier(opts...)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /deploys", jwks.RequireScope(v, "deploys:read")(http.HandlerFunc(listDeploys)))
	mux.Handle("POST /deploys", jwks.RequireScope(v, "deploys:write")(http.HandlerFunc(createDeploy)))
	return mux, nil
}

func listDeploys(w http.ResponseWriter, r *http.Request) {
	claims, _ := jwks.ClaimsFromContext(r.Context())
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"deploys": []string{}, "caller": claims.Subject, "org": claims.Org})
}

func createDeploy(w http.ResponseWriter, r *http.Request) {
	claims, _ := jwks.ClaimsFromContext(r.Context())
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(map[string]any{"created_by": claims.Subject})
}
