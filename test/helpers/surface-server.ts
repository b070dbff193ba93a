// The server the server-surface specifications run against (test/e2e/server-surface/): users from access tokens
// (with roles), a fine timer so that options of a few hundred ms are observable, and whatever endpoints a test file
// maps; plus the official-client helpers those files share.

import assert from 'node:assert/strict';
import { after } from 'node:test';
import type * as signalR from '@microsoft/signalr';
import { getAccessToken, Hubwire } from 'hubwire';
import { buildClient, type ClientOptions, startClient } from './clients.js';
import { withTimeout } from './wait.js';

/** Every test is bounded: a hang fails the test instead of the run. */
export const T = { timeout: 20_000 };

/**
 * The test user is what the access token says: `alice` → {id}, `alice:admin,ops` → {id, roles: [...]},
 * `alice:=admin` → {id, role: 'admin'}, `alice:=ops,admin` → {id, role: ['ops', 'admin']} (a JWT `role` claim with
 * several roles, as ASP.NET Core issues it); the token `invalid` makes authentication throw.
 */
export function authenticate(request: Parameters<typeof getAccessToken>[0]): unknown {
  const token = getAccessToken(request);
  if (!token) return undefined;
  if (token === 'invalid') throw new Error('invalid token');
  const [id, roles] = token.split(':') as [string, string | undefined];
  if (roles === undefined) return { id };
  if (roles.startsWith('=')) {
    const role = roles.slice(1);
    return { id, role: role.includes(',') ? role.split(',') : role };
  }
  return { id, roles: roles.split(',') };
}

export interface SurfaceServer {
  hubwire: Hubwire;
  port: number;
  /** `http://127.0.0.1:<port>`: endpoints are at `${base}${path}`. */
  base: string;
  /** What reached the server's onError. */
  errors: { error: unknown; where: string }[];
}

/**
 * Starts a server with the surface options on a free port; `map` maps its endpoints (`base()` is the server's base
 * URL, known once it listens, for options that build URLs at request time).
 */
export async function startSurfaceServer(map: (hubwire: Hubwire, base: () => string) => void): Promise<SurfaceServer> {
  const errors: SurfaceServer['errors'] = [];
  const hubwire = new Hubwire({
    authenticate,
    // A fine timer so that keep-alive and timeout options of a few hundred ms are observable.
    timerInterval: 50,
    onError: (error, where) => errors.push({ error, where }),
  });
  let base = '';
  map(hubwire, () => base);
  const port = await hubwire.listen(0);
  base = `http://127.0.0.1:${port}`;
  return { hubwire, port, base, errors };
}

/**
 * Official clients opened by a describe block, stopped at its end: `connect(path, options)` connects to
 * `${base()}${path}` within 10 s.
 */
export function clientPool(base: () => string) {
  const open: signalR.HubConnection[] = [];
  after(async () => {
    await Promise.all(open.map((client) => withTimeout(client.stop(), 5000, 'stopping a client').catch(() => {})));
  });
  return async (path: string, options: ClientOptions = {}) => {
    const client = await withTimeout(startClient(`${base()}${path}`, options), 10_000, `connecting to ${path}`);
    open.push(client);
    return client;
  };
}

/** Starts a client that is expected to fail, and returns the error (never leaves a client running). */
export async function startFailure(url: string, options: ClientOptions = {}): Promise<Error> {
  const client = buildClient(url, options);
  try {
    await withTimeout(client.start(), 10_000, `starting a client on ${url}`);
  } catch (error) {
    return error as Error;
  } finally {
    await withTimeout(client.stop(), 5000, 'stopping a client').catch(() => {});
  }
  assert.fail(`The client connected to ${url} but should not have.`);
}

/**
 * Connects and resolves with the error the connection ends with: either start() fails (the Close arrived during
 * the handshake) or the connection closes right after it.
 */
export async function closeErrorOf(url: string, options: ClientOptions): Promise<Error | undefined> {
  const client = buildClient(url, options);
  const closed = new Promise<Error | undefined>((resolve) => client.onclose(resolve));
  try {
    await withTimeout(client.start(), 10_000, `starting a client on ${url}`);
  } catch (error) {
    return error as Error;
  }
  try {
    return await withTimeout(closed, 3000, `the server closing the connection on ${url}`);
  } finally {
    await withTimeout(client.stop(), 5000, 'stopping a client').catch(() => {});
  }
}
