// End-to-end fuzzing of the ASP.NET Core SignalR side of a real server (issue 12): arbitrary negotiate requests,
// request targets, methods and transport requests; garbage handshakes and garbage hub messages over WebSockets
// (text and binary frames), Server-Sent Events and long polling (POST bodies). Properties:
// - every HTTP request gets a documented status (no 5xx), within a bound;
// - a connection that sent garbage is closed cleanly (a handshake error or a Close message with an error, then a
//   normal close), or it is still usable: its echo is answered; it never hangs;
// - what the server writes stays readable by the official client's protocol parsers;
// - after each run the official client still connects and its echo works, and nothing reached the process-level
//   crash handlers (the server runs in this process).

import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { type HubMessage as ClientHubMessage, JsonHubProtocol, NullLogger } from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { parseHandshake } from '../../packages/hubwire/src/protocol/handshake.ts';
import { jsonHubProtocol } from '../../packages/hubwire/src/protocol/json-protocol.ts';
import type { HubMessage } from '../../packages/hubwire/src/protocol/messages.ts';
import { messagePackHubProtocol } from '../../packages/hubwire/src/protocol/msgpack-protocol.ts';
import {
  asTarget,
  BOUND,
  CrashTrap,
  delay,
  FrameSocket,
  type FuzzServer,
  officialEcho,
  officialEchoEverywhere,
  rawRequest,
  request,
  startFuzzServer,
  TIMINGS,
  within,
} from './harness.ts';
import {
  anyString,
  assertClearText,
  depth,
  jsonValue,
  messageShaped,
  nestedArrays,
  RS,
  runs,
  validMessage,
} from './support.ts';

const TEST = { timeout: 60_000 };
const officialJson = new JsonHubProtocol();
const officialMsgpack = new MessagePackHubProtocol();
const packr = new Packr({ useRecords: false, variableMapSize: true });
type Protocol = 'json' | 'messagepack';

/** Statuses the transport spec and the package README document for a request to a hub. */
const DOCUMENTED = new Set([200, 202, 204, 400, 401, 403, 404, 405, 409, 413]);

let server: FuzzServer;
const trap = new CrashTrap();

before(async () => {
  trap.install();
  server = await startFuzzServer();
});
after(async () => {
  await server.close();
  trap.uninstall();
});

/** After each run: nothing reached the crash handlers, and the official client still connects and echoes. */
async function afterRun(): Promise<void> {
  trap.assertNone();
  await officialEcho(server.hubUrl);
}

/** After a property: nothing crashed, nothing was reported as an internal error, the official client works. */
async function assertHealthy(everywhere = false): Promise<void> {
  trap.assertNone();
  if (everywhere) await officialEchoEverywhere(server.hubUrl);
  else await officialEcho(server.hubUrl);
  assert.deepEqual(server.reported, [], 'the server reported no internal error');
}

// --- Arbitraries --------------------------------------------------------------------------------------------

/** Query strings of any shape: separators, broken escapes, repeated and empty keys, Unicode. */
const queryText = fc.oneof(
  anyString(40),
  fc
    .array(
      fc.tuple(
        fc.oneof(
          fc.constantFrom('id', 'negotiateVersion', 'useStatefulReconnect', 'access_token', '_', 'transport', ''),
          fc.string({ maxLength: 6 }),
        ),
        fc.oneof(
          fc.constantFrom('1', '0', '-1', 'true', '%', '%zz', '%00', '99999999999999999999', '1.5', ' 1'),
          anyString(12),
        ),
      ),
      { maxLength: 5 },
    )
    .map((pairs) => pairs.map(([k, v]) => `${k}=${v}`).join('&')),
);

const method = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('POST', 'GET', 'DELETE') },
  { weight: 1, arbitrary: fc.constantFrom('PUT', 'PATCH', 'OPTIONS', 'HEAD', 'TRACE', 'PROPFIND') },
);

/** Header values a client can send (no CR/LF, which the HTTP client refuses anyway). */
const headerValue = fc
  .string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 40 })
  .map((s) => s.trim());

const body = fc.oneof(
  fc.constant(undefined),
  fc.uint8Array({ maxLength: 256 }).map((b) => Buffer.from(b)),
  anyString(64),
);

/** Well-formed calls of the hub's methods (and names that must not be callable) with arguments of any shape. */
const hubCall: fc.Arbitrary<HubMessage> = fc.oneof(
  fc
    .record({
      type: fc.constantFrom(1 as const, 4 as const),
      invocationId: fc.string({ minLength: 1, maxLength: 8 }),
      target: fc.constantFrom(
        'echo',
        'add',
        'getConnectionId',
        'fail',
        'crash',
        'joinGroup',
        'leaveGroup',
        'toGroup',
        'toCaller',
        'countTo',
        'ECHO',
        'onConnected',
        'onDisconnected',
        'constructor',
        '__proto__',
        'toString',
        'nope',
      ),
      arguments: fc.array(jsonValue(2), { maxLength: 3 }),
      streamIds: fc.option(fc.array(fc.string({ minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 2 }), {
        nil: undefined,
      }),
      blocking: fc.boolean(),
    })
    .map(
      ({ type, invocationId, blocking, ...rest }): HubMessage =>
        type === 4 ? { type, invocationId, ...rest } : { type, ...(blocking ? { invocationId } : {}), ...rest },
    ),
  fc.record({
    type: fc.constant(2 as const),
    invocationId: fc.string({ minLength: 1, maxLength: 4 }),
    item: jsonValue(1),
  }),
  fc.record({ type: fc.constant(3 as const), invocationId: fc.string({ minLength: 1, maxLength: 4 }) }),
  fc.record({ type: fc.constant(5 as const), invocationId: fc.string({ minLength: 1, maxLength: 4 }) }),
  fc.record({ type: fc.constantFrom(8 as const, 9 as const), sequenceId: fc.nat({ max: 20 }) }),
);

/** One fuzz frame for an established hub connection of `protocol`. */
function fuzzFrame(protocol: Protocol): fc.Arbitrary<{ bytes: Buffer; binary: boolean }> {
  const encode = protocol === 'json' ? jsonHubProtocol : messagePackHubProtocol;
  const json = fc.oneof(
    messageShaped.map((m) => Buffer.from(JSON.stringify(m) + RS)),
    fc.jsonValue({ maxDepth: 3 }).map((v) => Buffer.from(JSON.stringify(v) + RS)),
    anyString(40).map((s) => Buffer.from(s)),
    fc.uint8Array({ maxLength: 128 }).map((b) => Buffer.from(b)),
    depth.map((n) => Buffer.from(`{"type":1,"target":"echo","arguments":[${nestedArrays(n)}]}${RS}`)),
    fc.constantFrom(RS, `${RS}${RS}`, '{"type":1', '{"type":7}\x1e', '{"type":9,"sequenceId":1}\x1e').map(Buffer.from),
  );
  const varint = (n: number) => {
    const out: number[] = [];
    do {
      out.push((n & 0x7f) | (n >= 0x80 ? 0x80 : 0));
      n = Math.floor(n / 128);
    } while (n > 0);
    return Buffer.from(out);
  };
  const framed = (b: Uint8Array) => Buffer.concat([varint(b.length), b]);
  const msgpack = fc.oneof(
    fc.uint8Array({ maxLength: 128 }).map((b) => Buffer.from(b)),
    fc.uint8Array({ maxLength: 64 }).map(framed),
    messageShaped.map((m) =>
      framed(
        packr.pack(
          [m.type, m.headers, m.invocationId, m.target, m.arguments, m.streamIds].filter((v) => v !== undefined),
        ),
      ),
    ),
    fc
      .tuple(fc.integer({ min: -128, max: 127 }), fc.uint8Array({ maxLength: 8 }))
      .map(([type, data]) =>
        framed(
          Buffer.concat([
            Buffer.from([0x95, 0x01, 0x80, 0xc0, 0xa4, 0x65, 0x63, 0x68, 0x6f, 0x91, 0xc7, data.length, type & 0xff]),
            data,
          ]),
        ),
      ),
    depth.map((n) =>
      framed(
        Buffer.concat([
          Buffer.from([0x95, 0x01, 0x80, 0xc0, 0xa4, 0x65, 0x63, 0x68, 0x6f, 0x91]),
          Buffer.alloc(n, 0x91),
          Buffer.from([1]),
        ]),
      ),
    ),
  );
  return fc.record({
    bytes: fc.oneof(
      { weight: 3, arbitrary: protocol === 'json' ? json : msgpack },
      { weight: 2, arbitrary: validMessage.map((m) => encode.encode(m)) },
      { weight: 3, arbitrary: hubCall.map((m) => encode.encode(m)) },
    ),
    binary: fc.oneof(
      { weight: 4, arbitrary: fc.constant(protocol === 'messagepack') },
      { weight: 1, arbitrary: fc.boolean() },
    ),
  });
}

/** Bytes sent as the handshake: garbage, handshake-shaped JSON, a valid handshake with garbage after it. */
const handshakeBytes = fc.oneof(
  fc.uint8Array({ maxLength: 128 }).map((b) => Buffer.from(b)),
  anyString(40).map((s) => Buffer.from(s + RS)),
  fc.jsonValue({ maxDepth: 2 }).map((v) => Buffer.from(JSON.stringify(v) + RS)),
  fc
    .record(
      {
        protocol: fc.oneof(fc.constantFrom('json', 'messagepack', 'JSON', 'blazorpack', ''), jsonValue(1)),
        version: fc.oneof(fc.integer({ min: -1, max: 3 }), jsonValue(1), fc.constantFrom(1.5, 1e308)),
      },
      { requiredKeys: [] },
    )
    .map((h) => Buffer.from(JSON.stringify(h) + RS)),
  fc
    .tuple(fc.constantFrom('json', 'messagepack'), fc.uint8Array({ maxLength: 64 }))
    .map(([protocol, rest]) => Buffer.concat([Buffer.from(`{"protocol":"${protocol}","version":1}${RS}`), rest])),
  fc.constant(Buffer.from(`{"protocol":"json","version":1}`)),
  fc.integer({ min: 32 * 1024 - 16, max: 40 * 1024 }).map((n) => Buffer.alloc(n, 0x20)),
);

// --- A hub connection over any transport --------------------------------------------------------------------

interface Session {
  /** Sends one frame (WebSocket) or POST body (SSE, long polling). */
  send(bytes: Buffer, binary: boolean): Promise<void>;
  /** Everything the server sent, in order (WebSocket frames, SSE events, poll bodies). */
  readonly received: Buffer[];
  readonly closed: boolean;
  /** Resolves true once `condition` holds (checked whenever something arrives), false after `ms`. */
  until(condition: () => boolean, ms: number): Promise<boolean>;
  /** How the transport closed, when it did (WebSocket close code; 0 for HTTP transports). */
  closeCode(): number | undefined;
  dispose(): void;
}

async function negotiateToken(stateful: boolean): Promise<string> {
  const res = await request(
    server.base,
    'POST',
    `/hub/negotiate?negotiateVersion=1${stateful ? '&useStatefulReconnect=true' : ''}`,
  );
  assert.equal(res.status, 200);
  return (JSON.parse(res.body.toString()) as { connectionToken: string }).connectionToken;
}

async function webSocketSession(stateful: boolean, skipNegotiation: boolean): Promise<Session> {
  const url = skipNegotiation ? server.hubUrl : `${server.hubUrl}?id=${await negotiateToken(stateful)}`;
  const socket = await FrameSocket.open(url);
  assert.ok(socket instanceof FrameSocket, `the upgrade was refused: ${JSON.stringify(socket)}`);
  return {
    send: async (bytes, binary) => socket.send(bytes, binary),
    get received() {
      return socket.frames.map((f) => f.data);
    },
    get closed() {
      return socket.closeCode !== undefined;
    },
    until: (condition, ms) => socket.until(condition, ms),
    closeCode: () => socket.closeCode,
    dispose: () => socket.terminate(),
  };
}

/** Wakes `until` waiters of the HTTP transports. */
class Waiters {
  private readonly set = new Set<() => void>();
  notify(): void {
    for (const w of [...this.set]) w();
  }
  until(condition: () => boolean, ms: number): Promise<boolean> {
    if (condition()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = () => {
        if (!condition()) return;
        this.set.delete(check);
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.set.delete(check);
        resolve(false);
      }, ms);
      this.set.add(check);
    });
  }
}

/** POSTs one body to a connection: 200, or 404 once the connection is gone. */
async function post(token: string, bytes: Buffer): Promise<void> {
  const res = await request(server.base, 'POST', `/hub?id=${encodeURIComponent(token)}`, { body: bytes });
  assert.ok([200, 404].includes(res.status), `POST answered ${res.status}: ${res.body.toString()}`);
}

async function longPollingSession(stateful: boolean): Promise<Session> {
  const token = await negotiateToken(stateful);
  const first = await request(server.base, 'GET', `/hub?id=${token}&_=0`);
  assert.equal(first.status, 200);
  const received: Buffer[] = [];
  const waiters = new Waiters();
  let closed = false;
  let stopped = false;
  void (async () => {
    for (let i = 1; !stopped && !closed; i++) {
      const poll = await request(server.base, 'GET', `/hub?id=${token}&_=${i}`).catch(() => undefined);
      if (!poll) continue;
      assert.ok([200, 204, 404].includes(poll.status), `a poll answered ${poll.status}`);
      if (poll.status === 200 && poll.body.length > 0) received.push(poll.body);
      if (poll.status !== 200) closed = true;
      waiters.notify();
    }
  })();
  return {
    send: (bytes) => post(token, bytes),
    received,
    get closed() {
      return closed;
    },
    until: (condition, ms) => waiters.until(condition, ms),
    closeCode: () => (closed ? 0 : undefined),
    dispose: () => {
      stopped = true;
      if (!closed) void request(server.base, 'DELETE', `/hub?id=${token}`).catch(() => {});
    },
  };
}

async function sseSession(): Promise<Session> {
  const token = await negotiateToken(false);
  const received: Buffer[] = [];
  const waiters = new Waiters();
  let closed = false;
  const req = http.request(`${server.hubUrl}?id=${token}`, {
    method: 'GET',
    headers: { Accept: 'text/event-stream' },
    agent: false,
  });
  await within(
    new Promise<void>((resolve, reject) => {
      req.on('response', (res) => {
        assert.equal(res.statusCode, 200);
        let buffer = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          for (let end = buffer.indexOf('\r\n\r\n'); end !== -1; end = buffer.indexOf('\r\n\r\n')) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 4);
            const data = block
              .split('\r\n')
              .filter((line) => line.startsWith('data: '))
              .map((line) => line.slice(6));
            if (data.length > 0) received.push(Buffer.from(data.join('\n')));
          }
          waiters.notify();
        });
        res.on('close', () => {
          closed = true;
          waiters.notify();
        });
        resolve();
      });
      req.on('error', reject);
      req.end();
    }),
    'the SSE stream',
  );
  return {
    send: (bytes) => post(token, bytes),
    received,
    get closed() {
      return closed;
    },
    until: (condition, ms) => waiters.until(condition, ms),
    closeCode: () => (closed ? 0 : undefined),
    dispose: () => req.destroy(),
  };
}

// --- What the server said -----------------------------------------------------------------------------------

interface View {
  /** The handshake reply, when it arrived. */
  handshake?: { error?: unknown };
  messages: ClientHubMessage[];
}

const PROBE_ID = 'fuzz-probe-0000000000000001';

/** Reads what a session received as the official client would: the handshake reply, then hub messages. */
function read(received: readonly Buffer[], protocol: Protocol): View {
  const all = Buffer.concat(received);
  const end = all.indexOf(0x1e);
  if (end === -1) {
    assert.equal(all.length, 0, `the server's first bytes are not a handshake reply: ${all.toString().slice(0, 200)}`);
    return { messages: [] };
  }
  const handshake = JSON.parse(all.toString('utf8', 0, end)) as { error?: unknown };
  assert.ok(typeof handshake === 'object' && handshake !== null, 'the handshake reply is an object');
  const rest = all.subarray(end + 1);
  if (rest.length === 0) return { handshake, messages: [] };
  try {
    const messages =
      protocol === 'json'
        ? officialJson.parseMessages(rest.toString('utf8'), NullLogger.instance)
        : officialMsgpack.parseMessages(new Uint8Array(rest).buffer, NullLogger.instance);
    return { handshake, messages };
  } catch (error) {
    // Whatever the server sends must be readable by the official client.
    assert.fail(`the official client cannot read what the server sent (${protocol}): ${String(error)}`);
  }
}

function probeAnswered(view: View): boolean {
  return view.messages.some((m) => m.type === 3 && (m as { invocationId?: string }).invocationId?.startsWith(PROBE_ID));
}

function probeBytes(protocol: Protocol, index: number, value: unknown): Buffer {
  const message = { type: 1 as const, invocationId: `${PROBE_ID}-${index}`, target: 'echo', arguments: [value] };
  return protocol === 'json' ? jsonHubProtocol.encode(message) : messagePackHubProtocol.encode(message);
}

/** Makes any pending partial message complete and invalid, so a server waiting for more bytes must close. */
function poison(protocol: Protocol, handshakeDone: boolean): Buffer {
  if (!handshakeDone) return Buffer.from(RS);
  return protocol === 'json' ? Buffer.from(`${RS}${RS}`) : Buffer.alloc(40 * 1024, 0);
}

/**
 * Sends `handshake` and `frames`, then an echo probe; the connection must answer the probe or close cleanly.
 * A connection that waits for more bytes (an unterminated handshake or message) is sent a poison record, after
 * which it must close. Returns how it ended.
 */
async function exercise(
  session: Session,
  handshake: Buffer,
  frames: readonly { bytes: Buffer; binary: boolean }[],
  options: { stateful: boolean; letHandshakeTimeOut?: boolean },
): Promise<'answered' | 'closed'> {
  // The protocol the server will speak, if the handshake is accepted (judged with the server's own parser).
  let parsed: ReturnType<typeof parseHandshake>;
  try {
    parsed = parseHandshake(handshake, 32 * 1024);
  } catch {
    parsed = undefined;
  }
  const protocol: Protocol = parsed?.request.protocol === 'messagepack' ? 'messagepack' : 'json';
  const binary = protocol === 'messagepack';
  await session.send(handshake, false);
  if (options.letHandshakeTimeOut && parsed === undefined) {
    // Nothing more: an unfinished handshake must be ended by handshakeTimeout (a refused one at once).
    const bound = TIMINGS.handshakeTimeout + 1000;
    assert.ok(await session.until(() => session.closed, bound), `an unfinished handshake still open after ${bound} ms`);
  }
  for (const frame of frames) await session.send(frame.bytes, frame.binary);
  const value = { probe: true, text: 'é✓', n: [1, 2] };
  // With stateful reconnect a Sequence message makes the next messages count as replays (dropped): send enough.
  const total = frames.reduce((n, f) => n + f.bytes.length, 0);
  const probes = options.stateful ? Math.min(1 + Math.ceil(total / 4), 200) : 1;
  for (let i = 0; i < probes; i++) await session.send(probeBytes(protocol, i, value), binary);

  const settled = () => session.closed || probeAnswered(read(session.received, protocol));
  if (!(await session.until(settled, 400))) {
    const handshakeDone = read(session.received, protocol).handshake !== undefined;
    await session.send(poison(protocol, handshakeDone), binary);
    assert.ok(
      await session.until(settled, 3000),
      'after the poison record, the connection neither answered nor closed',
    );
  }
  const view = read(session.received, protocol);
  if (view.handshake?.error !== undefined) {
    assertClearText(view.handshake.error);
    // A refused handshake ends the connection.
    assert.ok(await session.until(() => session.closed, BOUND), 'a refused handshake closes the connection');
  }
  for (const message of view.messages) {
    if (message.type === 7) {
      const error = (message as { error?: unknown }).error;
      if (error !== undefined) {
        assert.equal(typeof error, 'string');
        assert.ok((error as string).length > 0, 'a Close message says why');
        if (protocol === 'json') assertClearText(error);
      }
    }
  }
  if (probeAnswered(view)) {
    const completion = view.messages.find(
      (m) => m.type === 3 && (m as { invocationId?: string }).invocationId?.startsWith(PROBE_ID),
    ) as { error?: string; result?: unknown };
    assert.equal(completion.error, undefined, `the echo failed: ${completion.error}`);
    assert.deepEqual(completion.result, value);
    return 'answered';
  }
  assert.ok(session.closed);
  const code = session.closeCode();
  // 1007: the ws library fails a connection whose text frame is not UTF-8, as RFC 6455 §8.1 requires.
  const invalidText = frames.some((f) => !f.binary && !isUtf8(f.bytes)) || !isUtf8(handshake);
  if (code !== 0 && !(code === 1007 && invalidText)) assert.equal(code, 1000, 'a clean close');
  return 'closed';
}

// --- Properties ---------------------------------------------------------------------------------------------

describe('fuzz end-to-end: HTTP requests to a hub', () => {
  test(
    'negotiate with any query, method, Authorization header and body: 200 (a connection or {error}) or 405',
    TEST,
    async () => {
      await fc.assert(
        fc
          .asyncProperty(
            method,
            queryText,
            fc.option(headerValue, { nil: undefined }),
            body,
            async (m, query, auth, b) => {
              const headers: Record<string, string> = auth === undefined ? {} : { Authorization: auth };
              const res = await request(server.base, m, `/hub/negotiate?${asTarget(query)}`, { headers, body: b });
              assert.ok(DOCUMENTED.has(res.status), `negotiate answered ${res.status}: ${res.body.toString()}`);
              if (m !== 'POST') {
                assert.equal(res.status, 405);
                return;
              }
              assert.equal(res.status, 200, res.body.toString());
              const reply = JSON.parse(res.body.toString()) as Record<string, unknown>;
              if ('error' in reply) assertClearText(reply.error);
              else {
                assert.equal(typeof reply.connectionId, 'string');
                assert.ok(reply.negotiateVersion === 0 || reply.negotiateVersion === 1);
              }
            },
          )
          .afterEach(afterRun),
        runs(100),
      );
      await assertHealthy();
    },
  );

  test('any method, path suffix, query and Accept on the hub: a documented status, never a 5xx', TEST, async () => {
    const path = fc.oneof(
      fc.constantFrom('/hub', '/hub/', '/HUB', '/hub/negotiate', '/hub/negotiate/', '/hub//negotiate', '/hub/x', '/'),
      anyString(16).map((s) => `/hub/${s}`),
    );
    const accept = fc.option(fc.constantFrom('text/event-stream', '*/*', 'application/json', 'text/event-stream;q=0'), {
      nil: undefined,
    });
    await fc.assert(
      fc
        .asyncProperty(method, path, queryText, accept, body, async (m, p, query, a, b) => {
          const headers: Record<string, string> = a === undefined ? {} : { Accept: a };
          const res = await request(server.base, m, `${asTarget(p)}?${asTarget(query)}`, { headers, body: b });
          assert.ok(res.status < 500, `${m} ${p}?${query} answered ${res.status}: ${res.body.toString()}`);
          assert.ok(DOCUMENTED.has(res.status), `${m} ${p}?${query} answered ${res.status}`);
        })
        .afterEach(afterRun),
      runs(100),
    );
    await assertHealthy();
  });

  test('transport requests on a live connection with any method, extra query and body', TEST, async () => {
    await fc.assert(
      fc
        .asyncProperty(
          fc.array(fc.tuple(method, queryText, fc.boolean(), body), { minLength: 1, maxLength: 4 }),
          async (steps) => {
            const token = await negotiateToken(false);
            for (const [m, query, sse, b] of steps) {
              const headers: Record<string, string> = sse ? { Accept: 'text/event-stream' } : {};
              const res = await request(server.base, m, `/hub?id=${token}&${asTarget(query)}`, { headers, body: b });
              assert.ok(DOCUMENTED.has(res.status), `${m} answered ${res.status}: ${res.body.toString()}`);
            }
            await request(server.base, 'DELETE', `/hub?id=${token}`);
          },
        )
        .afterEach(afterRun),
      runs(60),
    );
    await assertHealthy();
  });

  test(
    'any request-target and raw request line: a status below 500 (or a closed socket), and the server lives',
    TEST,
    async () => {
      const target = fc.oneof(
        fc.uint8Array({ minLength: 1, maxLength: 40 }).map((b) => Buffer.from(b).toString('latin1')),
        fc.constantFrom(
          '//[/hub?id=x',
          'http://[/hub',
          '/hub?id=%',
          '*',
          'http://x/hub/negotiate',
          '/hub#x',
          '/hub/..%2f',
        ),
        anyString(30).map((s) => `/hub?${s}`),
      );
      await fc.assert(
        fc
          .asyncProperty(fc.constantFrom('GET', 'POST', 'OPTIONS'), target, fc.boolean(), async (m, t, upgrade) => {
            const headers = upgrade
              ? 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'
              : 'Content-Length: 0\r\n';
            const status = await rawRequest(
              server.port,
              Buffer.from(`${m} ${t} HTTP/1.1\r\nHost: x\r\n${headers}Connection: close\r\n\r\n`, 'latin1'),
            );
            assert.ok(status < 500, `${m} ${JSON.stringify(t)} answered ${status}`);
            trap.assertNone();
          })
          .afterEach(afterRun),
        runs(100),
      );
      await assertHealthy();
    },
  );
});

describe('fuzz end-to-end: hub connections fed garbage', () => {
  test('WebSockets: garbage handshakes are refused and closed (or time out), never left open', TEST, async () => {
    await fc.assert(
      fc.asyncProperty(
        handshakeBytes,
        fc.boolean(),
        fc.oneof({ weight: 9, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
        async (handshake, skipNegotiation, letItTimeOut) => {
          const session = await webSocketSession(false, skipNegotiation);
          try {
            await exercise(session, handshake, [], { stateful: false, letHandshakeTimeOut: letItTimeOut });
          } finally {
            session.dispose();
          }
          await afterRun();
        },
      ),
      runs(100),
    );
    await assertHealthy();
  });

  for (const protocol of ['json', 'messagepack'] as const) {
    for (const stateful of [false, true]) {
      const name = `WebSockets (${protocol}${stateful ? ', stateful reconnect' : ''}): text and binary garbage after a good handshake`;
      test(name, TEST, async () => {
        await fc.assert(
          fc.asyncProperty(fc.array(fuzzFrame(protocol), { minLength: 1, maxLength: 5 }), async (frames) => {
            const session = await webSocketSession(stateful, false);
            try {
              const handshake = Buffer.from(`${JSON.stringify({ protocol, version: stateful ? 2 : 1 })}${RS}`);
              await exercise(session, handshake, frames, { stateful });
            } finally {
              session.dispose();
            }
            await afterRun();
          }),
          runs(stateful ? 50 : 80),
        );
        await assertHealthy();
      });
    }
  }

  test('long polling: garbage POST bodies (handshake and messages, JSON and MessagePack)', TEST, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc
          .constantFrom<Protocol>('json', 'messagepack')
          .chain((protocol) =>
            fc.tuple(fc.constant(protocol), fc.array(fuzzFrame(protocol), { minLength: 1, maxLength: 4 })),
          ),
        fc.boolean(),
        handshakeBytes,
        async ([protocol, frames], garbageHandshake, badHandshake) => {
          const handshake = garbageHandshake
            ? badHandshake
            : Buffer.from(`${JSON.stringify({ protocol, version: 1 })}${RS}`);
          const session = await longPollingSession(false);
          try {
            await exercise(session, handshake, garbageHandshake ? [] : frames, { stateful: false });
          } finally {
            session.dispose();
          }
          await afterRun();
        },
      ),
      runs(80),
    );
    await assertHealthy();
  });

  test('Server-Sent Events: garbage POST bodies (handshake and JSON messages)', TEST, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.boolean(),
        handshakeBytes,
        fc.array(fuzzFrame('json'), { minLength: 1, maxLength: 4 }),
        async (garbageHandshake, badHandshake, frames) => {
          const handshake = garbageHandshake ? badHandshake : Buffer.from(`{"protocol":"json","version":1}${RS}`);
          const session = await sseSession();
          try {
            await exercise(session, handshake, garbageHandshake ? [] : frames, { stateful: false });
          } finally {
            session.dispose();
          }
          await afterRun();
        },
      ),
      runs(60),
    );
    // Every protocol and transport still works after the garbage.
    await delay(50);
    await assertHealthy(true);
  });
});
