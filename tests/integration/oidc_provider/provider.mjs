// A real OpenID Provider (panva's certified `oidc-provider`) for Forgeline's integration tests.
//
// Configuration (environment):
//   OIDC_PORT            port to listen on (127.0.0.1); the issuer is http://127.0.0.1:<port>
//   OIDC_CLIENT_ID       the one registered confidential client
//   OIDC_CLIENT_SECRET   its secret (client_secret_basic and client_secret_post both accepted)
//   OIDC_REDIRECT_URIS   comma-separated redirect URIs registered for that client
//
// Behaviour:
//   * authorization code flow, PKCE (S256) required for every request, scopes openid/email/profile;
//     `email` and `email_verified` are put in the ID token (conformIdTokenClaims: false), which is
//     signed RS256 with a key generated at start-up (published at /jwks).
//   * No HTML: the interaction URL (/interaction/<uid>) logs in the "current account" and grants
//     every requested scope/claim at once, then 303s back to the provider, so a client that follows
//     redirects goes from the authorization endpoint straight to redirect_uri?code=...&state=...
//   * POST /_test/account {"sub", "email", "email_verified"} sets the current account (204). It also
//     drops every provider session, so the next authorization request logs in that account even when
//     the caller reuses the cookies of an earlier login. GET /_test/account returns it.
//   * Prints `ready <issuer>` on stdout once listening; exits 0 on SIGTERM/SIGINT.

import * as crypto from 'node:crypto';
import * as http from 'node:http';

import Provider from 'oidc-provider';

function requiredEnv(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`provider.mjs: environment variable ${name} is required`);
    process.exit(2);
  }
  return value;
}

const port = Number.parseInt(requiredEnv('OIDC_PORT'), 10);
const clientId = requiredEnv('OIDC_CLIENT_ID');
const clientSecret = requiredEnv('OIDC_CLIENT_SECRET');
const redirectUris = requiredEnv('OIDC_REDIRECT_URIS')
  .split(',')
  .map((uri) => uri.trim())
  .filter(Boolean);
const issuer = `http://127.0.0.1:${port}`;

// --- storage --------------------------------------------------------------------------------------
// A small in-memory adapter (one Map for every model) so that the control endpoint can drop all
// sessions. Expiry is checked on read; the provider itself also checks `exp` on what it loads.

const store = new Map(); // `${model}:${id}` -> { model, payload, expiresAt }

function live(key) {
  const entry = store.get(key);
  if (entry && entry.expiresAt <= Date.now()) {
    store.delete(key);
    return undefined;
  }
  return entry;
}

class TestAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity;
    store.set(this.key(id), { model: this.model, payload, expiresAt });
  }

  async find(id) {
    return live(this.key(id))?.payload;
  }

  async findByUid(uid) {
    for (const [key, entry] of store) {
      if (entry.model === this.model && entry.payload.uid === uid && live(key)) {
        return entry.payload;
      }
    }
    return undefined;
  }

  async findByUserCode(userCode) {
    for (const [key, entry] of store) {
      if (entry.model === this.model && entry.payload.userCode === userCode && live(key)) {
        return entry.payload;
      }
    }
    return undefined;
  }

  async consume(id) {
    const entry = live(this.key(id));
    if (entry) {
      entry.payload.consumed = Math.floor(Date.now() / 1000);
    }
  }

  async destroy(id) {
    store.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    for (const [key, entry] of store) {
      if (entry.model !== 'Grant' && entry.payload.grantId === grantId) {
        store.delete(key);
      }
    }
  }
}

function dropAllSessions() {
  for (const [key, entry] of store) {
    if (entry.model === 'Session') {
      store.delete(key);
    }
  }
}

// --- accounts -------------------------------------------------------------------------------------

const accounts = new Map(); // sub -> { sub, email, email_verified }
let currentSub;

async function findAccount(_ctx, sub) {
  const account = accounts.get(sub);
  if (!account) {
    return undefined;
  }
  return {
    accountId: sub,
    async claims() {
      const { email, email_verified: emailVerified } = accounts.get(sub) ?? account;
      return { sub, email, email_verified: emailVerified };
    },
  };
}

// --- provider -------------------------------------------------------------------------------------

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = {
  ...privateKey.export({ format: 'jwk' }),
  use: 'sig',
  alg: 'RS256',
  kid: crypto.randomUUID(),
};

const provider = new Provider(issuer, {
  adapter: TestAdapter,
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: redirectUris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      // The provider accepts client_secret_post and client_secret_basic interchangeably for a
      // client registered with either one.
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    },
  ],
  jwks: { keys: [signingKey] },
  findAccount,
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: [
      'name',
      'family_name',
      'given_name',
      'middle_name',
      'nickname',
      'preferred_username',
      'picture',
      'updated_at',
    ],
  },
  // Put scope-granted claims (email, email_verified) in the ID token, not only at userinfo.
  conformIdTokenClaims: false,
  responseTypes: ['code'],
  pkce: { required: () => true }, // only S256 exists in v9; required for confidential clients too
  clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
  features: {
    devInteractions: { enabled: false }, // interactions are answered below, without HTML
  },
  interactions: {
    url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
  },
  // Cookies: no `secure` flag is set here; the provider only marks them secure on https requests,
  // so they work over plain http on 127.0.0.1.
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  renderError(ctx, out) {
    ctx.type = 'json';
    ctx.body = out;
  },
});

for (const event of [
  'server_error',
  'authorization.error',
  'grant.error',
  'userinfo.error',
  'jwks.error',
  'discovery.error',
]) {
  provider.on(event, (_ctx, err) => {
    console.error(`${event}: ${err?.name}: ${err?.message} ${err?.error_description ?? ''}`);
  });
}

// --- non-interactive login and consent --------------------------------------------------------------

async function finishInteraction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;
  const account = currentSub ? accounts.get(currentSub) : undefined;

  if (!account) {
    await provider.interactionFinished(
      req,
      res,
      {
        error: 'access_denied',
        error_description: 'no test account: POST /_test/account before authorizing',
      },
      { mergeWithLastSubmission: false },
    );
    return;
  }

  const result = {};
  let accountId;
  if (prompt.name === 'login') {
    accountId = account.sub;
    result.login = { accountId };
  } else if (prompt.name === 'consent') {
    accountId = session?.accountId ?? account.sub;
  } else {
    throw new Error(`unexpected interaction prompt ${prompt.name}`);
  }

  let grant;
  if (prompt.name === 'consent' && details.grantId) {
    grant = await provider.Grant.find(details.grantId);
  }
  grant ??= new provider.Grant({ accountId, clientId: params.client_id });

  // Consent to everything that was asked for: the requested scopes now (so that a login finishes
  // in one round trip), plus whatever the consent prompt reports as still missing.
  grant.addOIDCScope(typeof params.scope === 'string' ? params.scope : 'openid');
  const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = prompt.details;
  if (missingOIDCScope?.length) {
    grant.addOIDCScope(missingOIDCScope.join(' '));
  }
  if (missingOIDCClaims?.length) {
    grant.addOIDCClaims(missingOIDCClaims);
  }
  for (const [indicator, scopes] of Object.entries(missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  result.consent = { grantId: await grant.save() };

  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
}

// --- test control endpoint ----------------------------------------------------------------------------

function sendJson(res, status, body) {
  const data = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(data),
    'Cache-Control': 'no-store',
  });
  res.end(data);
}

async function readJson(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) {
      throw new Error('body too large');
    }
    chunks.push(chunk);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

async function handleAccount(req, res) {
  if (req.method === 'GET') {
    sendJson(res, 200, currentSub ? accounts.get(currentSub) : null);
    return;
  }
  if (req.method !== 'POST') {
    res.writeHead(405, { Allow: 'GET, POST' }).end();
    return;
  }
  let body;
  try {
    body = await readJson(req);
  } catch (err) {
    sendJson(res, 400, { error: `invalid JSON body: ${err.message}` });
    return;
  }
  const { sub, email, email_verified: emailVerified = true } = body ?? {};
  if (typeof sub !== 'string' || !sub) {
    sendJson(res, 400, { error: '"sub" must be a non-empty string' });
    return;
  }
  if (typeof email !== 'string' || !email) {
    sendJson(res, 400, { error: '"email" must be a non-empty string' });
    return;
  }
  if (typeof emailVerified !== 'boolean') {
    sendJson(res, 400, { error: '"email_verified" must be a boolean' });
    return;
  }
  accounts.set(sub, { sub, email, email_verified: emailVerified });
  currentSub = sub;
  dropAllSessions(); // the next authorization request logs in this account afresh
  res.writeHead(204).end();
}

// --- server ---------------------------------------------------------------------------------------------

const providerCallback = provider.callback();

const server = http.createServer(async (req, res) => {
  const { pathname } = new URL(req.url, issuer);
  try {
    if (pathname === '/_test/account') {
      await handleAccount(req, res);
    } else if (pathname.startsWith('/interaction/')) {
      await finishInteraction(req, res);
    } else {
      await providerCallback(req, res);
    }
  } catch (err) {
    console.error(`${req.method} ${pathname}: ${err?.stack ?? err}`);
    if (!res.headersSent) {
      sendJson(res, err?.statusCode ?? 500, {
        error: err?.error ?? 'server_error',
        error_description: err?.error_description ?? err?.message ?? String(err),
      });
    } else {
      res.end();
    }
  }
});

server.on('error', (err) => {
  console.error(`provider.mjs: ${err.message}`);
  process.exit(1);
});

server.listen(port, '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 1000).unref();
}

process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
