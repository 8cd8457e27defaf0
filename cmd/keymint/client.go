package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keymint/keymint/jwks"
	"github.com/keymint/keymint/keys"
)

// client talks to a keymint server with one credential.
type client struct {
	server string
	cred   string
	http   *http.Client
}

// clientFlags registers --server and --json on fs.
func clientFlags(fs *flag.FlagSet) (server *string, asJSON *bool) {
	server = fs.String("server", envOr("KEYMINT_SERVER", "http://127.0.0.1:8080"), "keymint server URL (KEYMINT_SERVER)")
	asJSON = fs.Bool("json", false, "print JSON")
	return server, asJSON
}

func newClient(server, cred string) *client {
	return &client{server: strings.TrimRight(server, "/"), cred: cred, http: &http.Client{Timeout: 30 * time.Second}}
}

// apiCredential is KEYMINT_API_KEY, else KEYMINT_TOKEN.
func apiCredential() (string, error) {
	for _, name := range []string{"KEYMINT_API_KEY", "KEYMINT_TOKEN"} {
		if v := strings.TrimSpace(os.Getenv(name)); v != "" {
			return v, nil
		}
	}
	return "", errors.New("set KEYMINT_API_KEY (an API key secret) or KEYMINT_TOKEN (a keymint JWT)")
}

// do sends a JSON request and decodes a JSON response into out. A problem
// response becomes an error that shows its detail and field errors.
func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.server+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.cred != "" {
		req.Header.Set("Authorization", "Bearer "+c.cred)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return problemError(resp.StatusCode, data)
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*json.RawMessage); ok {
		*raw = data
		return nil
	}
	return json.Unmarshal(data, out)
}

// call sends a request and returns the raw JSON answer; an error names
// the command cmd.
func (c *client) call(ctx context.Context, cmd, method, path string, body any) (json.RawMessage, error) {
	var out json.RawMessage
	if err := c.do(ctx, method, path, body, &out); err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	return out, nil
}

func problemError(status int, data []byte) error {
	var p struct {
		Title  string `json:"title"`
		Detail string `json:"detail"`
		Errors []struct {
			Field   string `json:"field"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(data, &p) != nil || p.Title == "" {
		return fmt.Errorf("server answered %d", status)
	}
	msg := fmt.Sprintf("%d %s", status, p.Title)
	if p.Detail != "" {
		msg += ": " + p.Detail
	}
	for _, f := range p.Errors {
		if len(p.Errors) > 1 {
			msg += fmt.Sprintf("\n  %s: %s", f.Field, f.Message)
		}
	}
	return errors.New(msg)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// dataDirFlag registers --data-dir, where root-key commands find root.key
// when KEYMINT_ROOT_KEY is unset.
func dataDirFlag(fs *flag.FlagSet) *string {
	return fs.String("data-dir", envOr("KEYMINT_DATA_DIR", "./keymint-data"), "where to find root.key when KEYMINT_ROOT_KEY is unset")
}

// rootCredential is KEYMINT_ROOT_KEY, else the root.key file the server
// created in dataDir.
func rootCredential(dataDir string) (string, error) {
	if v := strings.TrimSpace(os.Getenv("KEYMINT_ROOT_KEY")); v != "" {
		return v, nil
	}
	b, err := os.ReadFile(filepath.Join(dataDir, "root.key"))
	if err != nil {
		return "", fmt.Errorf("set KEYMINT_ROOT_KEY or run beside the server's data directory: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// cmdBootstrap creates an org with the root key.
func cmdBootstrap(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keymint bootstrap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server, asJSON := clientFlags(fs)
	org := fs.String("org", "", "org id: [a-z0-9][a-z0-9-]{1,62} (required)")
	name := fs.String("name", "", "display name (default: the org id)")
	alg := fs.String("alg", "ES256", "signing algorithm: ES256, EdDSA or RS256")
	dataDir := dataDirFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *org == "" {
		return errors.New("bootstrap: --org is required")
	}
	if *name == "" {
		*name = *org
	}
	root, err := rootCredential(*dataDir)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	req := map[string]any{"id": *org, "name": *name, "alg": *alg}
	out, err := newClient(*server, root).call(ctx, "bootstrap", http.MethodPost, "/api/v1/orgs", req)
	if err != nil {
		return err
	}
	if *asJSON {
		_, err := stdout.Write(out)
		return err
	}
	var r struct {
		Issuer     string `json:"issuer"`
		JWKSURI    string `json:"jwks_uri"`
		SigningKey struct {
			KID string `json:"kid"`
			Alg string `json:"alg"`
		} `json:"signing_key"`
		AdminKey struct {
			ID        string    `json:"id"`
			Key       string    `json:"key"`
			ExpiresAt time.Time `json:"expires_at"`
		} `json:"admin_key"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "org %s created\nissuer:      %s\njwks_uri:    %s\nsigning key: %s (%s)\nadmin key:   %s (expires %s)\n\nThe admin key's secret, shown once; store it now:\n%s\n",
		*org, r.Issuer, r.JWKSURI, r.SigningKey.KID, r.SigningKey.Alg, r.AdminKey.ID, r.AdminKey.ExpiresAt.Format(time.DateOnly), r.AdminKey.Key)
	return nil
}

// cmdToken exchanges KEYMINT_API_KEY for a JWT and prints it.
func cmdToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keymint token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server, asJSON := clientFlags(fs)
	scope := fs.String("scope", "", "space-separated subset of the key's scopes")
	aud := fs.String("audience", "", "one of the org's audiences")
	ttl := fs.String("ttl", "", "token lifetime, at most the org's token_ttl (e.g. 5m)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	secret := strings.TrimSpace(os.Getenv("KEYMINT_API_KEY"))
	if secret == "" {
		return errors.New("token: set KEYMINT_API_KEY to the key's secret")
	}
	s, err := keys.ParseSecret(secret)
	if err != nil {
		return errors.New("token: KEYMINT_API_KEY is not a keymint secret (km_sk_… or km_pk_…)")
	}
	body := map[string]string{}
	for k, v := range map[string]string{"scope": *scope, "audience": *aud, "ttl": *ttl} {
		if v != "" {
			body[k] = v
		}
	}
	out, err := newClient(*server, secret).call(ctx, "token", http.MethodPost, "/api/v1/apikeys/"+s.KeyID+"/token", body)
	if err != nil {
		return err
	}
	if *asJSON {
		_, err := stdout.Write(out)
		return err
	}
	var r struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, r.Token)
	return err
}

// cmdVerify verifies a token offline against the issuer's JWKS.
func cmdVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keymint verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	iss := fs.String("issuer", "", "the issuer URL the token must come from, e.g. http://127.0.0.1:8080/orgs/acme (required)")
	aud := fs.String("audience", "", "expected audience (default: the issuer)")
	token, rest := splitPositional(args)
	if err := fs.Parse(rest); err != nil {
		return err
	}
	if token == "" && fs.NArg() > 0 {
		token = fs.Arg(0)
	}
	if token == "" || token == "-" {
		b, err := io.ReadAll(io.LimitReader(os.Stdin, 64<<10))
		if err != nil {
			return err
		}
		token = strings.TrimSpace(string(b))
	}
	if *iss == "" {
		return errors.New("verify: --issuer is required")
	}
	opts := []jwks.Option{jwks.WithIssuer(*iss)}
	if *aud != "" {
		opts = append(opts, jwks.WithAudience(*aud))
	}
	v, err := jwks.NewVerifier(opts...)
	if err != nil {
		return err
	}
	c, err := v.Verify(ctx, token)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	out := map[string]any{}
	for k, val := range c.Custom {
		out[k] = val
	}
	for k, val := range map[string]any{
		"iss": c.Issuer, "sub": c.Subject, "client_id": c.ClientID, "aud": c.Audience,
		"exp": c.ExpiresAt.UTC().Format(time.RFC3339), "iat": c.IssuedAt.UTC().Format(time.RFC3339),
		"nbf": c.NotBefore.UTC().Format(time.RFC3339), "jti": c.ID, "org": c.Org, "role": c.Role, "scope": c.Scope,
	} {
		out[k] = val
	}
	fmt.Fprintf(stderr, "token valid: signed by key %s of %s\n", c.KeyID, c.Issuer)
	return printJSON(stdout, out)
}

// splitPositional lets a leading positional argument precede the flags
// ("keymint verify TOKEN --issuer URL"), which package flag alone refuses.
func splitPositional(args []string) (string, []string) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return args[0], args[1:]
	}
	return "", args
}

// cmdKeys is "keymint keys create|list|get|update|roll|revoke|delete".
func cmdKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("keys: want a subcommand: create, list, get, update, roll, revoke, delete")
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("keymint keys "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	server, asJSON := clientFlags(fs)
	cred, err := apiCredential()
	if err != nil {
		return err
	}
	var (
		method, path string
		body         any
		list, secret bool
	)
	switch sub {
	case "create":
		name := fs.String("name", "", "key name (required)")
		typ := fs.String("type", "sk", "sk (secret) or pk (publishable, read scopes only)")
		role := fs.String("role", "", "admin, developer or viewer")
		scopes := fs.String("scopes", "", "comma-separated scopes, e.g. devices:read,sites/*/devices:write")
		cidrs := fs.String("cidrs", "", "comma-separated allowed CIDRs (default: anywhere)")
		expiresIn := fs.String("expires-in", "90d", "lifetime: 30d, 720h; 'never' if the org allows it")
		if err := fs.Parse(args); err != nil {
			return err
		}
		req := map[string]any{"name": *name, "type": *typ, "role": *role, "scopes": splitList(*scopes), "allowed_cidrs": splitList(*cidrs)}
		if *expiresIn != "never" {
			d, err := keys.ParseDuration(*expiresIn)
			if err != nil {
				return fmt.Errorf("keys create: --expires-in: %w", err)
			}
			req["expires_at"] = time.Now().Add(d).UTC().Format(time.RFC3339)
		}
		method, path, body, secret = http.MethodPost, "/api/v1/apikeys", req, true
	case "list":
		status := fs.String("status", "active", "active, disabled, expired, revoked or all")
		q := fs.String("q", "", "only keys whose name contains this")
		limit := fs.Int("limit", 50, "page size, at most 200")
		if err := fs.Parse(args); err != nil {
			return err
		}
		v := url.Values{"status": {*status}, "limit": {strconv.Itoa(*limit)}}
		if *q != "" {
			v.Set("q", *q)
		}
		method, path, list = http.MethodGet, "/api/v1/apikeys?"+v.Encode(), true
	case "get", "update", "roll", "revoke", "delete":
		id, rest := splitPositional(args)
		name := fs.String("name", "", "update: new name")
		role := fs.String("role", "", "update: new role")
		scopes := fs.String("scopes", "", "update: new comma-separated scopes ('-' for none)")
		cidrs := fs.String("cidrs", "", "update: new comma-separated allowed CIDRs ('-' for anywhere)")
		enable := fs.Bool("enable", false, "update: enable the key")
		disable := fs.Bool("disable", false, "update: disable the key")
		expiresIn := fs.String("expires-in", "", "update: new lifetime from now (30d)")
		grace := fs.Int("grace-seconds", 86400, "roll: how long the old secret keeps working (0: not at all)")
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if id == "" && fs.NArg() > 0 {
			id = fs.Arg(0)
		}
		if id == "" {
			return fmt.Errorf("keys %s: want a key id", sub)
		}
		path = "/api/v1/apikeys/" + url.PathEscape(id)
		switch sub {
		case "get":
			method = http.MethodGet
		case "delete":
			method = http.MethodDelete
		case "revoke":
			method, path = http.MethodPost, path+"/revoke"
		case "roll":
			method, path, body, secret = http.MethodPost, path+"/roll", map[string]any{"grace_seconds": *grace}, true
		case "update":
			patch := map[string]any{}
			if *name != "" {
				patch["name"] = *name
			}
			if *role != "" {
				patch["role"] = *role
			}
			if *scopes != "" {
				patch["scopes"] = splitList(strings.TrimPrefix(*scopes, "-"))
			}
			if *cidrs != "" {
				patch["allowed_cidrs"] = splitList(strings.TrimPrefix(*cidrs, "-"))
			}
			if *enable || *disable {
				patch["enabled"] = *enable
			}
			if *expiresIn != "" {
				d, err := keys.ParseDuration(*expiresIn)
				if err != nil {
					return fmt.Errorf("keys update: --expires-in: %w", err)
				}
				patch["expires_at"] = time.Now().Add(d).UTC().Format(time.RFC3339)
			}
			method, body = http.MethodPatch, patch
		}
	default:
		return fmt.Errorf("keys: unknown subcommand %q", sub)
	}
	out, err := newClient(*server, cred).call(ctx, "keys "+sub, method, path, body)
	if err != nil {
		return err
	}
	if *asJSON || sub == "delete" {
		_, err := stdout.Write(out)
		return err
	}
	var ks []keyOutput
	if list {
		err = json.Unmarshal(out, &ks)
	} else {
		var k keyOutput
		err = json.Unmarshal(out, &k)
		ks = append(ks, k)
	}
	if err != nil {
		return err
	}
	printKeys(stdout, ks)
	for _, k := range ks {
		for _, w := range k.Warnings {
			fmt.Fprintln(stdout, "warning:", w)
		}
		if k.ExpiresSoon {
			fmt.Fprintf(stdout, "note: key %s expires soon (%s); roll or replace it\n", k.ID, k.ExpiresAt.Format(time.RFC3339))
		}
	}
	if secret {
		fmt.Fprintf(stdout, "\nThe key's secret, shown once; store it now:\n%s\n", ks[0].Key)
	}
	return nil
}

func splitList(s string) []string {
	out := []string{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// keyOutput is the part of a key the table shows.
type keyOutput struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Type        string     `json:"type"`
	Role        string     `json:"role"`
	Scopes      []string   `json:"scopes"`
	Status      string     `json:"status"`
	ExpiresAt   *time.Time `json:"expires_at"`
	ExpiresSoon bool       `json:"expires_soon"`
	MaskedValue string     `json:"maskedValue"`
	Key         string     `json:"key"`
	Warnings    []string   `json:"warnings"`
}

func printKeys(w io.Writer, ks []keyOutput) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tTYPE\tROLE\tSCOPES\tSTATUS\tEXPIRES\tSECRET")
	for _, k := range ks {
		exp := "never"
		if k.ExpiresAt != nil {
			exp = k.ExpiresAt.Format(time.DateOnly)
			if k.ExpiresSoon {
				exp += " (soon!)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Type, k.Role, strings.Join(k.Scopes, ","), k.Status, exp, k.MaskedValue)
	}
	tw.Flush()
}

// cmdSigningKeys is "keymint signing-keys list|rotate".
func cmdSigningKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "rotate") {
		return errors.New("signing-keys: want a subcommand: list, rotate")
	}
	sub := args[0]
	fs := flag.NewFlagSet("keymint signing-keys "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	server, asJSON := clientFlags(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cred, err := apiCredential()
	if err != nil {
		return err
	}
	method, path := http.MethodGet, "/api/v1/signing-keys"
	if sub == "rotate" {
		method, path = http.MethodPost, "/api/v1/signing-keys/rotate"
	}
	out, err := newClient(*server, cred).call(ctx, "signing-keys "+sub, method, path, nil)
	if err != nil {
		return err
	}
	if *asJSON || sub == "rotate" {
		var v any
		if err := json.Unmarshal(out, &v); err != nil {
			return err
		}
		return printJSON(stdout, v)
	}
	var ks []struct {
		KID         string     `json:"kid"`
		Alg         string     `json:"alg"`
		Status      string     `json:"status"`
		CreatedAt   time.Time  `json:"created_at"`
		RemoveAfter *time.Time `json:"remove_after"`
	}
	if err := json.Unmarshal(out, &ks); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tSTATUS\tCREATED\tLEAVES JWKS")
	for _, k := range ks {
		leaves := "-"
		if k.RemoveAfter != nil {
			leaves = k.RemoveAfter.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.KID, k.Alg, k.Status, k.CreatedAt.Format(time.RFC3339), leaves)
	}
	return tw.Flush()
}
