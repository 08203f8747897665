// A relying party built on openid-client v6 (OpenID Certified) that drives frontdesk end to end:
// discovery → authorization request (PKCE S256, state, nonce) → sign-in and consent forms → code grant with
// ID token validation → UserInfo → refresh → revocation of the refresh token → refresh with it must fail.
//
// Usage: node rp.mjs --issuer URL --client-id ID --redirect-uri URI --username NAME
//        (secrets from the environment: RP_CLIENT_SECRET and RP_PASSWORD; every option also reads RP_<NAME>)
// Prints one JSON object to stdout; exits 0 only when every step succeeded.

import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';

import * as client from 'openid-client';

import { signInAndConsent } from './scripted_person.mjs';

const REQUEST_TIMEOUT_SECONDS = 10;
const OVERALL_TIMEOUT_MS = 60_000;

function options() {
  const { values } = parseArgs({
    options: {
      issuer: { type: 'string' },
      'client-id': { type: 'string' },
      'client-secret': { type: 'string' },
      'redirect-uri': { type: 'string' },
      username: { type: 'string' },
      password: { type: 'string' },
      scope: { type: 'string' },
    },
    strict: true,
  });
  const pick = (name) => values[name] ?? process.env[`RP_${name.toUpperCase().replaceAll('-', '_')}`];
  const out = {
    issuer: pick('issuer'),
    clientId: pick('client-id'),
    clientSecret: pick('client-secret'),
    redirectUri: pick('redirect-uri'),
    username: pick('username'),
    password: pick('password'),
    scope: pick('scope') ?? 'openid profile email offline_access',
  };
  const missing = Object.entries(out)
    .filter(([, v]) => !v)
    .map(([k]) => k);
  if (missing.length) throw new Error(`missing options: ${missing.join(', ')}`);
  return out;
}

// --- helpers -------------------------------------------------------------------------------------------------

function jwtHeader(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[0], 'base64url').toString('utf8'));
}

/** OpenID Connect Core §3.1.3.6: the left half of the hash of the access token, by the ID token's alg. */
function atHash(accessToken, alg) {
  const digest = alg === 'EdDSA' ? 'sha512' : `sha${alg.slice(2)}`;
  const full = createHash(digest).update(accessToken, 'ascii').digest();
  return full.subarray(0, full.length / 2).toString('base64url');
}

function describe(error) {
  return {
    name: error?.name,
    message: error?.message,
    code: error?.code,
    error: error?.error,
    error_description: error?.error_description,
    status: error?.status,
    cause: error?.cause instanceof Error ? error.cause.message : error?.cause,
  };
}

// --- the relying party ---------------------------------------------------------------------------------------

async function main() {
  const opts = options();
  const steps = [];
  const result = { ok: false, steps };

  const config = await client.discovery(
    new URL(opts.issuer),
    opts.clientId,
    { client_secret: opts.clientSecret, redirect_uris: [opts.redirectUri], response_types: ['code'] },
    client.ClientSecretBasic(opts.clientSecret),
    { execute: [client.allowInsecureRequests], timeout: REQUEST_TIMEOUT_SECONDS },
  );
  const server = config.serverMetadata();
  result.issuer = server.issuer;
  steps.push('discovery');

  const codeVerifier = client.randomPKCECodeVerifier();
  const codeChallenge = await client.calculatePKCECodeChallenge(codeVerifier);
  const state = client.randomState();
  const nonce = client.randomNonce();
  const authorizationUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: opts.redirectUri,
    scope: opts.scope,
    code_challenge: codeChallenge,
    code_challenge_method: 'S256',
    state,
    nonce,
    prompt: 'consent',
  });
  steps.push('authorization request built');

  const { callback } = await signInAndConsent(authorizationUrl, opts.redirectUri, opts.username, opts.password, {
    steps,
    seeOtherOnly: true,
  });
  result.callback_params = [...callback.searchParams.keys()].sort();

  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: codeVerifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  if (!claims) throw new Error('no ID token claims after the code grant');
  const idHeader = jwtHeader(tokens.id_token);
  result.token_type = tokens.token_type;
  result.scope = tokens.scope;
  result.expires_in = tokens.expiresIn();
  result.id_token_header = idHeader;
  result.id_token_claims = claims;
  result.nonce_matches = claims.nonce === nonce;
  result.at_hash_matches = claims.at_hash === atHash(tokens.access_token, idHeader.alg);
  result.sub = claims.sub;
  result.refresh_token_issued = typeof tokens.refresh_token === 'string' && tokens.refresh_token.length > 0;
  steps.push('authorization_code grant (ID token validated)');

  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  result.userinfo = userinfo;
  steps.push('userinfo');

  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  result.refreshed = {
    token_type: refreshed.token_type,
    access_token_changed: refreshed.access_token !== tokens.access_token,
    refresh_token_issued: typeof refreshed.refresh_token === 'string' && refreshed.refresh_token.length > 0,
    refresh_token_changed: refreshed.refresh_token !== tokens.refresh_token,
    id_token_sub: refreshed.claims()?.sub ?? null,
  };
  steps.push('refresh_token grant');

  const revokedToken = refreshed.refresh_token ?? tokens.refresh_token;
  await client.tokenRevocation(config, revokedToken, { token_type_hint: 'refresh_token' });
  steps.push('revocation of the refresh token');

  try {
    await client.refreshTokenGrant(config, revokedToken);
    result.revoked_refresh = { error: null };
  } catch (error) {
    if (!(error instanceof client.ResponseBodyError)) throw error;
    result.revoked_refresh = { error: error.error, status: error.status };
  }
  steps.push('refresh with the revoked token');

  result.ok = result.revoked_refresh.error === 'invalid_grant';
  return result;
}

const guard = setTimeout(() => {
  process.stdout.write(`${JSON.stringify({ ok: false, error: { message: 'rp.mjs timed out' } })}\n`);
  process.exit(3);
}, OVERALL_TIMEOUT_MS);
guard.unref();

try {
  const result = await main();
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  process.exitCode = result.ok ? 0 : 1;
} catch (error) {
  process.stdout.write(`${JSON.stringify({ ok: false, error: describe(error) }, null, 2)}\n`);
  process.exitCode = 2;
}
