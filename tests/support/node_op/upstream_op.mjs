// An upstream OpenID Provider for tests/flows/test_upstream_login.py: node-oidc-provider (9.x,
// the installation under bench/peer/node-oidc-provider) as trustanchor's eKYC provider.
//
// - one relying party, trustanchor: private_key_jwt with the public JWKS trustanchor serves for
//   this provider (passed in UPSTREAM_CLIENT_JWKS), one redirect URI, PKCE S256, PAR (the
//   library's default), RFC 9207 iss in every authorization response;
// - one person, who logs in without a password: the interaction route finishes the login and
//   the consent for every interaction at once (the tests are about what trustanchor does with
//   the answers, not about this provider's pages);
// - plain claims (the Digital Agency style) from the profile and address scopes.
//
// Environment: UPSTREAM_OP_PORT, UPSTREAM_OP_MODULE_DIR (the directory whose node_modules holds
// oidc-provider), UPSTREAM_CLIENT_ID, UPSTREAM_REDIRECT_URI, UPSTREAM_CLIENT_JWKS (JSON).
// It only ever listens on 127.0.0.1 and prints "listening" once it does.

import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`missing environment variable ${name}`);
    process.exit(2);
  }
  return value;
}

const port = Number(required('UPSTREAM_OP_PORT'));
const moduleDir = required('UPSTREAM_OP_MODULE_DIR');
const { default: Provider } = await import(
  pathToFileURL(join(moduleDir, 'node_modules', 'oidc-provider', 'lib', 'index.js')).href
);

const ACCOUNT = 'hanako-1';
const CLAIMS = {
  family_name: 'Sato',
  given_name: 'Hanako',
  birthdate: '1985-10-10',
  gender: 'female',
  address: { formatted: '2-2 Minato, Osaka' },
};

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signing = { ...privateKey.export({ format: 'jwk' }), alg: 'RS256', use: 'sig', kid: 'op-rs256' };

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [
    {
      client_id: required('UPSTREAM_CLIENT_ID'),
      redirect_uris: [required('UPSTREAM_REDIRECT_URI')],
      response_types: ['code'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: 'ES256',
      id_token_signed_response_alg: 'RS256',
      jwks: JSON.parse(required('UPSTREAM_CLIENT_JWKS')),
    },
  ],
  jwks: { keys: [signing] },
  scopes: ['openid', 'profile', 'address'],
  claims: {
    openid: ['sub'],
    profile: ['family_name', 'given_name', 'birthdate', 'gender'],
    address: ['address'],
  },
  acrValues: ['aal2', 'aal3'],
  findAccount: (ctx, sub) => ({
    accountId: sub,
    claims: () => ({ sub, ...CLAIMS }),
  }),
  features: {
    devInteractions: { enabled: false },
    claimsParameter: { enabled: true },
    pushedAuthorizationRequests: { enabled: true },
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  pkce: { required: () => true },
});
provider.proxy = false;

const callback = provider.callback();

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params } = details;
  if (prompt.name === 'login') {
    return provider.interactionFinished(
      req,
      res,
      { login: { accountId: ACCOUNT, acr: 'aal3', amr: ['hwk'] } },
      { mergeWithLastSubmission: false },
    );
  }
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: ACCOUNT, clientId: params.client_id });
  if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
  if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
  const grantId = await grant.save();
  return provider.interactionFinished(
    req,
    res,
    { consent: { grantId } },
    { mergeWithLastSubmission: true },
  );
}

http
  .createServer((req, res) => {
    if (req.url.startsWith('/interaction/')) {
      interaction(req, res).catch((error) => {
        res.statusCode = 500;
        res.end(String(error));
      });
      return;
    }
    callback(req, res);
  })
  .listen(port, '127.0.0.1', () => console.log('listening'));
