// The JWT bearer example (examples/jwt): its token endpoint, the hub that requires the token (header or
// `access_token` query parameter), over every transport × hub protocol, and the failure paths.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import type * as signalR from '@microsoft/signalr';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { AUDIENCE, ISSUER, type JwtServer, startJwtServer } from '../../examples/jwt/src/server.js';
import { buildClient, collect, MATRIX, startClient } from '../helpers/clients.js';
import { negotiate } from '../helpers/http.js';
import { withTimeout } from '../helpers/wait.js';

const T = { timeout: 20_000 };
const RS = '\x1e';
const secret = new TextEncoder().encode('a test secret of at least thirty-two bytes!');

let server: JwtServer;
before(async () => {
  server = await startJwtServer({ port: 0, secret });
});
after(async () => {
  await server.close();
});

async function requestToken(username: string, password: string): Promise<Response> {
  return fetch(`${server.url}/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username, password }),
    signal: AbortSignal.timeout(5000),
  });
}

async function tokenFor(username: string): Promise<string> {
  const response = await requestToken(username, `${username}-password`);
  assert.equal(response.status, 200);
  return ((await response.json()) as { token: string }).token;
}

/** A token signed with `key` (default: the server's secret) and arbitrary claims. */
function sign(claims: Record<string, unknown>, options: { key?: Uint8Array; expiresAt?: number } = {}) {
  return new SignJWT({ name: 'Mallory', roles: ['member', 'admin'], ...claims })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('mallory')
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setExpirationTime(options.expiresAt ?? Math.floor(Date.now() / 1000) + 600)
    .sign(options.key ?? secret);
}

/** Starts a client that must fail; returns its error and never leaves it running. */
async function startFailure(options: Parameters<typeof buildClient>[1]): Promise<Error> {
  const client = buildClient(`${server.url}/chat`, options);
  try {
    await withTimeout(client.start(), 10_000, 'starting a client');
  } catch (error) {
    return error as Error;
  } finally {
    await client.stop().catch(() => {});
  }
  assert.fail('The client connected but should not have.');
}

describe('POST /token', () => {
  test('issues a JWT for good credentials, 401 for bad ones, 400 for a bad body', T, async () => {
    const response = await requestToken('alice', 'alice-password');
    assert.equal(response.status, 200);
    const body = (await response.json()) as { token: string; expiresIn: number };
    assert.equal(body.expiresIn, 3600);
    const [header, payload] = body.token
      .split('.')
      .slice(0, 2)
      .map((part) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8')));
    assert.equal(header.alg, 'HS256');
    assert.equal(payload.sub, 'alice');
    assert.deepEqual(payload.roles, ['member']);
    assert.equal(payload.iss, ISSUER);
    assert.equal(payload.aud, AUDIENCE);
    assert.ok(payload.exp > Date.now() / 1000);
    assert.equal((await requestToken('alice', 'wrong')).status, 401);
    assert.equal((await requestToken('nobody', 'x')).status, 401);
    const bad = await fetch(`${server.url}/token`, {
      method: 'POST',
      body: 'not json',
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(bad.status, 400);
    assert.equal((await fetch(`${server.url}/token`, { signal: AbortSignal.timeout(5000) })).status, 405);
  });
});

describe('the hub with accessTokenFactory (Authorization header), every transport × protocol', () => {
  const open: signalR.HubConnection[] = [];
  after(async () => {
    await Promise.all(open.map((client) => client.stop().catch(() => {})));
  });

  for (const { transport, protocol } of MATRIX) {
    test(`${transport} + ${protocol}`, T, async () => {
      const alice = await startClient(`${server.url}/chat`, { transport, protocol, token: await tokenFor('alice') });
      open.push(alice);
      const root = await startClient(`${server.url}/chat`, { transport, protocol, token: await tokenFor('root') });
      open.push(root);
      assert.deepEqual(await alice.invoke('whoAmI'), { id: 'alice', name: 'Alice', roles: ['member'], transport });
      const messages = collect<[string, string]>(root, 'message');
      await alice.invoke('send', `hello over ${transport}`);
      assert.deepEqual(await messages.waitFor(1), [['Alice', `hello over ${transport}`]]);
      // Method policy: only admins may announce.
      await assert.rejects(alice.invoke('announce', 'hi'), /because user is unauthorized/);
      const announcements = collect(alice, 'announcement');
      await root.invoke('announce', 'from root');
      assert.deepEqual(await announcements.waitFor(1), ['from root']);
    });
  }
});

describe('failure paths: 401 at negotiate', () => {
  test(
    'raw negotiate: no token, expired, forged, tampered, wrong audience, alg none, wrong role → 401',
    T,
    async () => {
      const now = Math.floor(Date.now() / 1000);
      const valid = await tokenFor('alice');
      const [h, p, s] = valid.split('.') as [string, string, string];
      const tamperedPayload = Buffer.from(
        JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), roles: ['member', 'admin'] }),
      ).toString('base64url');
      const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${p}.`;
      const cases: [string, string | undefined][] = [
        ['no token', undefined],
        ['expired', await sign({}, { expiresAt: now - 60 })],
        [
          'forged (another key)',
          await sign({}, { key: new TextEncoder().encode('not the secret, but long enough!!') }),
        ],
        ['tampered payload', `${h}.${tamperedPayload}.${s}`],
        ['alg none', none],
        [
          'wrong audience',
          await new SignJWT({ roles: ['member'] })
            .setProtectedHeader({ alg: 'HS256' })
            .setSubject('x')
            .setIssuer(ISSUER)
            .setAudience('another-app')
            .setExpirationTime(now + 600)
            .sign(secret),
        ],
        ['garbage', 'not-a-jwt'],
        ['wrong role (guest)', await tokenFor('guest')],
        ['no roles claim', await sign({ roles: undefined })],
      ];
      for (const [name, token] of cases) {
        for (const where of ['header', 'query'] as const) {
          if (token === undefined && where === 'query') continue;
          const response =
            where === 'header'
              ? await negotiate(`${server.url}/chat`, token ? { Authorization: `Bearer ${token}` } : {})
              : await negotiate(`${server.url}/chat?access_token=${encodeURIComponent(token as string)}`);
          assert.equal(response.status, 401, `${name} (${where})`);
          assert.equal(await response.text(), '', `${name} (${where}): empty body`);
        }
      }
      // The control: the same requests with the valid token pass.
      assert.equal((await negotiate(`${server.url}/chat`, { Authorization: `Bearer ${valid}` })).status, 200);
      assert.equal((await negotiate(`${server.url}/chat?access_token=${valid}`)).status, 200);
    },
  );

  for (const { transport, protocol } of MATRIX) {
    test(`${transport} + ${protocol}: the official client cannot start without a valid token`, T, async () => {
      const now = Math.floor(Date.now() / 1000);
      for (const token of [
        undefined,
        await sign({}, { expiresAt: now - 60 }),
        await sign({}, { key: new TextEncoder().encode('not the secret, but long enough!!') }),
        await tokenFor('guest'),
      ]) {
        const error = await startFailure({ transport, protocol, token });
        assert.match(error.message, /Status code '401'/);
      }
    });
  }
});

describe('the access_token query parameter (what browsers send for WebSockets and SSE)', () => {
  test('WebSockets: negotiate and upgrade with ?access_token=, then a hub invocation', T, async () => {
    const token = await tokenFor('alice');
    const response = await negotiate(`${server.url}/chat?access_token=${token}`);
    assert.equal(response.status, 200);
    const { connectionToken } = (await response.json()) as { connectionToken: string };
    const url = `${server.url.replace('http', 'ws')}/chat?id=${connectionToken}&access_token=${token}`;
    const socket = new WebSocket(url);
    try {
      const frames: string[] = [];
      const next = () =>
        withTimeout(
          new Promise<string>((resolve, reject) => {
            if (frames.length > 0) return resolve(frames.shift() as string);
            socket.once('message', () => resolve(frames.shift() as string));
            socket.once('error', reject);
          }),
          5000,
          'a WebSocket frame',
        );
      socket.on('message', (data) => frames.push(String(data)));
      await withTimeout(
        new Promise((resolve, reject) => {
          socket.once('open', resolve);
          socket.once('error', reject);
        }),
        5000,
        'the upgrade',
      );
      socket.send(`{"protocol":"json","version":1}${RS}`);
      assert.equal(await next(), `{}${RS}`);
      socket.send(`{"type":1,"invocationId":"1","target":"whoAmI","arguments":[]}${RS}`);
      let completion = await next();
      while (completion.startsWith('{"type":6}')) completion = await next(); // pings
      assert.deepEqual(JSON.parse(completion.slice(0, -1)), {
        type: 3,
        invocationId: '1',
        result: { id: 'alice', name: 'Alice', roles: ['member'], transport: 'WebSockets' },
      });
    } finally {
      socket.close();
    }
  });

  test('long polling: every request authenticated by ?access_token=, a hub invocation end to end', T, async () => {
    const token = await tokenFor('alice');
    const { connectionToken } = (await (await negotiate(`${server.url}/chat?access_token=${token}`)).json()) as {
      connectionToken: string;
    };
    const url = `${server.url}/chat?id=${connectionToken}&access_token=${token}`;
    const request = (method: string, body?: string) => fetch(url, { method, body, signal: AbortSignal.timeout(5000) });
    const first = await request('GET');
    assert.equal(first.status, 200);
    await first.arrayBuffer();
    assert.equal((await request('POST', `{"protocol":"json","version":1}${RS}`)).status, 200);
    assert.equal(await (await request('GET')).text(), `{}${RS}`);
    assert.equal(
      (await request('POST', `{"type":1,"invocationId":"7","target":"whoAmI","arguments":[]}${RS}`)).status,
      200,
    );
    const answer = await (await request('GET')).text();
    assert.deepEqual(JSON.parse(answer.slice(0, -1)), {
      type: 3,
      invocationId: '7',
      result: { id: 'alice', name: 'Alice', roles: ['member'], transport: 'LongPolling' },
    });
    // Without the token, or with another user's, the connection's requests are refused.
    const anonymous = await fetch(`${server.url}/chat?id=${connectionToken}`, { signal: AbortSignal.timeout(5000) });
    assert.equal(anonymous.status, 401);
    const rootToken = await tokenFor('root');
    const other = await fetch(`${server.url}/chat?id=${connectionToken}&access_token=${rootToken}`, {
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(other.status, 403);
    assert.equal((await request('DELETE')).status, 202);
  });

  test('Server-Sent Events: the event stream opens with ?access_token=, not without', T, async () => {
    const token = await tokenFor('alice');
    const { connectionToken } = (await (await negotiate(`${server.url}/chat?access_token=${token}`)).json()) as {
      connectionToken: string;
    };
    const anonymous = await fetch(`${server.url}/chat?id=${connectionToken}`, {
      headers: { Accept: 'text/event-stream' },
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(anonymous.status, 401);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 5000);
    try {
      const stream = await fetch(`${server.url}/chat?id=${connectionToken}&access_token=${token}`, {
        headers: { Accept: 'text/event-stream' },
        signal: controller.signal,
      });
      assert.equal(stream.status, 200);
      assert.match(stream.headers.get('content-type') ?? '', /text\/event-stream/);
      const send = await fetch(`${server.url}/chat?id=${connectionToken}&access_token=${token}`, {
        method: 'POST',
        body: `{"protocol":"json","version":1}${RS}`,
        signal: AbortSignal.timeout(5000),
      });
      assert.equal(send.status, 200);
      const reader = (stream.body as ReadableStream<Uint8Array>).getReader();
      let text = '';
      while (!text.includes(`data: {}${RS}`)) {
        const { value, done } = await reader.read();
        if (done) break;
        text += Buffer.from(value).toString('utf8');
      }
      assert.ok(text.includes(`data: {}${RS}`), text);
    } finally {
      clearTimeout(timer);
      controller.abort();
    }
  });
});

describe('runs as a program (--port)', () => {
  test('starts, serves a token and the hub, stops on SIGTERM', T, async () => {
    const root = new URL('../..', import.meta.url).pathname;
    const child = spawn(
      process.execPath,
      ['--conditions=hubwire-source', '--import', 'tsx', 'examples/jwt/src/server.ts', '--port', '0'],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const line = await withTimeout(
        new Promise<string>((resolve) => {
          createInterface({ input: child.stdout }).on('line', (l) => {
            if (l.includes('listening on')) resolve(l);
          });
        }),
        15_000,
        'the example to start',
      );
      const base = (/listening on (http:\/\/[^\s]+)/.exec(line) as RegExpExecArray)[1] as string;
      const response = await fetch(`${base}/token`, {
        method: 'POST',
        body: JSON.stringify({ username: 'root', password: 'root-password' }),
        signal: AbortSignal.timeout(5000),
      });
      const { token } = (await response.json()) as { token: string };
      const client = await startClient(`${base}/chat`, { transport: 'WebSockets', protocol: 'messagepack', token });
      try {
        assert.equal(((await client.invoke('whoAmI')) as { id: string }).id, 'root');
      } finally {
        await client.stop();
      }
    } finally {
      child.kill('SIGTERM');
      const code = await withTimeout(exited, 5000, 'the example to exit').catch(() => {
        child.kill('SIGKILL');
        return null;
      });
      assert.equal(code, 0);
    }
  });
});
