// The peer for bench/token_endpoint.py: node-oidc-provider 9.x configured to do the same work as
// trustanchor's token endpoint for the client_credentials grant.
//
// - in-memory adapter (the library default; it stores nothing for JWT-format access tokens),
// - one confidential client using client_secret_basic (trustanchor allows that method only outside
//   production; both sides use it so both do the same client-authentication work),
// - ES256 JWT access tokens (RFC 9068, typ at+jwt) through the resource indicators feature, with a
//   default resource so the client does not have to send `resource`.
//
// Everything comes from the environment so the runner owns all the parameters:
//   BENCH_PORT, BENCH_CLIENT_ID, BENCH_CLIENT_SECRET, BENCH_SCOPE, BENCH_RESOURCE, BENCH_TOKEN_TTL
// It only ever listens on 127.0.0.1.

import { generateKeyPairSync } from 'node:crypto';

import Provider from 'oidc-provider';

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`missing environment variable ${name}`);
    process.exit(2);
  }
  return value;
}

const port = Number(required('BENCH_PORT'));
const clientId = required('BENCH_CLIENT_ID');
const clientSecret = required('BENCH_CLIENT_SECRET');
const scope = required('BENCH_SCOPE');
const resource = required('BENCH_RESOURCE');
const ttl = Number(process.env.BENCH_TOKEN_TTL || '300');
const host = '127.0.0.1';

// A fresh P-256 key per run, like the runner's fresh trustanchor key.
const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwk = { ...privateKey.export({ format: 'jwk' }), alg: 'ES256', use: 'sig', kid: 'bench-es256' };

const provider = new Provider(`http://${host}:${port}`, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'ES256', // the only key is ES256; never used by this grant
      scope,
    },
  ],
  jwks: { keys: [jwk] },
  scopes: scope.split(' '),
  ttl: { ClientCredentials: ttl },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope,
        audience: resource,
        accessTokenTTL: ttl,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
  cookies: { keys: ['bench-only-cookie-key-not-used-by-this-grant'] },
});

// Unexpected server errors would otherwise be invisible while the load runs.
provider.on('server_error', (ctx, err) => console.error('server_error', err));

const server = provider.listen(port, host, () => {
  console.log(`node-oidc-provider ready on http://${host}:${port}`);
});
server.keepAliveTimeout = 65_000;

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
