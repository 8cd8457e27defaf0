// Command keymint is the keymint server and its command-line client.
//
//	keymint serve                       run the server
//	keymint bootstrap --org ID          create an org; prints its first admin key
//	keymint keys create|list|get|update|roll|revoke|delete  manage API keys
//	keymint signing-keys list|rotate    see and rotate the org's signing keys
//	keymint token                       exchange KEYMINT_API_KEY for a JWT
//	keymint verify TOKEN --issuer URL   verify a JWT offline against the issuer's JWKS
//	keymint backup --out FILE           download a consistent snapshot of the database (root key)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `keymint: API keys in, short-lived JWTs out.

Usage:
  keymint serve [--addr A] [--data-dir D] [--public-url U] [--trusted-proxies CIDRS] [--log-format text|json]
  keymint bootstrap --org ID [--name NAME] [--alg ES256|EdDSA|RS256]
  keymint keys create --name N [--role R] [--scopes S,...] [--cidrs C,...] [--expires-in 90d] [--type sk|pk]
  keymint keys list [--status S] [--q TEXT] [--limit N]
  keymint keys get|revoke|delete ID
  keymint keys update ID [--name N] [--role R] [--scopes S,...] [--cidrs C,...] [--enable|--disable] [--expires-in D]
  keymint keys roll ID [--grace-seconds 86400]
  keymint signing-keys list|rotate
  keymint token [--scope S] [--audience A] [--ttl 5m]
  keymint verify TOKEN --issuer URL [--audience A]
  keymint backup --out FILE [--force]

Client commands read --server (KEYMINT_SERVER, default http://127.0.0.1:8080) and a
credential from KEYMINT_ROOT_KEY (bootstrap, backup; else the data directory's root.key),
KEYMINT_API_KEY or KEYMINT_TOKEN. Add --json for machine-readable output.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal during the drain kills at once
	}()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "keymint:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return serve(ctx, rest, stderr)
	case "bootstrap":
		return cmdBootstrap(ctx, rest, stdout, stderr)
	case "keys":
		return cmdKeys(ctx, rest, stdout, stderr)
	case "signing-keys":
		return cmdSigningKeys(ctx, rest, stdout, stderr)
	case "token":
		return cmdToken(ctx, rest, stdout, stderr)
	case "verify":
		return cmdVerify(ctx, rest, stdout, stderr)
	case "backup":
		return cmdBackup(ctx, rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	m := NewMain()
	m.Stderr = stderr
	if err := m.ParseFlags(args); err != nil {
		return err
	}
	if err := m.Run(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	m.log.Info("shutting down: draining requests")
	if err := m.Close(); err != nil {
		return err
	}
	m.log.Info("stopped")
	return nil
}
