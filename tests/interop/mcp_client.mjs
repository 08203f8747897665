// The official MCP TypeScript SDK client (npm @modelcontextprotocol/sdk: Client, StreamableHTTPClientTransport and an
// OAuthClientProvider) driving an MCP server whose tokens come from frontdesk, as an MCP host would: the SDK finds
// frontdesk from the server's 401, registers itself (or names its metadata document, or uses a client the operator
// registered) and sends the person to the authorization URL; here a scripted person (scripted_person.mjs) answers,
// and the code goes back through transport.finishAuth, as the SDK's own OAuth example does. Then initialize,
// tools/list, tools/call, and the step-up when add_note answers 403 insufficient_scope.
//
// Usage: node mcp_client.mjs --server URL --redirect-uri URI --username NAME --note TEXT
//          [--client-metadata-url URL | --client-id ID]          (the password from MCP_PASSWORD)
// Prints one JSON object (the shape python_mcp_client.connect returns; never a token); exits 0 when all succeeded.

import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';

import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { signInAndConsent } from './scripted_person.mjs';

const OVERALL_TIMEOUT_MS = 90_000;

function options() {
  const { values } = parseArgs({
    options: {
      server: { type: 'string' },
      'redirect-uri': { type: 'string' },
      username: { type: 'string' },
      note: { type: 'string' },
      'client-metadata-url': { type: 'string' },
      'client-id': { type: 'string' },
    },
    strict: true,
  });
  const password = process.env.MCP_PASSWORD;
  for (const name of ['server', 'redirect-uri', 'username', 'note']) {
    if (!values[name]) throw new Error(`missing --${name}`);
  }
  if (!password) throw new Error('missing MCP_PASSWORD');
  return { ...values, password };
}

function claimsOf(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
}

/** The SDK's OAuthClientProvider: what a host keeps (client information, tokens, PKCE verifier), in memory. */
class ScriptedProvider {
  constructor(opts, result) {
    this.opts = opts;
    this.result = result;
    this.pendingCode = undefined;
    this.verifier = undefined;
    this.currentTokens = undefined;
    this.information = opts['client-id'] ? { client_id: opts['client-id'] } : undefined;
    // SEP-991: with this set, a server that advertises client_id_metadata_document_supported gets the URL as client_id.
    if (opts['client-metadata-url']) this.clientMetadataUrl = opts['client-metadata-url'];
  }

  get redirectUrl() {
    return this.opts['redirect-uri'];
  }

  get clientMetadata() {
    return {
      client_name: 'MCP TypeScript SDK (frontdesk interop)',
      redirect_uris: [this.opts['redirect-uri']],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      // OpenID Connect Registration §2 (MCP 2025-11-25, SEP-837): a loopback redirect URI is a native app's. The
      // SDK (1.32.2) has no application_type in its OAuthClientMetadata type but sends what the host gives it.
      application_type: 'native',
    };
  }

  state() {
    this.expectedState = randomBytes(16).toString('base64url');
    return this.expectedState;
  }

  clientInformation() {
    return this.information;
  }

  saveClientInformation(information) {
    this.information = information;
  }

  tokens() {
    return this.currentTokens;
  }

  saveTokens(tokens) {
    // Known SDK bug (modelcontextprotocol/typescript-sdk#2255, open in 1.32.2; fixed on the v2 branch by #2346):
    // on 403 insufficient_scope, authInternal() (dist/esm/client/auth.js, "Handle token refresh or new
    // authorization") refreshes first, and refreshAuthorization() sends no scope, so the refreshed token has the old
    // scope (RFC 6749 §6 allows no more), the retry is 403 again and the transport gives up ("Server returned 403
    // after trying upscoping"), never asking the person. This host keeps no refresh token, so the step-up reaches
    // the authorization endpoint as MCP's step-up flow intends.
    const { refresh_token: dropped, ...kept } = tokens;
    this.result.refresh_token_dropped ||= Boolean(dropped);
    this.currentTokens = kept;
    this.result.token_claims.push(claimsOf(tokens.access_token));
  }

  saveCodeVerifier(verifier) {
    this.verifier = verifier;
  }

  codeVerifier() {
    return this.verifier;
  }

  async redirectToAuthorization(authorizationUrl) {
    this.result.authorization_requests.push(Object.fromEntries(authorizationUrl.searchParams));
    const { callback, consentPages } = await signInAndConsent(
      authorizationUrl,
      this.opts['redirect-uri'],
      this.opts.username,
      this.opts.password,
    );
    this.result.consent_pages.push(...consentPages);
    this.result.redirect_params.push([...callback.searchParams.keys()].sort());
    if (callback.searchParams.get('state') !== this.expectedState) throw new Error('state mismatch');
    this.pendingCode = callback.searchParams.get('code');
    if (!this.pendingCode) throw new Error(`no code in the redirect back: ${callback.searchParams}`);
  }

  takeCode() {
    const code = this.pendingCode;
    this.pendingCode = undefined;
    return code;
  }
}

function structured(result) {
  if (result.isError) throw new Error(`tool error: ${JSON.stringify(result.content)}`);
  const content = result.structuredContent;
  if (content === undefined) return result.content[0].text;
  // A tool returning a bare value has it wrapped as {"result": …} (MCP structured output).
  const keys = Object.keys(content);
  return keys.length === 1 && keys[0] === 'result' ? content.result : content;
}

/** Runs `step`; when the SDK stopped for the person (UnauthorizedError), hands it the code and runs it again. */
async function authorizing(transport, provider, step) {
  try {
    return await step();
  } catch (error) {
    if (!(error instanceof UnauthorizedError) || provider.pendingCode === undefined) throw error;
    await transport().finishAuth(provider.takeCode());
    return await step();
  }
}

async function main() {
  const opts = options();
  const result = {
    requests: [],
    authorization_requests: [],
    consent_pages: [],
    redirect_params: [],
    token_claims: [],
  };
  const recordingFetch = (url, init) => {
    const target = new URL(url);
    result.requests.push(`${init?.method ?? 'GET'} ${target.origin}${target.pathname}`);
    return fetch(url, init);
  };
  const provider = new ScriptedProvider(opts, result);
  const serverUrl = new URL(opts.server);
  let transport;
  let client;
  const connect = async () => {
    transport = new StreamableHTTPClientTransport(serverUrl, { authProvider: provider, fetch: recordingFetch });
    client = new Client({ name: 'frontdesk-interop', version: '1.0.0' });
    await client.connect(transport); // initialize (and notifications/initialized)
  };
  await authorizing(() => transport, provider, connect);
  result.initialized = {
    protocol_version: transport.protocolVersion ?? null,
    server_name: client.getServerVersion()?.name ?? null,
  };
  result.tools = (await client.listTools()).tools.map((tool) => tool.name).sort();
  result.whoami = structured(await client.callTool({ name: 'whoami', arguments: {} }));
  // add_note needs notes.write: 403 insufficient_scope, and the SDK goes back to the person for the wider scope.
  const addNote = () => client.callTool({ name: 'add_note', arguments: { text: opts.note } });
  result.add_note = structured(await authorizing(() => transport, provider, addNote));
  result.whoami_after_step_up = structured(await client.callTool({ name: 'whoami', arguments: {} }));
  result.notes = structured(await client.callTool({ name: 'list_notes', arguments: {} }));
  result.client_id = provider.information?.client_id;
  await client.close();
  return result;
}

const guard = setTimeout(() => {
  process.stdout.write(`${JSON.stringify({ ok: false, error: { message: 'mcp_client.mjs timed out' } })}\n`);
  process.exit(3);
}, OVERALL_TIMEOUT_MS);
guard.unref();

try {
  const result = await main();
  process.stdout.write(`${JSON.stringify({ ok: true, ...result }, null, 2)}\n`);
} catch (error) {
  const described = { name: error?.name, message: error?.message, code: error?.code, stack: error?.stack };
  process.stdout.write(`${JSON.stringify({ ok: false, error: described }, null, 2)}\n`);
  process.exitCode = 2;
}
