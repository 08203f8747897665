// A real third-party OpenID provider for the tests: node-oidc-provider v9 (OpenID Certified) on 127.0.0.1, with the
// default in-memory adapter, its own minimal sign-in and consent pages (plain HTML forms, drivable by any HTTP client),
// a protected API that validates the provider's own access tokens, and an optional admin surface for the tests.
//
// Usage: node op.mjs --config FILE [--port N]       (also OP_CONFIG, OP_PORT; port 0 = a free one)
//        OP_ADMIN_SECRET=... enables /__test__/* (Authorization: Bearer <secret>, compared in constant time).
// Prints one JSON line on stdout once it is listening: {"issuer": "http://127.0.0.1:PORT", "port": PORT}.
// Everything else (the provider's notices included) goes to stderr.
//
// Config (JSON):
//   clients:  [{client_id, client_secret, redirect_uris, token_endpoint_auth_method?, grant_types?, scope?, ...}]
//             any other key is passed to oidc-provider as client metadata
//   accounts: [{id, email, password, email_verified?, name?, given_name?, family_name?}]
//   scopes:   extra API scopes, e.g. ["calendar.read"] (openid, email, profile, offline_access are always there)
//   access_token_ttl, refresh_token_ttl, id_token_ttl: seconds; clock_tolerance: seconds (default 0)
//   strict_offline_access: false (default) adds prompt=consent to an authorization request that asks for
//             offline_access without any prompt; true keeps oidc-provider's stock rule (offline_access is dropped
//             unless the client itself sends prompt=consent)

import { createHash, generateKeyPairSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

// oidc-provider prints notices with console.info (stdout): stdout carries only the ready line.
console.info = console.error;
console.log = console.error;

const { default: Provider, errors } = await import('oidc-provider');

const MAX_BODY = 1024 * 1024;
const API_PREFIX = '/api/';
const ADMIN_PREFIX = '/__test__/';
const INTERACTION = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|confirm|abort))?$/;

function options() {
  const { values } = parseArgs({
    options: { config: { type: 'string' }, port: { type: 'string' } },
    strict: true,
  });
  const configPath = values.config ?? process.env.OP_CONFIG;
  if (!configPath) throw new Error('--config FILE (or OP_CONFIG) is required');
  const port = Number(values.port ?? process.env.OP_PORT ?? '0');
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad port ${values.port}`);
  const config = JSON.parse(readFileSync(configPath, 'utf8'));
  return { config, port, adminSecret: process.env.OP_ADMIN_SECRET || undefined };
}

function seconds(value, fallback, name) {
  const n = value ?? fallback;
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer (seconds)`);
  return n;
}

function constantTimeEqual(a, b) {
  // Digests first: equal lengths for timingSafeEqual, and no early exit on a length mismatch.
  const da = createHash('sha256').update(a).digest();
  const db = createHash('sha256').update(b).digest();
  return timingSafeEqual(da, db);
}

function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  })[c]);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res, status, body, headers = {}) {
  const isJson = typeof body !== 'string';
  const text = isJson ? JSON.stringify(body) : body;
  res.writeHead(status, {
    'Content-Type': isJson ? 'application/json; charset=utf-8' : 'text/html; charset=utf-8',
    'Cache-Control': 'no-store',
    'Content-Length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

function page(title, content) {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body><h1>${escapeHtml(title)}</h1>
${content}
</body></html>
`;
}

function loginPage(uid, client, error) {
  return page('Sign in', `<p>to continue to ${escapeHtml(client?.clientName ?? client?.clientId ?? '')}</p>
${error ? `<p class="error">${escapeHtml(error)}</p>` : ''}
<form id="login" method="post" action="/interaction/${uid}/login">
  <label>Email or account id <input name="login" autocomplete="username" required></label>
  <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
  <button type="submit">Sign in</button>
</form>
<form id="abort" method="post" action="/interaction/${uid}/abort"><button type="submit">Cancel</button></form>`);
}

function consentPage(uid, client, details, params) {
  const scopes = (params.scope ?? '').split(' ').filter(Boolean);
  return page('Authorize', `<p>${escapeHtml(client?.clientId ?? '')} asks for:</p>
<ul>${scopes.map((s) => `<li class="scope">${escapeHtml(s)}</li>`).join('')}</ul>
<form id="consent" method="post" action="/interaction/${uid}/confirm"><button type="submit">Allow</button></form>
<form id="deny" method="post" action="/interaction/${uid}/abort"><button type="submit">Deny</button></form>`);
}

function buildConfiguration(config, accounts) {
  const apiScopes = config.scopes ?? [];
  const accessTokenTtl = seconds(config.access_token_ttl, 300, 'access_token_ttl');
  const refreshTokenTtl = seconds(config.refresh_token_ttl, 14 * 24 * 3600, 'refresh_token_ttl');
  const idTokenTtl = seconds(config.id_token_ttl, 3600, 'id_token_ttl');

  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: randomBytes(8).toString('hex'), use: 'sig', alg: 'RS256' };

  const clients = (config.clients ?? []).map((c) => ({
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    ...c,
  }));

  return {
    clients,
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    responseTypes: ['code'],
    scopes: ['openid', 'offline_access', ...apiScopes],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name', 'preferred_username'],
    },
    // The ID token carries the claims its scopes granted, as most providers' do (not only sub).
    conformIdTokenClaims: false,
    // oidc-provider's default of 15 s would keep an expired token usable that long; this peer shares the tests' clock.
    clockTolerance: config.clock_tolerance ?? 0,
    pkce: { required: () => true },
    rotateRefreshToken: true,
    ttl: {
      AccessToken: accessTokenTtl,
      AuthorizationCode: 60,
      IdToken: idTokenTtl,
      RefreshToken: refreshTokenTtl,
      Interaction: 600,
      Session: 24 * 3600,
      Grant: refreshTokenTtl,
    },
    features: {
      devInteractions: { enabled: false },
      userinfo: { enabled: true },
      revocation: {
        enabled: true,
        allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId,
      },
      introspection: {
        enabled: true,
        allowedPolicy: async (ctx, client, token) => client.clientAuthMethod !== 'none'
          || token.clientId === ctx.oidc.client.clientId,
      },
    },
    interactions: { url: async (_ctx, interaction) => `/interaction/${interaction.uid}` },
    clientBasedCORS: () => false,
    async findAccount(_ctx, sub) {
      const account = accounts.get(sub);
      if (!account) return undefined;
      return {
        accountId: sub,
        async claims() {
          const claims = { sub, email: account.email, email_verified: account.email_verified ?? true };
          for (const key of ['name', 'given_name', 'family_name', 'preferred_username']) {
            if (account[key] !== undefined) claims[key] = account[key];
          }
          return claims;
        },
      };
    },
    async renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = page('Error', `<p class="error">${escapeHtml(out.error)}: ${escapeHtml(out.error_description ?? '')}</p>`);
    },
  };
}

async function main() {
  const { config, port: requestedPort, adminSecret } = options();
  const accounts = new Map((config.accounts ?? []).map((a) => [a.id, a]));
  const grantsByAccount = new Map(); // accountId -> Set of grant ids, fed by the provider's grant events
  const counts = new Map(); // grant type (token endpoint) or route name -> { requests, succeeded }

  const count = (key, ok) => {
    const entry = counts.get(key) ?? { requests: 0, succeeded: 0 };
    entry.requests += 1;
    if (ok) entry.succeeded += 1;
    counts.set(key, entry);
  };

  let handleProvider;
  const server = createServer((req, res) => {
    route(req, res).catch((err) => {
      console.error(err);
      if (!res.headersSent) send(res, 500, { error: 'server_error', error_description: String(err.message) });
      else res.destroy();
    });
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(requestedPort, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;

  const provider = new Provider(issuer, buildConfiguration(config, accounts));
  const authorizationPath = provider.pathFor('authorization');

  provider.on('grant.saved', (grant) => {
    if (!grant.accountId) return;
    if (!grantsByAccount.has(grant.accountId)) grantsByAccount.set(grant.accountId, new Set());
    grantsByAccount.get(grant.accountId).add(grant.jti);
  });
  provider.on('server_error', (_ctx, err) => console.error('oidc-provider server_error', err));

  // offline_access needs prompt=consent in oidc-provider; most clients do not send it, so add it unless strict.
  provider.use(async (ctx, next) => {
    if (!config.strict_offline_access && ctx.method === 'GET' && ctx.path === authorizationPath) {
      const query = { ...ctx.query };
      const scopes = typeof query.scope === 'string' ? query.scope.split(' ') : [];
      if (scopes.includes('offline_access') && query.prompt === undefined) {
        query.prompt = 'consent';
        ctx.query = query;
      }
    }
    await next();
  });

  // Counts what reached the provider: token requests by grant type, other endpoints by route name.
  provider.use(async (ctx, next) => {
    try {
      await next();
    } finally {
      const route = ctx.oidc?.route;
      if (route) {
        const key = route === 'token' ? (ctx.oidc.params?.grant_type ?? 'token') : route;
        count(key, ctx.status < 400);
      }
    }
  });

  handleProvider = provider.callback();

  async function bearer(req) {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer ([\x21-\x7e]+)$/i.exec(header);
    if (!match) return { error: 'missing' };
    const token = await provider.AccessToken.find(match[1]);
    if (!token) return { error: 'invalid_token', description: 'access token not found or expired' };
    const grant = await provider.Grant.find(token.grantId);
    if (!grant || grant.accountId !== token.accountId || grant.clientId !== token.clientId) {
      return { error: 'invalid_token', description: 'grant revoked' };
    }
    if (!accounts.has(token.accountId)) return { error: 'invalid_token', description: 'account not found' };
    return { token };
  }

  async function api(req, res, url) {
    const auth = await bearer(req);
    if (auth.error === 'missing') {
      count('api', false);
      send(res, 401, { error: 'unauthorized' }, { 'WWW-Authenticate': 'Bearer realm="api"' });
      return;
    }
    if (auth.error) {
      count('api', false);
      send(res, 401, { error: auth.error, error_description: auth.description }, {
        'WWW-Authenticate': `Bearer realm="api", error="${auth.error}", error_description="${auth.description}"`,
      });
      return;
    }
    const { token } = auth;
    const account = accounts.get(token.accountId);
    const scopes = token.scopes;
    const who = { sub: token.accountId, client_id: token.clientId, scope: token.scope ?? '' };
    const path = url.pathname;
    if (path === '/api/me' && req.method === 'GET') {
      count('api', true);
      send(res, 200, {
        ...who, ...(scopes.has('email') ? { email: account.email, email_verified: account.email_verified ?? true } : {}),
      });
      return;
    }
    if (path === '/api/calendar' && req.method === 'GET') {
      if (!scopes.has('calendar.read')) {
        count('api', false);
        send(res, 403, { error: 'insufficient_scope' }, {
          'WWW-Authenticate': 'Bearer realm="api", error="insufficient_scope", scope="calendar.read"',
        });
        return;
      }
      count('api', true);
      send(res, 200, { ...who, events: [{ id: 'evt-1', title: 'Standup' }] });
      return;
    }
    if (path === '/api/echo' || path.startsWith('/api/echo/')) {
      const body = (await readBody(req)).toString('utf8');
      const headers = { ...req.headers };
      delete headers.authorization;
      let json;
      try { json = body ? JSON.parse(body) : undefined; } catch { json = undefined; }
      count('api', true);
      send(res, 200, {
        ...who,
        method: req.method,
        path,
        query: Object.fromEntries(url.searchParams),
        raw_query: url.search.replace(/^\?/, ''),
        headers,
        body,
        ...(json !== undefined ? { json } : {}),
      });
      return;
    }
    count('api', false);
    send(res, 404, { error: 'not_found' });
  }

  async function revokeAll(accountId) {
    const grantIds = [...(grantsByAccount.get(accountId) ?? [])];
    let revoked = 0;
    for (const grantId of grantIds) {
      await provider.AccessToken.revokeByGrantId(grantId);
      await provider.RefreshToken.revokeByGrantId(grantId);
      const grant = await provider.Grant.find(grantId, { ignoreExpiration: true });
      if (grant) {
        await grant.destroy();
        revoked += 1;
      }
    }
    grantsByAccount.delete(accountId);
    return revoked;
  }

  async function admin(req, res, url) {
    const header = req.headers.authorization ?? '';
    const presented = header.startsWith('Bearer ') ? header.slice(7) : '';
    if (!adminSecret || !constantTimeEqual(presented, adminSecret)) {
      send(res, 404, { error: 'not_found' });
      return;
    }
    const path = url.pathname.slice(ADMIN_PREFIX.length);
    if (path === 'revoke-all' && req.method === 'POST') {
      const { account_id: accountId } = JSON.parse((await readBody(req)).toString('utf8') || '{}');
      if (typeof accountId !== 'string') {
        send(res, 400, { error: 'account_id is required' });
        return;
      }
      send(res, 200, { account_id: accountId, revoked_grants: await revokeAll(accountId) });
      return;
    }
    if (path === 'counts' && req.method === 'GET') {
      send(res, 200, Object.fromEntries(counts));
      return;
    }
    if (path === 'reset' && req.method === 'POST') {
      counts.clear();
      send(res, 200, {});
      return;
    }
    send(res, 404, { error: 'not_found' });
  }

  async function interaction(req, res, uid, action) {
    let details;
    try {
      details = await provider.interactionDetails(req, res);
    } catch (err) {
      if (err instanceof errors.SessionNotFound) {
        send(res, 400, page('Error', `<p class="error">${escapeHtml(err.error_description ?? err.message)}</p>`));
        return;
      }
      throw err;
    }
    if (details.uid !== uid) {
      send(res, 400, page('Error', '<p class="error">interaction mismatch</p>'));
      return;
    }
    const { prompt, params } = details;
    const client = await provider.Client.find(params.client_id);

    if (action === undefined && req.method === 'GET') {
      if (prompt.name === 'login') send(res, 200, loginPage(uid, client));
      else if (prompt.name === 'consent') send(res, 200, consentPage(uid, client, prompt.details, params));
      else send(res, 400, page('Error', `<p class="error">unknown prompt ${escapeHtml(prompt.name)}</p>`));
      return;
    }
    if (req.method !== 'POST') {
      send(res, 405, page('Error', '<p class="error">method not allowed</p>'), { Allow: 'POST' });
      return;
    }
    const form = new URLSearchParams((await readBody(req)).toString('utf8'));

    if (action === 'abort') {
      await provider.interactionFinished(req, res, {
        error: 'access_denied', error_description: 'End-User aborted interaction',
      }, { mergeWithLastSubmission: false });
      return;
    }

    if (action === 'login') {
      if (prompt.name !== 'login') {
        send(res, 400, page('Error', '<p class="error">not a login prompt</p>'));
        return;
      }
      const login = form.get('login') ?? '';
      const password = form.get('password') ?? '';
      const account = accounts.get(login) ?? [...accounts.values()].find((a) => a.email === login);
      if (!account || !constantTimeEqual(password, String(account.password))) {
        send(res, 200, loginPage(uid, client, 'Invalid email or password.'));
        return;
      }
      await provider.interactionFinished(req, res, { login: { accountId: account.id } }, {
        mergeWithLastSubmission: false,
      });
      return;
    }

    // action === 'confirm'
    if (prompt.name !== 'consent') {
      send(res, 400, page('Error', '<p class="error">not a consent prompt</p>'));
      return;
    }
    const { accountId } = details.session;
    let grant = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
    const isNew = !grant;
    grant ??= new provider.Grant({ accountId, clientId: params.client_id });
    const missing = prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    if (missing.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: isNew ? { grantId } : {} }, {
      mergeWithLastSubmission: true,
    });
  }

  async function route(req, res) {
    if (!handleProvider) {
      send(res, 503, { error: 'starting' });
      return;
    }
    const url = new URL(req.url, issuer);
    if (url.pathname.startsWith(ADMIN_PREFIX)) {
      await admin(req, res, url);
      return;
    }
    if (url.pathname.startsWith(API_PREFIX)) {
      await api(req, res, url);
      return;
    }
    const match = INTERACTION.exec(url.pathname);
    if (match) {
      await interaction(req, res, match[1], match[2]);
      return;
    }
    handleProvider(req, res);
  }

  // In-memory state only: nothing to flush, so a signal just ends the process.
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => process.exit(0));

  process.stdout.write(`${JSON.stringify({ issuer, port })}\n`);
}

try {
  await main();
} catch (err) {
  console.error(err);
  process.exit(1);
}
