// node-oidc-provider as the benchmark peer: one process, its default (in-memory) adapter, JWT access tokens for
// the benchmark resource via resource indicators, refresh tokens rotating on every use (as frontdesk's do).
//
//   node server.mjs PORT CLIENT_SECRET
//
// GET /bench/mint?kind=refresh|code&n=N answers N refresh tokens or authorization codes, one a line, minted through
// the provider's own models ahead of a run (codes carry the PKCE challenge of bench/run.py's fixed verifier).
import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const port = Number(process.argv[2] || 9100);
const secret = process.argv[3] || 'bench-secret-bench-secret-0123456789';
const issuer = `http://127.0.0.1:${port}`;
const RESOURCE = 'https://api.bench.example';
// node-oidc-provider refuses to introspect JWT access tokens (rejectStructuredTokens), so the introspection
// scenario asks for a token for this second resource server, which gets opaque ones.
const OPAQUE_RESOURCE = 'https://opaque.bench.example';
const REDIRECT_URI = 'https://rp.bench.example/cb';
const CODE_CHALLENGE = process.env.BENCH_CODE_CHALLENGE;

function jwk(type, options, alg) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), alg, use: 'sig', kid: `${alg}-bench` };
}

// The provider's own MemoryAdapter is an LRU of 1,000 entries, too small to hold a pool of minted tokens; this is
// the same thing without the bound: plain Maps, entries kept until their expiry (a database's work, minus the I/O).
const stores = new Map();
const grantMembers = new Map();
class MapAdapter {
  constructor(name) {
    this.name = name;
    if (!stores.has(name)) stores.set(name, new Map());
    this.store = stores.get(name);
  }

  async upsert(id, payload, expiresIn) {
    const expiresAt = expiresIn ? Date.now() + expiresIn * 1000 : Infinity;
    this.store.set(id, { payload, expiresAt });
    if (payload.grantId) {
      if (!grantMembers.has(payload.grantId)) grantMembers.set(payload.grantId, []);
      grantMembers.get(payload.grantId).push([this.name, id]);
    }
  }

  async find(id) {
    const entry = this.store.get(id);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.store.delete(id);
      return undefined;
    }
    return entry.payload;
  }

  async findByUserCode() { return undefined; }

  async findByUid() { return undefined; }

  async consume(id) {
    const entry = this.store.get(id);
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) { this.store.delete(id); }

  async revokeByGrantId(grantId) {
    for (const [name, id] of grantMembers.get(grantId) || []) stores.get(name)?.delete(id);
    grantMembers.delete(grantId);
  }
}

const provider = new Provider(issuer, {
  adapter: MapAdapter,
  clients: [
    {
      client_id: 'bench',
      client_secret: secret,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['client_credentials', 'authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: [REDIRECT_URI],
      scope: 'openid offline_access api.read',
      id_token_signed_response_alg: 'ES256',
    },
  ],
  jwks: {
    keys: [jwk('ec', { namedCurve: 'P-256' }, 'ES256'), jwk('rsa', { modulusLength: 2048 }, 'RS256')],
  },
  scopes: ['openid', 'offline_access', 'api.read'],
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  rotateRefreshToken: true,
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => undefined,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resource) => ({
        scope: 'api.read',
        audience: resource,
        accessTokenTTL: 600,
        accessTokenFormat: resource === OPAQUE_RESOURCE ? 'opaque' : 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
  ttl: { AccessToken: 600, ClientCredentials: 600, AuthorizationCode: 600, IdToken: 600, RefreshToken: 86400 },
});

async function grantFor(accountId) {
  const grant = new provider.Grant({ accountId, clientId: 'bench' });
  grant.addOIDCScope('openid offline_access');
  grant.addResourceScope(RESOURCE, 'api.read');
  return grant.save();
}

async function mint(kind, n) {
  const client = await provider.Client.find('bench');
  const out = [];
  for (let i = 0; i < n; i += 1) {
    const accountId = `user-${i % 100}`;
    const grantId = await grantFor(accountId);
    const common = {
      accountId, client, grantId, scope: 'openid offline_access api.read', resource: RESOURCE,
      authTime: Math.floor(Date.now() / 1000),
    };
    if (kind === 'refresh') {
      out.push(await new provider.RefreshToken({ ...common, gty: 'authorization_code' }).save());
    } else {
      out.push(await new provider.AuthorizationCode({
        ...common, redirectUri: REDIRECT_URI, codeChallenge: CODE_CHALLENGE, codeChallengeMethod: 'S256',
      }).save());
    }
  }
  return out;
}

const callback = provider.callback();
http.createServer(async (req, res) => {
  if (req.url.startsWith('/bench/mint')) {
    const query = new URL(req.url, issuer).searchParams;
    const tokens = await mint(query.get('kind'), Number(query.get('n')));
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`${tokens.join('\n')}\n`);
    return;
  }
  callback(req, res);
}).listen(port, '127.0.0.1', () => console.log(`oidc-provider ${issuer} ready`));
