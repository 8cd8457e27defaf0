// verify.mjs verifies a keymint access token the way a Node.js service
// would, with nothing but the jose library and the org's discovery
// document:
//
//	node verify.mjs DISCOVERY_URL AUDIENCE TOKEN
//
// It fetches the discovery document, builds a remote JWK Set from its
// jwks_uri, and verifies TOKEN with the document's issuer, AUDIENCE and
// typ at+jwt (RFC 9068). On success it prints the JWT payload as JSON on
// stdout and exits 0; on any failure it prints the reason on stderr and
// exits 1. cmd/keymint/interop_test.go runs it.
import { createRemoteJWKSet, jwtVerify } from 'jose';

async function main(argv) {
  if (argv.length !== 3) {
    throw new Error('usage: node verify.mjs DISCOVERY_URL AUDIENCE TOKEN');
  }
  const [discoveryURL, audience, token] = argv;

  const res = await fetch(discoveryURL, { headers: { accept: 'application/json' } });
  if (!res.ok) {
    throw new Error(`discovery: ${discoveryURL} answered ${res.status}`);
  }
  const meta = await res.json();
  if (typeof meta.issuer !== 'string' || typeof meta.jwks_uri !== 'string') {
    throw new Error('discovery: the document lacks issuer or jwks_uri');
  }

  const JWKS = createRemoteJWKSet(new URL(meta.jwks_uri));
  const algs = meta.access_token_signing_alg_values_supported;
  const { payload } = await jwtVerify(token, JWKS, {
    issuer: meta.issuer,
    audience,
    typ: 'at+jwt',
    algorithms: Array.isArray(algs) ? algs : undefined,
  });
  process.stdout.write(JSON.stringify(payload) + '\n');
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`verify.mjs: ${err && err.code ? err.code + ': ' : ''}${err && err.message ? err.message : err}\n`);
    process.exit(1);
  },
);
