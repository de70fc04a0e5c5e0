// node-oidc-provider v9 as a benchmark peer of idp: measurement only, never a deployment.
//
// One primary process migrates the database, makes (or reuses) the signing and cookie keys,
// then forks WORKERS cluster workers that all serve http://127.0.0.1:PORT with the same keys
// and the same PostgreSQL store. Started and stopped by bench/peers/node_oidc.py.
//
// Environment:
//   PORT           listening port on 127.0.0.1 (the issuer is http://127.0.0.1:PORT)
//   WORKERS        cluster workers (default 2)
//   DATABASE_URL   the peer's own database (created and dropped by the Python side)
//   PG_POOL_SIZE   connections per worker (default 10, like idp's db_pool_size)
//   WORKDIR        where keys.json lives (default: the current directory)
//   CC_SECRET, WEB_SECRET   client secrets of the two static clients
//
// `node server.js createdb ADMIN_URL NAME` / `node server.js dropdb ADMIN_URL NAME` manage the
// peer's database from the admin database, so the Python side needs no PostgreSQL driver.

import cluster from 'node:cluster';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';

import pg from 'pg';

const TABLE = 'oidc_peer_payloads';

// ---------------------------------------------------------------------------------------------
// Database administration (createdb / dropdb) and the schema.

function quoteIdent(name) {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) {
    throw new Error(`refusing database name ${JSON.stringify(name)}`);
  }
  return `"${name}"`;
}

async function adminCommand(command, adminUrl, name) {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    if (command === 'createdb') {
      await client.query(`CREATE DATABASE ${quoteIdent(name)}`);
    } else {
      // Connections left by killed workers would block the drop.
      await client.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
        [name],
      );
      await client.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)}`);
    }
  } finally {
    await client.end();
  }
}

async function migrate(databaseUrl) {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    // One table for every model the provider persists (Session, Interaction, Grant,
    // AuthorizationCode, AccessToken, RefreshToken, ClientCredentials, ...).
    await client.query(`
      CREATE TABLE IF NOT EXISTS ${TABLE} (
        model       text        NOT NULL,
        id          text        NOT NULL,
        payload     jsonb       NOT NULL,
        grant_id    text,
        user_code   text,
        uid         text,
        expires_at  timestamptz,
        consumed_at timestamptz,
        PRIMARY KEY (model, id)
      )`);
    await client.query(`CREATE INDEX IF NOT EXISTS ${TABLE}_grant_id ON ${TABLE} (grant_id)`);
    await client.query(`CREATE INDEX IF NOT EXISTS ${TABLE}_user_code ON ${TABLE} (user_code)`);
    await client.query(`CREATE INDEX IF NOT EXISTS ${TABLE}_uid ON ${TABLE} (uid)`);
  } finally {
    await client.end();
  }
}

// ---------------------------------------------------------------------------------------------
// Keys: one RS256 and one ES256 signing key plus the cookie-signing keys, made once by the
// primary and read by every worker (cookies signed by one worker must verify on another).

function loadOrCreateKeys(file) {
  if (fs.existsSync(file)) {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  }
  const jwk = (keyPair, alg) => {
    const key = keyPair.privateKey.export({ format: 'jwk' });
    return { ...key, alg, use: 'sig', kid: crypto.randomBytes(8).toString('hex') };
  };
  const keys = {
    // RS256 first: the default algorithm for ID tokens, as idp signs them.
    jwks: {
      keys: [
        jwk(crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }), 'RS256'),
        jwk(crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }), 'ES256'),
      ],
    },
    cookieKeys: [crypto.randomBytes(32).toString('base64url'), crypto.randomBytes(32).toString('base64url')],
  };
  fs.writeFileSync(file, JSON.stringify(keys), { mode: 0o600 });
  return keys;
}

// ---------------------------------------------------------------------------------------------
// The PostgreSQL adapter: one instance per model name, sharing the worker's pool.

function makeAdapter(pool) {
  return class PgAdapter {
    constructor(model) {
      this.model = model;
    }

    async upsert(id, payload, expiresIn) {
      const expiresAt = expiresIn ? new Date(Date.now() + expiresIn * 1000) : null;
      await pool.query(
        `INSERT INTO ${TABLE} (model, id, payload, grant_id, user_code, uid, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (model, id) DO UPDATE SET
           payload = EXCLUDED.payload, grant_id = EXCLUDED.grant_id,
           user_code = EXCLUDED.user_code, uid = EXCLUDED.uid, expires_at = EXCLUDED.expires_at`,
        [this.model, id, payload, payload.grantId ?? null, payload.userCode ?? null,
          payload.uid ?? null, expiresAt],
      );
    }

    // Expiry is left to the provider (it checks `exp` itself, and refresh-token lookups ask
    // for expired entries on purpose); a consumed entry carries `consumed`.
    async #findBy(column, value) {
      const { rows } = await pool.query(
        `SELECT payload, consumed_at FROM ${TABLE} WHERE model = $1 AND ${column} = $2 LIMIT 1`,
        [this.model, value],
      );
      if (rows.length === 0) return undefined;
      const { payload, consumed_at: consumedAt } = rows[0];
      return consumedAt ? { ...payload, consumed: true } : payload;
    }

    find(id) {
      return this.#findBy('id', id);
    }

    findByUserCode(userCode) {
      return this.#findBy('user_code', userCode);
    }

    findByUid(uid) {
      return this.#findBy('uid', uid);
    }

    async consume(id) {
      await pool.query(
        `UPDATE ${TABLE} SET consumed_at = now() WHERE model = $1 AND id = $2`,
        [this.model, id],
      );
    }

    async destroy(id) {
      await pool.query(`DELETE FROM ${TABLE} WHERE model = $1 AND id = $2`, [this.model, id]);
    }

    async revokeByGrantId(grantId) {
      await pool.query(
        `DELETE FROM ${TABLE} WHERE model = $1 AND grant_id = $2`,
        [this.model, grantId],
      );
    }
  };
}

// ---------------------------------------------------------------------------------------------
// The provider's configuration.

const WEB_SCOPE = 'openid profile email offline_access';

function configuration({ pool, keys }) {
  return {
    adapter: makeAdapter(pool),
    jwks: keys.jwks,
    cookies: { keys: keys.cookieKeys },
    clients: [
      {
        client_id: 'cc',
        client_secret: process.env.CC_SECRET,
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        scope: 'orders:read',
      },
      {
        client_id: 'web',
        client_secret: process.env.WEB_SECRET,
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: ['https://bench.invalid/cb'],
        scope: WEB_SCOPE,
        id_token_signed_response_alg: 'RS256',
      },
    ],
    // `orders:read` is the client_credentials scope; the rest are the OpenID ones.
    scopes: ['openid', 'offline_access', 'profile', 'email', 'orders:read'],
    claims: {
      openid: ['sub'],
      profile: ['name'],
      email: ['email', 'email_verified'],
    },
    async findAccount(ctx, sub) {
      return {
        accountId: sub,
        async claims() {
          return {
            sub, email: `${sub}@bench.invalid`, email_verified: true, name: `Bench ${sub}`,
          };
        },
      };
    },
    features: {
      devInteractions: { enabled: true }, // the login and consent forms the scripted client posts
      introspection: {
        enabled: true,
        // Any confidential client may introspect (the web app introspects its users' tokens).
        allowedPolicy: async (ctx, client) => client.clientAuthMethod !== 'none',
      },
      revocation: {
        enabled: true,
        allowedPolicy: async (ctx, client, token) => token.clientId === client.clientId,
      },
      userinfo: { enabled: true },
      clientCredentials: { enabled: true },
    },
    pkce: { required: () => true },
    rotateRefreshToken: true, // every refresh returns a new refresh token; reuse revokes the grant
    async issueRefreshToken(ctx, client) {
      return client.clientId === 'web' && client.grantTypeAllowed('refresh_token');
    },
    // The web app is first-party: the customer's grant covers its whole scope without a consent
    // page. (offline_access still needs `prompt=consent` on the request, which shows one form.)
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId
        || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) {
        return ctx.oidc.provider.Grant.find(grantId);
      }
      if (ctx.oidc.client.clientId === 'web') {
        const grant = new ctx.oidc.provider.Grant({
          clientId: ctx.oidc.client.clientId,
          accountId: ctx.oidc.session.accountId,
        });
        grant.addOIDCScope(WEB_SCOPE);
        await grant.save();
        return grant;
      }
      return undefined;
    },
    // Lifetimes as idp's defaults (src/idp/settings.py).
    ttl: {
      AuthorizationCode: 60,
      AccessToken: 600,
      ClientCredentials: 600,
      IdToken: 300,
      RefreshToken: 14 * 24 * 3600,
      Interaction: 30 * 60,
      Session: 14 * 24 * 3600,
      Grant: 14 * 24 * 3600,
    },
    clientBasedCORS: () => false,
    async renderError(ctx, out) {
      ctx.type = 'json';
      ctx.body = out;
    },
  };
}

// ---------------------------------------------------------------------------------------------

async function runWorker() {
  // Imported here, not at the top: createdb/dropdb should not pay for loading the provider.
  const { default: Provider } = await import('oidc-provider');
  const port = Number(process.env.PORT);
  const keys = JSON.parse(fs.readFileSync(process.env.KEYS_FILE, 'utf8'));
  const pool = new pg.Pool({
    connectionString: process.env.DATABASE_URL,
    max: Number(process.env.PG_POOL_SIZE || 10),
  });
  pool.on('error', (err) => console.error(`pg pool error: ${err.message}`));

  const provider = new Provider(`http://127.0.0.1:${port}`, configuration({ pool, keys }));
  provider.proxy = false; // clients talk to it directly, no TLS-offloading proxy in front
  provider.on('server_error', (ctx, err) => {
    console.error(`server_error ${ctx.method} ${ctx.path}: ${err.stack || err}`);
  });
  provider.listen(port, '127.0.0.1');
}

async function runPrimary() {
  const workdir = process.env.WORKDIR || process.cwd();
  fs.mkdirSync(workdir, { recursive: true });
  const keysFile = path.join(workdir, 'keys.json');
  loadOrCreateKeys(keysFile);
  await migrate(process.env.DATABASE_URL);

  const workers = Number(process.env.WORKERS || 2);
  let stopping = false;
  const stop = (code = 0) => {
    stopping = true;
    for (const worker of Object.values(cluster.workers)) worker.process.kill('SIGTERM');
    process.exit(code);
  };
  process.on('SIGTERM', () => stop(0));
  process.on('SIGINT', () => stop(0));
  // A worker that dies is not replaced: a benchmark must see the failure, not hide it.
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    console.error(`worker ${worker.process.pid} exited (code ${code}, signal ${signal}): stopping`);
    stop(1);
  });
  for (let i = 0; i < workers; i += 1) {
    cluster.fork({ KEYS_FILE: keysFile });
  }
}

const [command, adminUrl, name] = process.argv.slice(2);
if (command === 'createdb' || command === 'dropdb') {
  await adminCommand(command, adminUrl, name);
} else if (command !== undefined) {
  console.error('usage: node server.js [createdb|dropdb ADMIN_URL NAME]');
  process.exit(2);
} else if (cluster.isPrimary) {
  await runPrimary();
} else {
  await runWorker();
}
