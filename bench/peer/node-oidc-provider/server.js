// The peer for bench/token_endpoint.py: node-oidc-provider 9.x configured to do the same work as
// trustanchor's token endpoint for the client_credentials grant.
//
// - in-memory adapter (the library default; it stores nothing for JWT-format access tokens),
// - one confidential client using client_secret_basic (trustanchor allows that method only outside
//   production; both sides use it so both do the same client-authentication work),
// - ES256 JWT access tokens (RFC 9068, typ at+jwt) through the resource indicators feature, with a
//   default resource so the client does not have to send `resource`.
//
// With BENCH_GRANT=transfer_code it does the same work as trustanchor's code exchange for a
// value_transfer grant instead (bench/token_endpoint.py --grant transfer_code):
// - authorization_code + PKCE S256, the authorization code carrying RFC 9396 authorization_details
//   (features.richAuthorizationRequests, one `value_transfer` type), scope "openid api:read";
// - the answer: an ES256 JWT access token with the approved authorization_details (lifetime
//   BENCH_TRANSFER_TTL, no refresh token) plus an ES256 ID token;
// - codes are minted in this process before each measured run, through the library's own models
//   (Grant + AuthorizationCode), by POST /bench/mint (a bench-only route, 127.0.0.1 only, guarded
//   by BENCH_MINT_TOKEN) — never while wrk is running;
// - a Map-backed adapter instead of the library's memory adapter, whose LRU keeps only 1000
//   entries and would evict codes before they are used. It keeps consumed codes, as a store must
//   to detect reuse.
//
// Everything comes from the environment so the runner owns all the parameters:
//   BENCH_PORT, BENCH_CLIENT_ID, BENCH_CLIENT_SECRET, BENCH_SCOPE, BENCH_RESOURCE, BENCH_TOKEN_TTL,
//   and for transfer codes BENCH_GRANT, BENCH_REDIRECT_URI, BENCH_CODE_CHALLENGE,
//   BENCH_TRANSFER_DETAIL (JSON), BENCH_TRANSFER_TTL, BENCH_MINT_TOKEN
// It only ever listens on 127.0.0.1.

import { generateKeyPairSync } from 'node:crypto';

import Provider from 'oidc-provider';

import { MapAdapter } from './map_adapter.js';

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
const transferCodes = process.env.BENCH_GRANT === 'transfer_code';

// A fresh P-256 key per run, like the runner's fresh trustanchor key.
const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwk = { ...privateKey.export({ format: 'jwk' }), alg: 'ES256', use: 'sig', kid: 'bench-es256' };

const transfer = transferCodes ? {
  redirectUri: required('BENCH_REDIRECT_URI'),
  codeChallenge: required('BENCH_CODE_CHALLENGE'),
  detail: JSON.parse(required('BENCH_TRANSFER_DETAIL')),
  ttl: Number(required('BENCH_TRANSFER_TTL')),
  mintToken: required('BENCH_MINT_TOKEN'),
} : null;
const apiScopes = scope.split(' ').filter((value) => value !== 'openid');

const client = transferCodes ? {
  client_id: clientId,
  client_secret: clientSecret,
  grant_types: ['authorization_code'],
  response_types: ['code'],
  redirect_uris: [transfer.redirectUri],
  token_endpoint_auth_method: 'client_secret_basic',
  id_token_signed_response_alg: 'ES256',
  authorization_details_types: ['value_transfer'],
  scope,
} : {
  client_id: clientId,
  client_secret: clientSecret,
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  token_endpoint_auth_method: 'client_secret_basic',
  id_token_signed_response_alg: 'ES256', // the only key is ES256; never used by this grant
  scope,
};

const provider = new Provider(`http://${host}:${port}`, {
  adapter: transferCodes ? MapAdapter : undefined,
  clients: [client],
  jwks: { keys: [jwk] },
  scopes: scope.split(' '),
  ttl: {
    ClientCredentials: ttl,
    AccessToken: transferCodes ? transfer.ttl : ttl,
    AuthorizationCode: 3600, // minted ahead of the run
    Grant: 3600,
    IdToken: ttl,
  },
  // The ID token carries what trustanchor's does for this grant: no extra claims.
  findAccount: (ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: !transferCodes },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: apiScopes.join(' '),
        audience: resource,
        accessTokenTTL: transferCodes ? transfer.ttl : ttl,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
    richAuthorizationRequests: {
      enabled: transferCodes,
      types: { value_transfer: { validate: () => {} } }, // validated when the code was minted
      // The details approved at consent are exactly the ones the code carries.
      authorizationDetailsForGrantSource: (ctx, source) => source.rar,
      authorizationDetailsForAccessToken: (ctx, token, source) => source.rar,
      authorizationDetailsForIntrospection: (ctx, token) => token.rar,
    },
  },
  pkce: { required: () => true },
  cookies: { keys: ['bench-only-cookie-key-not-used-by-this-grant'] },
});

// POST /bench/mint?count=N&token=T (transfer codes only): mint N codes for one grant, answer them
// one per line. Runs before a measured run, never during one.
async function mint(count) {
  const grant = new provider.Grant({ accountId: 'bench-holder', clientId });
  grant.addOIDCScope('openid');
  grant.addResourceScope(resource, apiScopes.join(' '));
  grant.addRar(transfer.detail);
  const grantId = await grant.save();
  const clientInstance = await provider.Client.find(clientId);
  const codes = [];
  for (let i = 0; i < count; i += 1) {
    const code = new provider.AuthorizationCode({
      accountId: 'bench-holder',
      acr: 'urn:trustanchor:assurance:high',
      authTime: Math.floor(Date.now() / 1000),
      client: clientInstance,
      codeChallenge: transfer.codeChallenge,
      codeChallengeMethod: 'S256',
      grantId,
      redirectUri: transfer.redirectUri,
      resource,
      scope: scope,
      rar: [transfer.detail],
    });
    codes.push(await code.save());
  }
  return codes;
}

if (transferCodes) {
  provider.use(async (ctx, next) => {
    if (ctx.path !== '/bench/mint') return next();
    const url = new URL(ctx.href);
    if (ctx.method !== 'POST' || url.searchParams.get('token') !== transfer.mintToken) {
      ctx.status = 403;
      return undefined;
    }
    const count = Number(url.searchParams.get('count'));
    if (!Number.isInteger(count) || count < 1 || count > 1_000_000) {
      ctx.status = 400;
      return undefined;
    }
    ctx.body = `${(await mint(count)).join('\n')}\n`;
    ctx.type = 'text/plain';
    return undefined;
  });
}

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
