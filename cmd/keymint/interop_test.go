package main

// Interop: keymint tokens verified by the Node.js jose library, the way a
// Node service would verify them, from nothing but the org's discovery
// document. The script and its pinned dependency live in
// testdata/interop; `make interop-deps` (npm ci) installs them.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// interopDir holds verify.mjs, package.json and package-lock.json.
var interopDir = filepath.Join("..", "..", "testdata", "interop")

// interopRequired reports whether a missing Node.js setup must fail the
// run rather than skip the test: KEYMINT_REQUIRE_INTEROP set to anything
// but "" or "0" (CI sets it to 1).
func interopRequired() bool {
	v := os.Getenv("KEYMINT_REQUIRE_INTEROP")
	return v != "" && v != "0"
}

// interopSetup returns the node binary and the script, or skips the test
// (fails it when interop is required) if either is unavailable.
func interopSetup(t *testing.T) (node, script string) {
	t.Helper()
	unavailable := func(why string) {
		t.Helper()
		if interopRequired() {
			t.Fatalf("jose interop: %s, and KEYMINT_REQUIRE_INTEROP is set; install Node.js 20+ and run `make interop-deps` (npm ci --prefix testdata/interop)", why)
		}
		t.Skipf("jose interop skipped: %s; run `make interop-deps` to enable it (KEYMINT_REQUIRE_INTEROP=1 turns this skip into a failure)", why)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		unavailable("node is not on PATH")
	}
	dir, err := filepath.Abs(interopDir)
	if err != nil {
		t.Fatal(err)
	}
	installed, err := os.ReadFile(filepath.Join(dir, "node_modules", "jose", "package.json"))
	if err != nil {
		unavailable("testdata/interop/node_modules is missing")
	}
	lock, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		t.Fatalf("testdata/interop/package-lock.json: %v", err)
	}
	var pkg struct{ Version string }
	var lk struct {
		Packages map[string]struct{ Version string }
	}
	if err := json.Unmarshal(installed, &pkg); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(lock, &lk); err != nil {
		t.Fatal(err)
	}
	if want := lk.Packages["node_modules/jose"].Version; want == "" || pkg.Version != want {
		unavailable("testdata/interop/node_modules holds jose " + pkg.Version + ", the lock file pins " + want)
	}
	return node, filepath.Join(dir, "verify.mjs")
}

// interopVerify runs `node verify.mjs DISCOVERY AUDIENCE TOKEN` and
// returns its stdout, its stderr and its error (an *exec.ExitError when
// the script refused the token).
func interopVerify(t *testing.T, node, script, discovery, audience, token string) ([]byte, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script, discovery, audience, token)
	cmd.Dir = filepath.Dir(script)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("node timed out: %s", stderr.String())
	}
	return stdout.Bytes(), stderr.String(), err
}

// interopTamper rewrites the token's scope claim to *:* and keeps the
// original signature.
func interopTamper(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	claims["scope"] = "*:*"
	payload, err = json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	return strings.Join(parts, ".")
}

// TestJoseInterop verifies keymint tokens of each algorithm with Node's
// jose (createRemoteJWKSet + jwtVerify with issuer, audience and typ
// at+jwt), and checks that jose refuses a tampered token.
func TestJoseInterop(t *testing.T) {
	node, script := interopSetup(t)
	m := MustRunMain(t, "")
	for _, alg := range []string{"ES256", "EdDSA", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			org := "jose-" + strings.ToLower(alg)
			b := bootstrap(t, m, org, alg)
			k := createKey(t, m, b.AdminKey.Key, map[string]any{"name": "node svc", "role": "viewer", "scopes": []string{"deploys:write"}})
			tok := exchange(t, m, "POST", k.ID, k.Key, nil)

			for _, doc := range []string{"openid-configuration", "oauth-authorization-server"} {
				t.Run(doc, func(t *testing.T) {
					out, stderr, err := interopVerify(t, node, script, b.Issuer+"/.well-known/"+doc, b.Issuer, tok.Token)
					if err != nil {
						t.Fatalf("jose refused a valid %s token: %v\n%s", alg, err, stderr)
					}
					var payload struct {
						Iss      string `json:"iss"`
						Sub      string `json:"sub"`
						ClientID string `json:"client_id"`
						Org      string `json:"org"`
						Scope    string `json:"scope"`
						Exp      int64  `json:"exp"`
					}
					if err := json.Unmarshal(out, &payload); err != nil {
						t.Fatalf("node printed no JSON payload: %v: %s", err, out)
					}
					if payload.Iss != b.Issuer || payload.Sub != k.ID || payload.ClientID != k.ID || payload.Org != org {
						t.Fatalf("payload %s, want iss %s and sub %s", out, b.Issuer, k.ID)
					}
					if payload.Scope != "*:read deploys:write" || payload.Exp != tok.ExpiresAt.Unix() {
						t.Fatalf("payload %s, want scope %q and exp %d", out, "*:read deploys:write", tok.ExpiresAt.Unix())
					}
				})
			}

			discovery := b.Issuer + "/.well-known/openid-configuration"
			for _, tt := range []struct {
				name, audience, token, reason string
			}{
				{"Tampered", b.Issuer, interopTamper(t, tok.Token), "ERR_JWS_SIGNATURE_VERIFICATION_FAILED"},
				{"WrongAudience", "https://api.elsewhere.example", tok.Token, "ERR_JWT_CLAIM_VALIDATION_FAILED"},
			} {
				t.Run(tt.name, func(t *testing.T) {
					out, stderr, err := interopVerify(t, node, script, discovery, tt.audience, tt.token)
					var exit *exec.ExitError
					if !errors.As(err, &exit) || exit.ExitCode() == 0 {
						t.Fatalf("node accepted the token: err=%v stdout=%s", err, out)
					}
					if !strings.Contains(stderr, tt.reason) {
						t.Fatalf("node refused the token for another reason than %s: %s", tt.reason, stderr)
					}
				})
			}
		})
	}
}
