// Property-based fuzzing of the other parsers a client reaches (issue 12): the negotiate version, request
// snapshots (cookies, access tokens), the classic protocol's tokens, connectionData, hub invocations, client
// protocol versions, cursors and backplane positions, the envelopes and results that echo client text back, and
// the hub registry's argument counting. Each returns a valid result or refuses in the documented way, never
// throws what it should not, in bounded time; where there is an encoder, decoding gives back what was encoded.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { Backplane } from '../../packages/hubwire/src/backplane/backplane.ts';
import { ClassicDelivery } from '../../packages/hubwire/src/classic/classic-delivery.ts';
import { classicHubProtocol, encodeEnvelope, encodeHubResult } from '../../packages/hubwire/src/classic/envelope.ts';
import { resolveClassicOptions } from '../../packages/hubwire/src/classic/options.ts';
import { ClassicHttpError, parseConnectionData, parseInvocation } from '../../packages/hubwire/src/classic/requests.ts';
import { formatPosition, parsePosition } from '../../packages/hubwire/src/classic/resume.ts';
import { protocolVersion } from '../../packages/hubwire/src/classic/routes.ts';
import { TokenProtector } from '../../packages/hubwire/src/classic/tokens.ts';
import {
  type ClusterLink,
  CrossNodeConnections,
  type TokenClaims,
} from '../../packages/hubwire/src/connection/cross-node.ts';
import { parseNegotiateVersion } from '../../packages/hubwire/src/connection/negotiate.ts';
import { getAccessToken, requestInfo } from '../../packages/hubwire/src/connection/request-info.ts';
import { type ArgumentSchema, validateArguments } from '../../packages/hubwire/src/hub/argument-schema.ts';
import { countParameters, HubRegistry } from '../../packages/hubwire/src/hub/hub-registry.ts';
import { stringifyAsAspNetCore } from '../../packages/hubwire/src/protocol/json-protocol.ts';
import {
  anyString,
  assertClearText,
  depth,
  describeThrown,
  jsonValue,
  nestedArrays,
  nestedObjects,
  runs,
  timed,
} from './support.ts';

/** Runs `fn`, which must not throw at all (in bounded time). */
function total<T>(what: string, fn: () => T): T {
  try {
    return timed(what, fn);
  } catch (error) {
    if (error instanceof assert.AssertionError) throw error;
    assert.fail(`${what} threw ${describeThrown(error)}`);
  }
}

/** Query-string text: percent escapes (valid and not), separators, Unicode, anything. */
const queryText = fc.oneof(
  anyString(40),
  fc
    .array(
      fc.oneof(
        fc.constantFrom('%', '%2', '%zz', '%00', '%FF', '%E2%82', '&', '=', '+', '#', '?', '..', '[', ']', '\\'),
        fc.string({ maxLength: 6 }),
      ),
      { maxLength: 10 },
    )
    .map((parts) => parts.join('')),
);

describe('fuzz: negotiate version', () => {
  test('any value: 0 or 1, or an error text naming the value', () => {
    fc.assert(
      fc.property(fc.option(fc.oneof(queryText, fc.stringMatching(/^\d{1,30}$/)), { nil: null }), (value) => {
        const version = total('parseNegotiateVersion', () => parseNegotiateVersion(value));
        if (typeof version === 'number') {
          assert.ok(version === 0 || version === 1, `version ${version}`);
          if (value !== null) assert.match(value, /^\d+$/);
          else assert.equal(version, 0);
        } else {
          assertClearText(version);
          assert.ok(version.includes(value as string), 'the error names the value');
        }
      }),
      runs(500),
    );
  });
});

describe('fuzz: request snapshots', () => {
  const fakeRequest = (url: string, headers: Record<string, string> = {}) =>
    ({
      method: 'GET',
      url,
      headers,
      socket: { remoteAddress: '127.0.0.1', remotePort: 1 },
    }) as unknown as IncomingMessage;

  test('path and query of any URL the server accepted, and cookies of any Cookie header', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          queryText.map((q) => `/hub?${q}`),
          queryText,
        ),
        anyString(80),
        (url, cookie) => {
          try {
            new URL(url, 'http://localhost');
          } catch {
            return; // the dispatcher answers 400 before any snapshot is taken
          }
          const info = requestInfo(fakeRequest(url, { cookie }));
          total('path', () => info.path);
          total('query', () => [...info.query.entries()]);
          const cookies = total('cookies', () => info.cookies);
          assert.equal(Object.getPrototypeOf(cookies), null, 'no prototype to pollute');
          for (const value of Object.values(cookies)) assert.equal(typeof value, 'string');
          assert.equal(({} as Record<string, unknown>).polluted, undefined);
        },
      ),
      runs(500),
    );
  });

  test('cookie headers with __proto__, constructor and broken escapes', () => {
    const name = fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'a', '', ' ');
    const value = fc.oneof(queryText, fc.constantFrom('"', '""', '"%zz"', '{"polluted":1}'));
    fc.assert(
      fc.property(fc.array(fc.tuple(name, value), { maxLength: 5 }), (pairs) => {
        const header = pairs.map(([n, v]) => `${n}=${v}`).join('; ');
        const cookies = total('cookies', () => requestInfo(fakeRequest('/', { cookie: header })).cookies);
        assert.equal(Object.getPrototypeOf(cookies), null);
        assert.equal(({} as Record<string, unknown>).polluted, undefined);
      }),
      runs(300),
    );
  });

  test('getAccessToken: a string or undefined for any header and query', () => {
    fc.assert(
      fc.property(
        fc.option(
          fc.oneof(
            anyString(40),
            anyString(20).map((t) => `Bearer ${t}`),
          ),
          { nil: undefined },
        ),
        fc.oneof(
          queryText,
          queryText.map((q) => `/hub?access_token=${q}`),
        ),
        (authorization, url) => {
          const headers = authorization === undefined ? {} : { authorization };
          const token = total('getAccessToken', () => getAccessToken({ headers, url }));
          assert.ok(token === undefined || typeof token === 'string');
          if (authorization !== undefined && /^bearer /i.test(authorization)) {
            assert.equal(token, authorization.slice(7).trim() || undefined);
          }
        },
      ),
      runs(500),
    );
  });
});

describe('fuzz: classic tokens', () => {
  const protector = new TokenProtector(randomBytes(32));
  const other = new TokenProtector(randomBytes(32));
  /** Well-formed text (tokens carry UTF-8: a lone surrogate does not survive, see the report). */
  const text = fc.string({ unit: 'grapheme', maxLength: 20 });
  const connectionId = fc.oneof(
    fc.uuid(),
    text.filter((t) => t.length > 0 && !t.includes(':')),
  );

  test('any string as a connection or groups token: refused or read, never a throw', () => {
    const tokenLike = fc.oneof(
      queryText,
      fc.base64String({ maxLength: 40 }),
      fc.tuple(fc.base64String({ maxLength: 40 }), fc.base64String({ maxLength: 30 })).map(([a, b]) => `${a}.${b}`),
    );
    fc.assert(
      fc.property(tokenLike, anyString(20), (token, id) => {
        const identity = total('readConnectionToken', () => protector.readConnectionToken(token));
        assert.equal(identity, undefined, 'a token made without the key never verifies');
        const groups = total('readGroupsToken', () => protector.readGroupsToken(token, id));
        assert.deepEqual(groups, []);
      }),
      runs(500),
    );
  });

  test('round trip: a connection token reads back its id and user name; no other key or purpose reads it', () => {
    fc.assert(
      fc.property(connectionId, fc.option(text, { nil: undefined }), (id, user) => {
        const token = protector.connectionToken(id, user);
        assert.match(token, /^[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+$/, 'URL-safe');
        assert.deepEqual(protector.readConnectionToken(token), { connectionId: id, userName: user ?? '' });
        assert.equal(other.readConnectionToken(token), undefined, 'another key');
        assert.deepEqual(protector.readGroupsToken(token, id), [], 'a connection token is not a groups token');
      }),
      runs(300),
    );
  });

  test('round trip: a groups token reads back its groups for its connection (any case), none for another', () => {
    fc.assert(
      fc.property(connectionId, fc.array(anyString(12), { maxLength: 5 }), connectionId, (id, groups, stranger) => {
        const token = protector.groupsToken(id, groups);
        // Another case of the id (where upper-casing keeps it the same text ignoring case: not 'ᾀ' → 'ἈΙ').
        const shouted = id.toUpperCase().toLowerCase() === id.toLowerCase() ? id.toUpperCase() : id;
        assert.deepEqual(protector.readGroupsToken(token, shouted), groups);
        if (stranger.toLowerCase() !== id.toLowerCase())
          assert.deepEqual(protector.readGroupsToken(token, stranger), []);
        assert.equal(protector.readConnectionToken(token), undefined, 'a groups token is not a connection token');
      }),
      runs(300),
    );
  });

  test('changing any one character of a token makes it fail', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ';
    fc.assert(
      fc.property(connectionId, text, fc.nat(), fc.nat(), (id, user, at, pick) => {
        const token = protector.connectionToken(id, user);
        const index = at % token.length;
        const replacement = alphabet[pick % alphabet.length] as string;
        if (token[index] === replacement) return;
        const tampered = token.slice(0, index) + replacement + token.slice(index + 1);
        assert.equal(protector.readConnectionToken(tampered), undefined, `${token} → ${tampered}`);
      }),
      runs(500),
    );
  });
});

describe('fuzz: connection tokens (connections on any node)', () => {
  // A node's view of tokens, with a link that goes nowhere (nothing here publishes).
  const link: ClusterLink = {
    nodeId: 'fuzz',
    publish: async () => {},
    publishCommitted: async () => {},
    barrier: async () => true,
    aliveNodes: async () => undefined,
    listen: () => {},
  };
  const key = randomBytes(32);
  const node = (secret: Buffer) =>
    new CrossNodeConnections(
      {
        keys: { signingKey: () => secret, verificationKeys: () => [secret] },
        link,
        adoptionWindow: 60_000,
        reportError: () => {},
      },
      () => undefined,
    );
  const here = node(key);
  const elsewhere = node(key);
  const stranger = node(randomBytes(32));
  const claims = fc.record({
    connectionId: fc.string({ minLength: 1, maxLength: 30 }),
    userId: fc.option(fc.string({ unit: 'grapheme', maxLength: 20 }), { nil: undefined }),
    path: fc.string({ maxLength: 20 }).map((p) => `/${p}`.toLowerCase()),
    negotiateVersion: fc.integer({ min: 1, max: 3 }),
    statefulReconnect: fc.boolean(),
    issuedAt: fc.constant(Date.now()),
  });

  test('any string as a token: refused with a status, never a throw', () => {
    const tokenLike = fc.oneof(
      queryText,
      fc.base64String({ maxLength: 80 }),
      fc.tuple(fc.base64String({ maxLength: 80 }), fc.base64String({ maxLength: 30 })).map(([a, b]) => `${a}.${b}`),
    );
    fc.assert(
      fc.property(tokenLike, (token) => {
        const read = total('read', () => here.read(token));
        assert.ok('status' in read && read.status === 404, `refused: ${JSON.stringify(read)}`);
      }),
      runs(500),
    );
  });

  test('round trip on any node sharing the key; refused under another key, and never a classic token', () => {
    const classic = new TokenProtector(key);
    fc.assert(
      fc.property(claims, (made: TokenClaims) => {
        const token = here.issue(made) as string;
        assert.match(token, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, 'URL-safe');
        assert.notEqual(token, made.connectionId);
        const read = elsewhere.read(token);
        assert.ok(!('status' in read), 'another node with the key reads it');
        assert.deepEqual(read.claims, { ...made });
        assert.deepEqual([read.spent, read.expired], [false, false]);
        assert.equal((stranger.read(token) as { status?: number }).status, 404, 'another key');
        assert.equal(classic.readConnectionToken(token), undefined, 'not a classic token');
        const classicToken = classic.connectionToken(made.connectionId, made.userId);
        assert.equal((here.read(classicToken) as { status?: number }).status, 404, 'a classic token is not one');
      }),
      runs(300),
    );
  });

  test('changing any one character of a token makes it fail', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ';
    fc.assert(
      fc.property(claims, fc.nat(), fc.nat(), (made, at, pick) => {
        const token = here.issue(made) as string;
        const index = at % token.length;
        const replacement = alphabet[pick % alphabet.length] as string;
        if (token[index] === replacement) return;
        const tampered = token.slice(0, index) + replacement + token.slice(index + 1);
        assert.equal((elsewhere.read(tampered) as { status?: number }).status, 404, `${token} → ${tampered}`);
      }),
      runs(500),
    );
  });
});

describe('fuzz: classic request parsing', () => {
  /** A parser that may refuse with a ClassicHttpError 400 and must not throw anything else. */
  function refusedOrValue<T>(what: string, fn: () => T): T | ClassicHttpError {
    try {
      return timed(what, fn);
    } catch (error) {
      if (error instanceof assert.AssertionError) throw error;
      assert.ok(error instanceof ClassicHttpError, `${what} threw ${describeThrown(error)}`);
      assert.equal(error.status, 400);
      assertClearText(error.message);
      return error;
    }
  }

  test('connectionData: any text is a list of lowercase hub names, or a 400', () => {
    const entry = fc.oneof(
      fc.record({ name: fc.oneof(anyString(12), jsonValue(1)) }, { requiredKeys: [] }),
      jsonValue(1),
      fc.constant(null),
    );
    const data = fc.oneof(
      queryText,
      fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
      fc.array(entry, { maxLength: 4 }).map((v) => JSON.stringify(v)),
    );
    fc.assert(
      fc.property(fc.option(data, { nil: null }), (text) => {
        const names = refusedOrValue('parseConnectionData', () => parseConnectionData(text));
        if (names instanceof ClassicHttpError) return;
        assert.ok(Array.isArray(names));
        assert.equal(new Set(names).size, names.length, 'no duplicates');
        for (const name of names) assert.ok(typeof name === 'string' && name !== '' && name === name.toLowerCase());
      }),
      runs(500),
    );
  });

  const invocationShaped = fc.record(
    {
      I: fc.oneof(fc.nat(), anyString(8), jsonValue(1), fc.string({ minLength: 65, maxLength: 80 })),
      H: fc.oneof(fc.constantFrom('testHub', 'TESTHUB', ''), jsonValue(1)),
      M: fc.oneof(fc.constantFrom('echo', 'add', ''), jsonValue(1)),
      A: fc.oneof(fc.array(jsonValue(2), { maxLength: 3 }), jsonValue(1)),
      S: fc.oneof(fc.dictionary(fc.string(), jsonValue(2), { maxKeys: 3 }), jsonValue(1)),
    },
    { requiredKeys: [] },
  );

  /** An invocation's shape, or an error text with the id when one was readable. */
  function checkInvocation(text: string) {
    const parsed = total('parseInvocation', () => parseInvocation(text));
    if ('error' in parsed) {
      assertClearText(parsed.error);
      assert.ok(parsed.id === undefined || typeof parsed.id === 'string');
      return;
    }
    assert.ok(typeof parsed.hub === 'string' && parsed.hub !== '');
    assert.ok(typeof parsed.method === 'string' && parsed.method !== '');
    assert.ok(Array.isArray(parsed.args));
    assert.ok(typeof parsed.id === 'string' && parsed.id.length <= 64);
    assert.ok(parsed.state === undefined || (typeof parsed.state === 'object' && !Array.isArray(parsed.state)));
  }

  test('hub invocations: any text or invocation-shaped JSON is an invocation or an error text', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          queryText,
          invocationShaped.map((o) => JSON.stringify(o)),
        ),
        (text) => {
          checkInvocation(text);
        },
      ),
      runs(500),
    );
  });

  test('hub invocations with deeply nested arguments', () => {
    fc.assert(
      fc.property(depth, fc.boolean(), (n, objects) => {
        const nested = objects ? nestedObjects(n) : nestedArrays(n);
        checkInvocation(`{"I":"1","H":"testHub","M":"echo","A":[${nested}]}`);
      }),
      runs(40),
    );
  });

  test('hub invocations with deeply nested caller state (S)', () => {
    fc.assert(
      fc.property(depth, fc.boolean(), (n, objects) => {
        const nested = objects ? nestedObjects(n) : nestedArrays(n);
        checkInvocation(`{"I":"1","H":"testHub","M":"echo","A":[],"S":{"a":${nested}}}`);
      }),
      { ...runs(40), examples: [[6000, false]] },
    );
  });

  test('client protocol versions: always one of 1.2 to 2.0', () => {
    fc.assert(
      fc.property(
        fc.option(
          fc.oneof(queryText, fc.double().map(String), fc.constantFrom('Infinity', '-Infinity', 'NaN', '1e400')),
          {
            nil: null,
          },
        ),
        (value) => {
          const version = total('protocolVersion', () => protocolVersion(value));
          assert.match(version, /^\d\.\d$/);
          assert.ok(Number(version) >= 1.2 && Number(version) <= 2, version);
        },
      ),
      runs(500),
    );
  });
});

describe('fuzz: classic envelopes and results (client text echoed back)', () => {
  test('an envelope with any cursor, groups token and error is JSON that gives them back', () => {
    fc.assert(
      fc.property(
        anyString(40),
        fc.array(jsonValue(2), { maxLength: 3 }),
        fc.record(
          {
            init: fc.boolean(),
            shuttingDown: fc.boolean(),
            groupsToken: anyString(30),
            longPollDelay: fc.nat(),
            error: anyString(30),
          },
          { requiredKeys: [] },
        ),
        (cursor, messages, fields) => {
          const bytes = encodeEnvelope(
            cursor,
            messages.map((m) => Buffer.from(JSON.stringify(m))),
            fields,
          );
          const parsed = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
          // Lone surrogates are escaped by JSON.stringify, so the text comes back exactly.
          assert.equal(parsed.C, cursor);
          assert.deepEqual(parsed.M, messages);
          if (fields.groupsToken !== undefined) assert.equal(parsed.G, fields.groupsToken);
          if (fields.error !== undefined) assert.equal(parsed.E, fields.error);
        },
      ),
      runs(300),
    );
  });

  test('a hub result of any value (bigints, bytes, cycles) is JSON with its id', () => {
    const cyclic = fc.constant(null).map(() => {
      const o: Record<string, unknown> = { a: 1 };
      o.self = o;
      return o;
    });
    fc.assert(
      fc.property(
        anyString(10),
        fc.oneof(fc.anything({ maxDepth: 2, withBigInt: true, withTypedArray: true, withDate: true }), cyclic),
        fc.option(anyString(20), { nil: undefined }),
        (id, result, error) => {
          const text = total('encodeHubResult', () => encodeHubResult({ id, result, error }));
          const parsed = JSON.parse(text) as Record<string, unknown>;
          assert.equal(parsed.I, id);
        },
      ),
      runs(300),
    );
  });

  test('a client invocation for classic clients is JSON whatever the hub name, target and arguments', () => {
    fc.assert(
      fc.property(anyString(12), anyString(12), fc.array(jsonValue(2), { maxLength: 3 }), (hub, target, args) => {
        const bytes = classicHubProtocol(hub).encode({ type: 1, target, arguments: args });
        assert.deepEqual(JSON.parse(bytes.toString('utf8')), { H: hub, M: target, A: args });
      }),
      runs(300),
    );
  });

  test('bigints are written as exact numbers; no client string can forge the marker', () => {
    const int64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n });
    fc.assert(
      fc.property(anyString(30), int64, (text, big) => {
        const json = stringifyAsAspNetCore([text, big, { text }]);
        const number = Number.isSafeInteger(Number(big)) ? String(Number(big)) : big.toString();
        assert.equal(json, `[${JSON.stringify(text)},${number},${JSON.stringify({ text })}]`);
      }),
      runs(300),
    );
  });
});

describe('fuzz: classic cursors and backplane positions', () => {
  /** What parsePosition and formatPosition read of an engine. */
  function engineStub(epoch: string, positions: number[]): Backplane {
    return {
      epoch,
      store: { streamCount: positions.length },
      positions: () => positions,
    } as unknown as Backplane;
  }
  const positions = fc.array(fc.nat({ max: Number.MAX_SAFE_INTEGER }), { minLength: 1, maxLength: 4 });
  const epoch = fc.oneof(fc.uuid(), fc.string({ minLength: 1, maxLength: 20 }));

  test('any cursor: no position, or one safe non-negative id per stream', () => {
    fc.assert(
      fc.property(epoch, positions, fc.option(queryText, { nil: null }), (e, ids, cursor) => {
        const engine = engineStub(e, ids);
        const parsed = total('parsePosition', () => parsePosition(cursor, engine));
        if (parsed === undefined) return;
        assert.equal(parsed.length, ids.length);
        for (const id of parsed) assert.ok(Number.isSafeInteger(id) && id >= 0);
      }),
      runs(500),
    );
  });

  test('round trip: a formatted position parses back; tampered ones give a position or none, never a throw', () => {
    fc.assert(
      fc.property(
        epoch.filter((e) => /[A-Za-z0-9]/.test(e)),
        positions,
        fc.string({ maxLength: 8 }),
        fc.nat(),
        (e, ids, junk, at) => {
          const engine = engineStub(e, ids);
          const position = formatPosition(engine) as string;
          const cursor = `abcd-1.${position}`;
          assert.deepEqual(parsePosition(cursor, engine), ids);
          const i = at % (cursor.length + 1);
          const tampered = cursor.slice(0, i) + junk + cursor.slice(i);
          const parsed = total('parsePosition', () => parsePosition(tampered, engine));
          if (parsed) for (const id of parsed) assert.ok(Number.isSafeInteger(id) && id >= 0);
        },
      ),
      runs(300),
    );
  });

  test("a connection's cursor: its own cursors name their sequence number; anything else nothing or a kept one", () => {
    const options = resolveClassicOptions({ messageBufferSize: 50 });
    const host = { disposed: false, groupsToken: () => '', timedOut: () => {} };
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 60 }), fc.nat(), queryText, (count, seq, junk) => {
        const connection = new ClassicDelivery('longPolling', options, () => undefined, host);
        const inner = connection as unknown as { epoch: string; buffer: { push(b: Buffer): number; last: number } };
        for (let i = 0; i < count; i++) inner.buffer.push(Buffer.from('{}'));
        const own = seq % (count + 1);
        assert.equal(connection.parseCursor(`${inner.epoch}-${own.toString(36)}`), own);
        assert.equal(connection.parseCursor(`${inner.epoch}-${own.toString(36)}.tag.1.2`), own);
        for (const cursor of [junk, `${inner.epoch}-${junk}`, `${inner.epoch}-${(count + 1 + seq).toString(36)}`]) {
          const parsed = total('parseCursor', () => connection.parseCursor(cursor));
          if (parsed !== undefined) assert.ok(Number.isSafeInteger(parsed) && parsed >= 0 && parsed <= count);
        }
      }),
      runs(300),
    );
  });
});

describe('fuzz: hub method arguments', () => {
  /** Default values whose text holds what a naive parameter counter trips on. */
  const defaultValue = fc.oneof(
    fc.integer().map(String),
    fc
      .string({ unit: fc.constantFrom('a', ',', '(', ')', '[', ']', '{', '}', ' ', '=', '>', '.', '*') })
      .map((s) => JSON.stringify(s)),
    fc.constantFrom(
      '[1, 2]',
      '{ x: 1, y: [3, 4] }',
      '(x, y) => x + y',
      'Math.max(1, 2)',
      "'it\\'s, (x'",
      '`,)`',
      '"http://example.com/a,b"',
      "'/* not a comment */'",
      // A template literal with a placeholder (split so it is not one here).
      '`a $' + '{1 + 2}, b`',
      '/[(,]/',
    ),
  );
  const parameter = fc.oneof(
    fc.constantFrom('a', 'b', 'c', 'value', '$x', '_y'),
    fc.constantFrom('{ a, b }', '[c, d]', '{ a = 1, b: { c } = { c: 2 } } = {}'),
  );
  const parameterList = fc
    .array(fc.tuple(parameter, fc.option(defaultValue, { nil: undefined })), { maxLength: 5 })
    .chain((params) =>
      fc.tuple(fc.constant(params), fc.boolean(), fc.boolean(), fc.constantFrom('function', 'arrow', 'method')),
    );

  function compile(params: [string, string | undefined][], rest: boolean, comma: boolean, style: string) {
    const names = params.map(([p, d], i) => {
      const named = /^[a-z$_]/i.test(p) ? `${p}${i}` : p;
      return d === undefined ? named : `${named} = ${d}`;
    });
    if (rest) names.push('...rest');
    const list = names.join(', ') + (comma && names.length > 0 && !rest ? ',' : '');
    const source =
      style === 'arrow'
        ? `(${list}) => 0`
        : style === 'method'
          ? `({ m(${list}) { return 0; } }).m`
          : `function (${list}) { return 0; }`;
    // Destructuring patterns reuse names across parameters; rename to keep the source valid.
    let n = 0;
    const unique = source.replace(/\b([abcd])\b(?![:(])/g, (name) => `${name}${n++}`);
    try {
      return new Function(`return (${unique});`)() as (...args: unknown[]) => unknown;
    } catch {
      return undefined;
    }
  }

  test('countParameters counts the declared parameters of any signature', () => {
    fc.assert(
      fc.property(parameterList, ([params, rest, comma, style]) => {
        const fn = compile(params, rest, comma, style);
        if (!fn) return;
        const counted = total('countParameters', () => countParameters(fn));
        assert.equal(counted, rest ? Number.POSITIVE_INFINITY : params.length, fn.toString());
      }),
      runs(500),
    );
  });

  test('countParameters never throws and never counts fewer than Function.length', () => {
    fc.assert(
      fc.property(parameterList, ([params, rest, comma, style]) => {
        const fn = compile(params, rest, comma, style);
        if (!fn) return;
        const counted = total('countParameters', () => countParameters(fn));
        assert.ok(counted >= fn.length);
      }),
      runs(300),
    );
  });

  /**
   * A Standard Schema as zod or valibot would be: every leaf must be a number; the first other leaf is reported
   * with its path (object keys and array indexes from the client's value, as keys or `{ key }` segments).
   */
  function numbersOnly(async: boolean, segments: boolean): ArgumentSchema {
    const firstBad = (value: unknown, path: unknown[]): unknown[] | undefined => {
      if (typeof value === 'number') return undefined;
      if (typeof value !== 'object' || value === null) return path;
      for (const [key, inner] of Object.entries(value)) {
        const found = firstBad(inner, [...path, segments ? { key } : key]);
        if (found) return found;
      }
      return undefined;
    };
    const validate = (value: unknown) => {
      const path = firstBad(value, []);
      return path ? { issues: [{ message: 'Expected a number', path }] } : { value };
    };
    return {
      '~standard': { version: 1, vendor: 'fuzz', validate: async ? async (v: unknown) => validate(v) : validate },
    };
  }

  test('argument schemas: any arguments are passed on or refused with a text naming the argument', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(jsonValue(3), fc.anything({ maxDepth: 2, withNullPrototype: true })), { maxLength: 4 }),
        fc.boolean(),
        fc.boolean(),
        async (args, async, segments) => {
          const schemas = [numbersOnly(async, segments), numbersOnly(!async, !segments)];
          const outcome = await validateArguments('method', schemas, args);
          if ('refused' in outcome) {
            assertClearText(outcome.refused);
            assert.match(outcome.refused, /^Failed to invoke 'method': argument [12] is not valid/);
          } else {
            assert.deepEqual(outcome.args.slice(0, args.length), args);
          }
        },
      ),
      runs(300),
    );
  });

  test('any target name finds a declared method or nothing (no lifetime methods, no Object.prototype)', () => {
    const registry = new HubRegistry({
      echo: (value: unknown) => value,
      add: (a: number, b: number) => a + b,
      _hidden: () => 0,
      onConnected: () => 0,
    });
    const target = fc.oneof(
      anyString(12),
      fc.constantFrom(
        '__proto__',
        'constructor',
        'toString',
        'hasOwnProperty',
        'valueOf',
        '__defineGetter__',
        'onconnected',
        'onDisconnected',
        '_hidden',
        'ECHO',
        'Add',
      ),
    );
    fc.assert(
      fc.property(target, (name) => {
        const method = total('find', () => registry.find(name));
        if (method) assert.ok(['echo', 'add'].includes(method.name), `'${name}' found ${method.name}`);
        else assert.ok(!['echo', 'add'].includes(name.toLowerCase()), `'${name}' not found`);
      }),
      runs(300),
    );
  });
});
