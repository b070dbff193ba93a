// JWT bearer authentication for a Hubwire hub.
//
//   POST /token   {"username": "alice", "password": "alice-password"}  →  {"token": "<JWT>", "expiresIn": 3600}
//   /chat         the hub: every request (negotiate, WebSocket, SSE, long polling) must carry the token, in the
//                 Authorization header or, where browsers cannot set headers (WebSockets, SSE), the `access_token`
//                 query parameter; the user needs the `member` role, and `announce` needs `admin`.
//
// Run: node --conditions=hubwire-source --import tsx examples/jwt/src/server.ts --port 5000

import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { getAccessToken, Hub, HubError, Hubwire } from 'hubwire';
import { jwtVerify, SignJWT } from 'jose';

export const ISSUER = 'hubwire-jwt-example';
export const AUDIENCE = 'hubwire-jwt-example-chat';

/** What the hub sees as `this.context.user`: the verified claims. */
export interface JwtUser {
  id: string;
  name: string;
  roles: string[];
}

/** The demo's user store. A real app checks a database and hashed passwords. */
const USERS: Record<string, { password: string; name: string; roles: string[] }> = {
  alice: { password: 'alice-password', name: 'Alice', roles: ['member'] },
  root: { password: 'root-password', name: 'Root', roles: ['member', 'admin'] },
  guest: { password: 'guest-password', name: 'Guest', roles: ['guest'] },
};

interface ChatClient {
  message(from: string, text: string): void;
  announcement(text: string): void;
}

export class SecureChatHub extends Hub<ChatClient> {
  private get me(): JwtUser {
    return this.context.user as JwtUser;
  }
  whoAmI(): JwtUser & { transport: string } {
    return { ...this.me, transport: this.context.transport };
  }
  send(text: string): Promise<void> {
    if (typeof text !== 'string' || text.length === 0) throw new HubError('Say something.');
    return this.clients.all.message(this.me.name, text);
  }
  /** Admins only (see `methods` below). */
  announce(text: string): Promise<void> {
    return this.clients.all.announcement(text);
  }
}

export interface JwtServerOptions {
  port?: number;
  host?: string;
  /** The HMAC key (HS256). Default: JWT_SECRET from the environment, else 32 random bytes (tokens die with the process). */
  secret?: Uint8Array;
  /** Token lifetime in seconds. Default 3600. */
  tokenLifetime?: number;
}

export interface JwtServer {
  hubwire: Hubwire;
  port: number;
  /** e.g. http://127.0.0.1:5000 */
  url: string;
  /** Issues a token as POST /token does (for tests and tools). */
  issueToken(user: { id: string; name: string; roles: string[] }, lifetimeSeconds?: number): Promise<string>;
  close(): Promise<void>;
}

export async function startJwtServer(options: JwtServerOptions = {}): Promise<JwtServer> {
  const secret =
    options.secret ??
    (process.env.JWT_SECRET ? new TextEncoder().encode(process.env.JWT_SECRET) : new Uint8Array(randomBytes(32)));
  const lifetime = options.tokenLifetime ?? 3600;

  const issueToken = (user: { id: string; name: string; roles: string[] }, lifetimeSeconds = lifetime) =>
    new SignJWT({ name: user.name, roles: user.roles })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(user.id)
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + lifetimeSeconds)
      .sign(secret);

  const hubwire = new Hubwire({
    // Runs for negotiate and for every transport request. No token: anonymous (the hub's policy answers 401);
    // a bad, expired or forged token throws, which answers 401 too.
    authenticate: async (request): Promise<JwtUser | undefined> => {
      const token = getAccessToken(request);
      if (!token) return undefined;
      const { payload } = await jwtVerify(token, secret, {
        issuer: ISSUER,
        audience: AUDIENCE,
        algorithms: ['HS256'],
        requiredClaims: ['sub', 'exp'],
      });
      const roles = Array.isArray(payload.roles) ? payload.roles.filter((r) => typeof r === 'string') : [];
      return { id: payload.sub as string, name: String(payload.name ?? payload.sub), roles };
    },
    onError: (error, where) => console.error(`[jwt example] ${where}:`, error),
  });
  hubwire.mapHub('/chat', SecureChatHub, {
    authorize: { roles: ['member'] },
    methods: { announce: { authorize: { roles: ['admin'] } } },
  });

  const routes = async (request: IncomingMessage, response: ServerResponse) => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    if (path !== '/token') return send(response, 404, { error: 'Not found' });
    if (request.method !== 'POST') return send(response, 405, { error: 'Use POST.' });
    let body: { username?: unknown; password?: unknown };
    try {
      body = JSON.parse(await readBody(request, 16 * 1024));
    } catch {
      return send(response, 400, { error: 'Send JSON: {"username": ..., "password": ...}.' });
    }
    const account = typeof body.username === 'string' ? USERS[body.username] : undefined;
    if (!account || body.password !== account.password) return send(response, 401, { error: 'Wrong credentials.' });
    const token = await issueToken({ id: body.username as string, name: account.name, roles: account.roles });
    send(response, 200, { token, expiresIn: lifetime });
  };

  const host = options.host ?? '127.0.0.1';
  const port = await hubwire.listen(options.port ?? 0, host, (request, response) => {
    routes(request, response).catch(() => send(response, 500, { error: 'Internal error.' }));
  });
  return { hubwire, port, url: `http://${host}:${port}`, issueToken, close: () => hubwire.close() };
}

function send(response: ServerResponse, status: number, body: unknown): void {
  if (response.headersSent) return void response.end();
  const text = JSON.stringify(body);
  response.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  response.end(text);
}

function readBody(request: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new Error('Body too large.'));
        request.destroy();
      } else chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

// Run directly: `... server.ts --port 5000 [--host 127.0.0.1]`.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: { port: { type: 'string', default: '5000' }, host: { type: 'string', default: '127.0.0.1' } },
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`Invalid --port '${values.port}'.`);
    process.exit(2);
  }
  const server = await startJwtServer({ port, host: values.host });
  console.log(`Hubwire JWT example listening on ${server.url} (POST ${server.url}/token, hub at ${server.url}/chat)`);
  const stop = () => {
    server.close().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
