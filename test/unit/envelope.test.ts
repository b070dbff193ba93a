// The backplane's row codec (encodeBatch / decodeBatch): a row is the MessagePack array
// [FORMAT = 1, publisher, [envelope, ...], stamp?], each envelope an array led by its kind. Every kind and audience
// round-trips; the positional layout is pinned (other versions of Hubwire read these rows); readers skip envelope
// kinds and trailing elements they do not know; anything else malformed throws, and a stamp that is not a list of
// safe integers is dropped.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Packr, Unpackr } from 'msgpackr';
import { decodeBatch, encodeBatch } from '../../packages/hubwire/src/backplane/envelope.ts';
import { type Envelope, EnvelopeKind } from '../../packages/hubwire/src/bus/envelope.ts';

type SendEnvelope = Extract<Envelope, { kind: 1 }>;

/** Writes rows by hand, as another version (or a broken writer) would. */
const packr = new Packr({ useRecords: false, variableMapSize: true });
const raw = (value: unknown) => packr.pack(value);
const unpack = (payload: Buffer) => new Unpackr({ useRecords: false, mapsAsObjects: true }).unpack(payload);

const roundTrip = (envelopes: Envelope[], stamp?: number[]) => decodeBatch(encodeBatch('node-1', envelopes, stamp));

const SEND: Envelope = {
  kind: 1,
  hub: 'chat',
  audience: { all: true },
  target: 'broadcastMessage',
  args: ['alice', 'hi', 3, true, null, { nested: [1, 2, { deep: 'x' }] }, [], ''],
};
const GROUP: Envelope = { kind: 2, hub: 'chat', connectionId: 'conn-1', group: 'room', add: true };
const INVOKE: Envelope = {
  kind: 3,
  hub: 'chat',
  connectionId: 'conn-2',
  invocationId: 'r7',
  target: 'getName',
  args: [42],
  replyNode: 'node-9',
};
const REPLY: Envelope = {
  kind: 4,
  hub: 'chat',
  replyNode: 'node-9',
  invocationId: 'r7',
  error: undefined,
  result: { name: 'Bob', tags: ['a'] },
};
/** GROUP as it is on the wire. */
const GROUP_WIRE = [2, 'chat', 'conn-1', 'room', true];
const NOTICE: Envelope = { kind: 5, hub: '/signalr', data: { type: 'moved', cursor: 12, ids: ['x', 'y'] } };
const ABSENT: Envelope = { kind: 6, hub: '/chat', replyNode: 'node-1', invocationId: 'node-1:7', node: 'node-2' };
const QUERY_USERS: Envelope = {
  kind: 7,
  hub: '/chat',
  replyNode: 'node-1',
  queryId: 'node-1:q1',
  question: { what: 'users' },
};
const QUERY_GROUP: Envelope = {
  kind: 7,
  hub: '/chat',
  replyNode: 'node-1',
  queryId: 'node-1:q2',
  question: { what: 'group', group: 'room' },
};
const ANSWER: Envelope = {
  kind: 8,
  hub: '/chat',
  replyNode: 'node-1',
  queryId: 'node-1:q2',
  node: 'node-2',
  items: [
    ['conn-1', 'alice'],
    ['conn-2', null],
  ],
  total: 2,
};

describe('envelope codec: round trips', () => {
  test('the kind numbers are part of the format', () => {
    assert.deepEqual(EnvelopeKind, {
      Send: 1,
      Group: 2,
      Invoke: 3,
      Reply: 4,
      Notice: 5,
      Absent: 6,
      Query: 7,
      Answer: 8,
      Record: 9,
    });
  });

  test('connection records: marks and each recorded message come back equal', () => {
    const records: Envelope[] = [
      { kind: 9, hub: '/chat', connectionId: 'c1', record: { kind: 'mark', sequenceId: 7, invocationId: '3' } },
      { kind: 9, hub: '/chat', connectionId: 'c1', record: { kind: 'mark', sequenceId: 8, invocationId: undefined } },
      {
        kind: 9,
        hub: '/chat',
        connectionId: 'c1',
        record: { kind: 'message', message: { type: 3, invocationId: '3', result: { a: [1, null] }, hasResult: true } },
      },
      {
        kind: 9,
        hub: '/chat',
        connectionId: 'c1',
        record: { kind: 'message', message: { type: 3, invocationId: '4', error: 'boom' } },
      },
      {
        kind: 9,
        hub: '/chat',
        connectionId: 'c1',
        record: { kind: 'message', message: { type: 3, invocationId: '5' } },
      },
      {
        kind: 9,
        hub: '/chat',
        connectionId: 'c1',
        record: { kind: 'message', message: { type: 2, invocationId: '6', item: 'x' } },
      },
      {
        kind: 9,
        hub: '/chat',
        connectionId: 'c1',
        record: { kind: 'message', message: { type: 1, invocationId: 'r1', target: 'ask', arguments: [1, 'two'] } },
      },
    ];
    assert.deepEqual(roundTrip(records).envelopes, records);
    assert.deepEqual(unpack(encodeBatch('n', [records[0] as Envelope]))[2], [[9, '/chat', 'c1', 0, 7, '3']]);
  });

  test('a record of a kind this version does not know is skipped', () => {
    const payload = raw([
      1,
      'n',
      [
        [9, '/chat', 'c1', 42, 'x'],
        [5, '/h', 1],
      ],
    ]);
    assert.deepEqual(decodeBatch(payload).envelopes, [{ kind: 5, hub: '/h', data: 1 }]);
  });

  test('a batch of every kind comes back equal, in order, with its publisher', () => {
    const envelopes = [SEND, GROUP, INVOKE, REPLY, NOTICE, ABSENT, QUERY_USERS, QUERY_GROUP, ANSWER];
    const decoded = roundTrip(envelopes);
    assert.equal(decoded.publisher, 'node-1');
    assert.deepEqual(decoded.envelopes, envelopes);
    assert.equal(decoded.stamp, undefined);
    assert.equal('stamp' in decoded, true, 'the key is there, undefined, without a stamp');
  });

  test('every audience, with and without except', () => {
    const audiences: SendEnvelope['audience'][] = [
      { all: true },
      { all: true, except: ['c1', 'c2'] },
      { connections: ['c1'] },
      { connections: ['c1', 'c2'], except: ['c2'] },
      { groups: ['room', 'lobby'] },
      { groups: ['room'], except: ['c3'] },
      { users: ['alice', 'bob'] },
      { users: ['alice'], except: ['c1'] },
      { connections: [] },
      { groups: [] },
      { users: [] },
    ];
    for (const audience of audiences) {
      const envelope: SendEnvelope = { ...(SEND as SendEnvelope), audience };
      const decoded = roundTrip([envelope]).envelopes[0] as SendEnvelope;
      assert.deepEqual(decoded.audience, audience);
    }
  });

  test('an empty except is not written: it comes back without one', () => {
    const [decoded] = roundTrip([{ ...SEND, kind: 1, audience: { groups: ['g'], except: [] } } as Envelope]).envelopes;
    assert.deepEqual((decoded as Extract<Envelope, { kind: 1 }>).audience, { groups: ['g'] });
  });

  test('an Absent (a node does not hold the connection an Invoke asked for) is [6, hub, replyNode, invocationId, node]', () => {
    const [item] = (
      new Unpackr({ useRecords: false, mapsAsObjects: true }).unpack(encodeBatch('n', [ABSENT])) as unknown[][]
    )[2] as unknown[][];
    assert.deepEqual(item, [6, '/chat', 'node-1', 'node-1:7', 'node-2']);
  });

  test('a group removal keeps add: false', () => {
    const removal: Envelope = { ...GROUP, kind: 2, add: false };
    assert.deepEqual(roundTrip([removal]).envelopes, [removal]);
  });

  test('a reply with an error keeps it; undefined values travel as nil and come back null', () => {
    const failed: Envelope = { ...REPLY, kind: 4, error: 'client threw', result: undefined };
    assert.deepEqual(roundTrip([failed]).envelopes, [{ ...failed, result: null }]);
    const sent: Envelope = { ...SEND, kind: 1, args: [undefined, { a: undefined }] };
    assert.deepEqual((roundTrip([sent]).envelopes[0] as Extract<Envelope, { kind: 1 }>).args, [null, { a: null }]);
  });

  test('strings and numbers of every size survive: unicode, long text, floats, 64-bit integers as numbers', () => {
    const data = {
      text: 'héllo ✓ 𝄞 \u0000 end',
      long: 'x'.repeat(100_000),
      float: 1.5,
      negative: -123456789,
      big: 2 ** 53 - 1,
      small: Number.MIN_SAFE_INTEGER,
    };
    const [decoded] = roundTrip([{ kind: 5, hub: 'h', data }]).envelopes;
    assert.deepEqual((decoded as Extract<Envelope, { kind: 5 }>).data, data);
  });

  test('binary arguments come back as bytes', () => {
    const [decoded] = roundTrip([{ ...SEND, kind: 1, args: [Buffer.from([0, 1, 255])] }]).envelopes;
    const [bytes] = (decoded as Extract<Envelope, { kind: 1 }>).args as Uint8Array[];
    assert.deepEqual([...(bytes as Uint8Array)], [0, 1, 255]);
  });

  test('an empty batch, and a stamp of stream positions', () => {
    assert.deepEqual(roundTrip([]), { publisher: 'node-1', envelopes: [], stamp: undefined });
    assert.deepEqual(roundTrip([NOTICE], [0, 17, 2 ** 40]), {
      publisher: 'node-1',
      envelopes: [NOTICE],
      stamp: [0, 17, 2 ** 40],
    });
    assert.deepEqual(roundTrip([], []).stamp, []);
  });

  test('many envelopes in one row', () => {
    const envelopes: Envelope[] = Array.from({ length: 1000 }, (_, i) => ({
      kind: 1,
      hub: 'chat',
      audience: { connections: [`c${i}`] },
      target: 't',
      args: [i],
    }));
    assert.deepEqual(roundTrip(envelopes).envelopes, envelopes);
  });
});

describe('envelope codec: the wire layout', () => {
  test('a row is [1, publisher, envelopes] (+ stamp), each envelope positional', () => {
    assert.deepEqual(unpack(encodeBatch('n', [])), [1, 'n', []]);
    assert.deepEqual(unpack(encodeBatch('n', [], [4, 5])), [1, 'n', [], [4, 5]]);
    assert.deepEqual(unpack(encodeBatch('n', [SEND]))[2][0], [1, 'chat', 0, null, null, 'broadcastMessage', SEND.args]);
    assert.deepEqual(unpack(encodeBatch('n', [GROUP]))[2][0], [2, 'chat', 'conn-1', 'room', true]);
    assert.deepEqual(unpack(encodeBatch('n', [INVOKE]))[2][0], [3, 'chat', 'conn-2', 'r7', 'getName', [42], 'node-9']);
    assert.deepEqual(unpack(encodeBatch('n', [REPLY]))[2][0], [4, 'chat', 'node-9', 'r7', null, REPLY.result]);
    assert.deepEqual(unpack(encodeBatch('n', [NOTICE]))[2][0], [5, '/signalr', NOTICE.data]);
    // Presence queries: [7, hub, replyNode, queryId, question (1 users, 2 group), group] and
    // [8, hub, replyNode, queryId, node, items, total].
    assert.deepEqual(unpack(encodeBatch('n', [QUERY_USERS]))[2][0], [7, '/chat', 'node-1', 'node-1:q1', 1, null]);
    assert.deepEqual(unpack(encodeBatch('n', [QUERY_GROUP]))[2][0], [7, '/chat', 'node-1', 'node-1:q2', 2, 'room']);
    assert.deepEqual(unpack(encodeBatch('n', [ANSWER]))[2][0], [
      8,
      '/chat',
      'node-1',
      'node-1:q2',
      'node-2',
      [
        ['conn-1', 'alice'],
        ['conn-2', null],
      ],
      2,
    ]);
  });

  test('a query with a question of a newer version is skipped; an answer without a total counts its items', () => {
    const decoded = decodeBatch(
      raw([
        1,
        'n',
        [
          [7, '/chat', 'node-1', 'q9', 3, null],
          [8, '/chat', 'node-1', 'q9', 'node-2', ['u1', 'u2']],
        ],
      ]),
    );
    assert.deepEqual(decoded.envelopes, [
      { kind: 8, hub: '/chat', replyNode: 'node-1', queryId: 'q9', node: 'node-2', items: ['u1', 'u2'], total: 2 },
    ]);
  });

  test('audience kinds: all 0, connections 1, groups 2, users 3; except after the targets', () => {
    const wire = (audience: Extract<Envelope, { kind: 1 }>['audience']) =>
      unpack(encodeBatch('n', [{ ...SEND, kind: 1, audience }]))[2][0].slice(2, 5);
    assert.deepEqual(wire({ all: true, except: ['x'] }), [0, null, ['x']]);
    assert.deepEqual(wire({ connections: ['a'] }), [1, ['a'], null]);
    assert.deepEqual(wire({ groups: ['g'], except: ['x'] }), [2, ['g'], ['x']]);
    assert.deepEqual(wire({ users: ['u'] }), [3, ['u'], null]);
  });

  test('the bytes are plain MessagePack: fixarray, fixstr, fixmap (no msgpackr records, even for repeated shapes)', () => {
    // [1, 'n', [[5, 'h', { a: 1 }]]]
    const expected = Buffer.from([0x93, 0x01, 0xa1, 0x6e, 0x91, 0x93, 0x05, 0xa1, 0x68, 0x81, 0xa1, 0x61, 0x01]);
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(encodeBatch('n', [{ kind: 5, hub: 'h', data: { a: 1 } }]), expected);
    }
  });

  test('rows written by hand in the documented layout decode', () => {
    const decoded = decodeBatch(
      raw([
        1,
        'other',
        [
          [1, 'chat', 3, ['alice'], ['c9'], 'm', [1]],
          [2, 'chat', 'c1', 'g', false],
        ],
        [3],
      ]),
    );
    assert.deepEqual(decoded, {
      publisher: 'other',
      envelopes: [
        { kind: 1, hub: 'chat', audience: { except: ['c9'], users: ['alice'] }, target: 'm', args: [1] },
        { kind: 2, hub: 'chat', connectionId: 'c1', group: 'g', add: false },
      ],
      stamp: [3],
    });
  });
});

describe('envelope codec: versions and malformed rows', () => {
  test('a row of another format, or not a row at all, throws', () => {
    for (const value of [[2, 'n', []], [0, 'n', []], ['1', 'n', []], [], { 0: 1, 1: 'n', 2: [] }, 'text', 1, null]) {
      assert.throws(() => decodeBatch(raw(value)), /Unknown backplane row format/, JSON.stringify(value));
    }
  });

  test('bytes that are not MessagePack, or cut short, throw', () => {
    assert.throws(() => decodeBatch(Buffer.alloc(0)));
    const whole = encodeBatch('node', [NOTICE]);
    assert.throws(() => decodeBatch(whole.subarray(0, whole.length - 3)));
    assert.throws(() => decodeBatch(Buffer.from([0xc1])), /Unknown backplane row format/); // never used: read as nil
  });

  test('envelope kinds this version does not know are skipped, the others kept', () => {
    const decoded = decodeBatch(
      raw([
        1,
        'n',
        [
          [9, 'chat', 'future'],
          [2, 'chat', 'c1', 'g', true],
          [0, 'chat'],
        ],
      ]),
    );
    assert.deepEqual(decoded.envelopes, [{ kind: 2, hub: 'chat', connectionId: 'c1', group: 'g', add: true }]);
  });

  test('trailing elements, of envelopes and of the row, are ignored', () => {
    const decoded = decodeBatch(raw([1, 'n', [[2, 'chat', 'conn-1', 'room', true, 'extra', 1]], [1, 2], 'future']));
    assert.deepEqual(decoded, { publisher: 'n', envelopes: [GROUP], stamp: [1, 2] });
    const notice = decodeBatch(raw([1, 'n', [[5, 'h', 'data', 'more']]]));
    assert.deepEqual(notice.envelopes, [{ kind: 5, hub: 'h', data: 'data' }]);
  });

  test('an envelope that is not an array, or names no hub, fails the whole row', () => {
    assert.throws(() => decodeBatch(raw([1, 'n', [GROUP_WIRE, 5]])), /must be an array/);
    assert.throws(() => decodeBatch(raw([1, 'n', [GROUP_WIRE, [2, 7, 'c', 'g', true]]])), /must name its hub/);
    assert.throws(() => decodeBatch(raw([1, 'n', [[5]]])), /must name its hub/);
  });

  test('an unknown audience kind fails the row', () => {
    assert.throws(() => decodeBatch(raw([1, 'n', [[1, 'h', 4, ['x'], null, 't', []]]])), /Unknown audience kind 4/);
    assert.throws(() => decodeBatch(raw([1, 'n', [[1, 'h', null, null, null, 't', []]]])), /Unknown audience kind/);
  });

  test('missing or mistyped fields are coerced, not trusted', () => {
    const decoded = decodeBatch(
      raw([
        1,
        42,
        [
          [1, 'h', 1, 'not-a-list', 'also-not', 7, 'not-args'],
          [2, 'h', 1, 2, 'true'],
          [3, 'h', 1, 2, 3, null, 4],
          [4, 'h', 'r', 9, 12, 'res'],
          [5, 'h'],
        ],
        'not-a-stamp',
      ]),
    );
    assert.deepEqual(decoded, {
      publisher: '42',
      envelopes: [
        // A truthy non-list except becomes an empty except; a non-list of targets an empty one.
        { kind: 1, hub: 'h', audience: { except: [], connections: [] }, target: '7', args: [] },
        // Only the boolean true adds.
        { kind: 2, hub: 'h', connectionId: '1', group: '2', add: false },
        { kind: 3, hub: 'h', connectionId: '1', invocationId: '2', target: '3', args: [], replyNode: '4' },
        // A non-string error is no error.
        { kind: 4, hub: 'h', replyNode: 'r', invocationId: '9', error: undefined, result: 'res' },
        { kind: 5, hub: 'h', data: undefined },
      ],
      stamp: undefined,
    });
  });

  test('a row without an envelope list decodes as empty', () => {
    assert.deepEqual(decodeBatch(raw([1, 'n'])).envelopes, []);
    assert.deepEqual(decodeBatch(raw([1, 'n', 'nope'])).envelopes, []);
  });

  test('a stamp with anything but safe integers is dropped', () => {
    for (const stamp of [[1, 1.5], [1, '2'], [2 ** 53], [null], 'x', { 0: 1 }]) {
      assert.equal(decodeBatch(raw([1, 'n', [], stamp])).stamp, undefined, JSON.stringify(stamp));
    }
    assert.deepEqual(decodeBatch(raw([1, 'n', [], [-1, 0]])).stamp, [-1, 0], 'negative integers pass');
  });

  test('an integer argument beyond 64 bits cannot be encoded', () => {
    assert.throws(() => encodeBatch('n', [{ kind: 5, hub: 'h', data: 2n ** 64n }]));
  });
});
