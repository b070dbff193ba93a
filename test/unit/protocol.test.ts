// The hub protocols (JSON and MessagePack) as bytes: encoding, decoding, framing (record separator, VarInt length
// prefix), size limits, handshake parsing and message validation. Where possible the bytes are checked against
// the official client's own protocol implementations, which are the authority on the wire format.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type HubMessage as ClientHubMessage, JsonHubProtocol, MessageType, NullLogger } from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import { Packr } from 'msgpackr';
import { HubwireError } from '../../packages/hubwire/src/errors.ts';
import { HANDSHAKE_OK, handshakeError, parseHandshake } from '../../packages/hubwire/src/protocol/handshake.ts';
import { jsonHubProtocol, RECORD_SEPARATOR } from '../../packages/hubwire/src/protocol/json-protocol.ts';
import type { HubMessage } from '../../packages/hubwire/src/protocol/messages.ts';
import { messagePackHubProtocol } from '../../packages/hubwire/src/protocol/msgpack-protocol.ts';
import { validateMessage } from '../../packages/hubwire/src/protocol/validate.ts';

const RS = String.fromCharCode(RECORD_SEPARATOR);
const officialJson = new JsonHubProtocol();
const officialMsgpack = new MessagePackHubProtocol();
// A plain MessagePack encoder for hand-made payloads (no records, as any MessagePack implementation would write).
const packr = new Packr({ useRecords: false, variableMapSize: true });

/** Asserts that `fn` throws a HubwireError with `code`, and a message matching `pattern` when given. */
function assertHubwireError(fn: () => unknown, code: string, pattern?: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof HubwireError, `expected a HubwireError, got ${String(error)}`);
    assert.equal(error.code, code);
    if (pattern) assert.match(error.message, pattern);
    return true;
  });
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return new Uint8Array(bytes).buffer;
}

/** Writes a VarInt length prefix as the spec describes it (independent of the code under test). */
function varInt(length: number): Buffer {
  const bytes: number[] = [];
  let rest = length;
  do {
    let byte = rest % 128;
    rest = Math.floor(rest / 128);
    if (rest > 0) byte |= 0x80;
    bytes.push(byte);
  } while (rest > 0);
  return Buffer.from(bytes);
}

/** Reads a VarInt length prefix: [length, prefix bytes]. */
function readVarInt(bytes: Buffer): [number, number] {
  let length = 0;
  for (let i = 0; i < 5; i++) {
    const byte = bytes[i] as number;
    length += (byte & 0x7f) * 2 ** (7 * i);
    if ((byte & 0x80) === 0) return [length, i + 1];
  }
  throw new Error('VarInt longer than 5 bytes');
}

function framed(value: unknown): Buffer {
  const body = packr.pack(value);
  return Buffer.concat([varInt(body.length), body]);
}

function jsonFrame(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value) + RS);
}

describe('JSON protocol: encode', () => {
  const cases: { name: string; message: HubMessage; wire: Record<string, unknown> }[] = [
    {
      name: 'invocation without id (non-blocking)',
      message: { type: 1, target: 'send', arguments: ['a', 1] },
      wire: { type: 1, target: 'send', arguments: ['a', 1] },
    },
    {
      name: 'invocation with id, headers and stream ids',
      message: {
        type: 1,
        invocationId: '7',
        target: 'upload',
        arguments: [],
        headers: { h: 'v' },
        streamIds: ['s1'],
      },
      wire: { type: 1, invocationId: '7', target: 'upload', arguments: [], headers: { h: 'v' }, streamIds: ['s1'] },
    },
    {
      name: 'invocation with empty stream ids omits them',
      message: { type: 1, invocationId: '1', target: 't', arguments: [null], streamIds: [] },
      wire: { type: 1, invocationId: '1', target: 't', arguments: [null] },
    },
    {
      name: 'stream invocation',
      message: { type: 4, invocationId: '2', target: 'countTo', arguments: [3] },
      wire: { type: 4, invocationId: '2', target: 'countTo', arguments: [3] },
    },
    {
      name: 'stream item (undefined item becomes null)',
      message: { type: 2, invocationId: '2', item: undefined },
      wire: { type: 2, invocationId: '2', item: null },
    },
    {
      name: 'completion with a result',
      message: { type: 3, invocationId: '3', result: { a: [1, 2] }, hasResult: true },
      wire: { type: 3, invocationId: '3', result: { a: [1, 2] } },
    },
    {
      name: 'completion with a null result keeps `result`',
      message: { type: 3, invocationId: '3', result: null, hasResult: true },
      wire: { type: 3, invocationId: '3', result: null },
    },
    {
      name: 'void completion has neither result nor error',
      message: { type: 3, invocationId: '4' },
      wire: { type: 3, invocationId: '4' },
    },
    {
      name: 'completion with an error has no result',
      message: { type: 3, invocationId: '5', error: 'boom', result: 1, hasResult: true },
      wire: { type: 3, invocationId: '5', error: 'boom' },
    },
    {
      name: 'cancel invocation',
      message: { type: 5, invocationId: '6' },
      wire: { type: 5, invocationId: '6' },
    },
    { name: 'ping', message: { type: 6 }, wire: { type: 6 } },
    { name: 'close without error', message: { type: 7 }, wire: { type: 7 } },
    {
      name: 'close with error and allowReconnect',
      message: { type: 7, error: 'bye', allowReconnect: true },
      wire: { type: 7, error: 'bye', allowReconnect: true },
    },
    {
      name: 'close with allowReconnect false omits it',
      message: { type: 7, error: 'bye', allowReconnect: false },
      wire: { type: 7, error: 'bye' },
    },
    { name: 'ack', message: { type: 8, sequenceId: 12 }, wire: { type: 8, sequenceId: 12 } },
    { name: 'sequence', message: { type: 9, sequenceId: 1 }, wire: { type: 9, sequenceId: 1 } },
  ];
  for (const { name, message, wire } of cases) {
    test(name, () => {
      const bytes = jsonHubProtocol.encode(message);
      assert.equal(bytes[bytes.length - 1], RECORD_SEPARATOR, 'ends with the record separator');
      assert.equal(bytes.indexOf(RECORD_SEPARATOR), bytes.length - 1, 'exactly one record separator');
      assert.deepEqual(JSON.parse(bytes.toString('utf8', 0, bytes.length - 1)), wire);
    });
  }

  test('the official client parses what the server writes', () => {
    const text = Buffer.concat([
      jsonHubProtocol.encode({ type: 1, target: 'message', arguments: ['héllo 😀'] }),
      jsonHubProtocol.encode({ type: 3, invocationId: '1', result: 42, hasResult: true }),
      jsonHubProtocol.encode({ type: 3, invocationId: '2' }),
      jsonHubProtocol.encode({ type: 3, invocationId: '3', error: 'nope' }),
      jsonHubProtocol.encode({ type: 2, invocationId: '4', item: [1] }),
      jsonHubProtocol.encode({ type: 6 }),
      jsonHubProtocol.encode({ type: 7, error: 'bye', allowReconnect: true }),
    ]).toString('utf8');
    const parsed = officialJson.parseMessages(text, NullLogger.instance);
    assert.deepEqual(parsed, [
      { type: MessageType.Invocation, target: 'message', arguments: ['héllo 😀'] },
      { type: MessageType.Completion, invocationId: '1', result: 42 },
      { type: MessageType.Completion, invocationId: '2' },
      { type: MessageType.Completion, invocationId: '3', error: 'nope' },
      { type: MessageType.StreamItem, invocationId: '4', item: [1] },
      { type: MessageType.Ping },
      { type: MessageType.Close, error: 'bye', allowReconnect: true },
    ]);
  });

  test('non-ASCII text is UTF-8', () => {
    const bytes = jsonHubProtocol.encode({ type: 1, target: 'm', arguments: ['é😀'] });
    assert.ok(bytes.includes(Buffer.from('é😀', 'utf8')));
  });
});

describe('JSON protocol: decode', () => {
  test('decodes what the official client writes', () => {
    const messages: ClientHubMessage[] = [
      { type: MessageType.Invocation, invocationId: '1', target: 'echo', arguments: [{ a: 'é' }], streamIds: [] },
      { type: MessageType.Invocation, target: 'send', arguments: [], streamIds: ['s'] },
      { type: MessageType.StreamInvocation, invocationId: '2', target: 'countTo', arguments: [2], streamIds: [] },
      { type: MessageType.StreamItem, invocationId: 's', item: 5 },
      { type: MessageType.Completion, invocationId: 's' },
      { type: MessageType.Completion, invocationId: '9', result: null },
      { type: MessageType.Completion, invocationId: '10', error: 'no handler' },
      { type: MessageType.CancelInvocation, invocationId: '2' },
      { type: MessageType.Ping },
      { type: MessageType.Close },
      { type: MessageType.Ack, sequenceId: 3 },
      { type: MessageType.Sequence, sequenceId: 4 },
    ];
    const text = messages.map((m) => officialJson.writeMessage(m)).join('');
    const decoded = jsonHubProtocol.createDecoder(0).push(Buffer.from(text, 'utf8'));
    assert.deepEqual(decoded, [
      {
        type: 1,
        headers: undefined,
        invocationId: '1',
        target: 'echo',
        arguments: [{ a: 'é' }],
        streamIds: undefined,
      },
      { type: 1, headers: undefined, invocationId: undefined, target: 'send', arguments: [], streamIds: ['s'] },
      { type: 4, headers: undefined, invocationId: '2', target: 'countTo', arguments: [2], streamIds: undefined },
      { type: 2, headers: undefined, invocationId: 's', item: 5 },
      { type: 3, headers: undefined, invocationId: 's', error: undefined, result: undefined, hasResult: false },
      { type: 3, headers: undefined, invocationId: '9', error: undefined, result: null, hasResult: true },
      { type: 3, headers: undefined, invocationId: '10', error: 'no handler', result: undefined, hasResult: false },
      { type: 5, headers: undefined, invocationId: '2' },
      { type: 6 },
      { type: 7, error: undefined, allowReconnect: false },
      { type: 8, sequenceId: 3 },
      { type: 9, sequenceId: 4 },
    ]);
  });

  test('property order is free: `type` may come last', () => {
    const [message] = jsonHubProtocol
      .createDecoder(0)
      .push(Buffer.from(`{"arguments":[1,2],"target":"add","invocationId":"1","type":1}${RS}`));
    assert.equal(message?.type, 1);
    assert.equal((message as { target: string }).target, 'add');
  });

  test('unknown properties are ignored and headers are kept', () => {
    const [message] = jsonHubProtocol
      .createDecoder(0)
      .push(jsonFrame({ type: 1, target: 't', arguments: [], headers: { a: 'b' }, future: { x: 1 } }));
    assert.deepEqual(message, {
      type: 1,
      headers: { a: 'b' },
      invocationId: undefined,
      target: 't',
      arguments: [],
      streamIds: undefined,
    });
  });

  test('a `__proto__` key neither pollutes Object.prototype nor re-prototypes the argument', () => {
    const [message] = jsonHubProtocol
      .createDecoder(0)
      .push(Buffer.from(`{"type":1,"target":"t","arguments":[{"__proto__":{"polluted":"yes"}}]}${RS}`));
    const arg = (message as { arguments: Record<string, unknown>[] }).arguments[0] as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(arg), Object.prototype);
    assert.equal(arg.polluted, undefined);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  test('unknown message types are skipped, the rest still decodes', () => {
    const decoded = jsonHubProtocol
      .createDecoder(0)
      .push(Buffer.concat([jsonFrame({ type: 99, whatever: true }), jsonFrame({ type: 6 })]));
    assert.deepEqual(decoded, [{ type: 6 }]);
  });

  test('a message split across chunks (even inside a UTF-8 sequence) decodes once whole', () => {
    const bytes = jsonFrame({ type: 1, invocationId: '1', target: 'echo', arguments: ['é😀✓'] });
    const decoder = jsonHubProtocol.createDecoder(0);
    const out: HubMessage[] = [];
    for (let i = 0; i < bytes.length; i++) {
      const got = decoder.push(bytes.subarray(i, i + 1));
      if (i < bytes.length - 1) assert.deepEqual(got, [], `nothing before the separator (byte ${i})`);
      out.push(...got);
    }
    assert.equal(out.length, 1);
    assert.deepEqual((out[0] as { arguments: unknown[] }).arguments, ['é😀✓']);
  });

  test('several messages in one chunk, and a trailing partial one completed later', () => {
    const decoder = jsonHubProtocol.createDecoder(0);
    const all = Buffer.concat([
      jsonFrame({ type: 6 }),
      jsonFrame({ type: 5, invocationId: 'a' }),
      jsonFrame({ type: 6 }),
    ]);
    const cut = all.length - 3;
    assert.deepEqual(decoder.push(all.subarray(0, cut)), [
      { type: 6 },
      { type: 5, headers: undefined, invocationId: 'a' },
    ]);
    assert.deepEqual(decoder.push(all.subarray(cut)), [{ type: 6 }]);
  });

  test('malformed JSON throws HW_ERR_INVALID_MESSAGE', () => {
    assertHubwireError(
      () => jsonHubProtocol.createDecoder(0).push(Buffer.from(`{"type":1,${RS}`)),
      'HW_ERR_INVALID_MESSAGE',
      /Invalid JSON/,
    );
  });

  test('an empty record throws', () => {
    assertHubwireError(() => jsonHubProtocol.createDecoder(0).push(Buffer.from(RS)), 'HW_ERR_INVALID_MESSAGE');
  });

  test('a message without `type` throws', () => {
    assertHubwireError(
      () => jsonHubProtocol.createDecoder(0).push(jsonFrame({ target: 'echo', arguments: [] })),
      'HW_ERR_INVALID_MESSAGE',
      /type/,
    );
  });

  test('a JSON value that is not an object throws', () => {
    for (const value of [[1, 2], 'text', 5, null]) {
      assertHubwireError(() => jsonHubProtocol.createDecoder(0).push(jsonFrame(value)), 'HW_ERR_INVALID_MESSAGE');
    }
  });

  test('an invocation with a non-string target throws', () => {
    assertHubwireError(
      () => jsonHubProtocol.createDecoder(0).push(jsonFrame({ type: 1, target: 5, arguments: [] })),
      'HW_ERR_INVALID_MESSAGE',
      /target/,
    );
  });

  test('size limit: a message that fits (with its separator) is accepted, a larger one is refused', () => {
    const limit = 100;
    const fill = (bodyLength: number) => {
      const base = JSON.stringify({ type: 1, target: 't', arguments: [''] });
      const body = JSON.stringify({ type: 1, target: 't', arguments: ['x'.repeat(bodyLength - base.length)] });
      assert.equal(body.length, bodyLength);
      return Buffer.from(body + RS);
    };
    // 99 bytes + separator = 100: within the limit by any reading of it.
    assert.equal(jsonHubProtocol.createDecoder(limit).push(fill(limit - 1)).length, 1);
    assertHubwireError(
      () => jsonHubProtocol.createDecoder(limit).push(fill(limit + 1)),
      'HW_ERR_MESSAGE_TOO_LARGE',
      /maximum message size of 100B/,
    );
  });

  test('size limit: an unterminated message is refused as soon as it outgrows the limit', () => {
    const decoder = jsonHubProtocol.createDecoder(100);
    assert.deepEqual(decoder.push(Buffer.from(`{"type":1,"target":"${'x'.repeat(40)}`)), []);
    assertHubwireError(() => decoder.push(Buffer.from('y'.repeat(60))), 'HW_ERR_MESSAGE_TOO_LARGE');
  });

  test('size limit: each message counts alone, not the whole chunk', () => {
    const decoder = jsonHubProtocol.createDecoder(50);
    const chunk = Buffer.concat(Array.from({ length: 20 }, () => jsonFrame({ type: 6 })));
    assert.ok(chunk.length > 50);
    assert.equal(decoder.push(chunk).length, 20);
  });

  test('a limit of 0 means no limit', () => {
    const big = jsonFrame({ type: 1, target: 't', arguments: ['x'.repeat(200_000)] });
    assert.equal(jsonHubProtocol.createDecoder(0).push(big).length, 1);
  });
});

describe('MessagePack protocol: encode', () => {
  test('exact bytes of the fixed-shape messages', () => {
    assert.deepEqual([...messagePackHubProtocol.encode({ type: 6 })], [0x02, 0x91, 0x06]);
    // [7, nil, false]
    assert.deepEqual([...messagePackHubProtocol.encode({ type: 7 })], [0x04, 0x93, 0x07, 0xc0, 0xc2]);
    // [7, "e", true]
    assert.deepEqual(
      [...messagePackHubProtocol.encode({ type: 7, error: 'e', allowReconnect: true })],
      [0x05, 0x93, 0x07, 0xa1, 0x65, 0xc3],
    );
    // [3, {}, "1", 2]: void completion
    assert.deepEqual(
      [...messagePackHubProtocol.encode({ type: 3, invocationId: '1' })],
      [0x06, 0x94, 0x03, 0x80, 0xa1, 0x31, 0x02],
    );
    // [3, {}, "1", 3, nil]: a null result is not void
    assert.deepEqual(
      [...messagePackHubProtocol.encode({ type: 3, invocationId: '1', result: null, hasResult: true })],
      [0x07, 0x95, 0x03, 0x80, 0xa1, 0x31, 0x03, 0xc0],
    );
    // [8, 5] and [9, 1]
    assert.deepEqual([...messagePackHubProtocol.encode({ type: 8, sequenceId: 5 })], [0x03, 0x92, 0x08, 0x05]);
    assert.deepEqual([...messagePackHubProtocol.encode({ type: 9, sequenceId: 1 })], [0x03, 0x92, 0x09, 0x01]);
    // [1, {}, nil, "m", []]: an invocation without streams has 5 elements
    assert.deepEqual(
      [...messagePackHubProtocol.encode({ type: 1, target: 'm', arguments: [] })],
      [0x07, 0x95, 0x01, 0x80, 0xc0, 0xa1, 0x6d, 0x90],
    );
  });

  test('the official client parses what the server writes', () => {
    const when = new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678));
    const bytes = Buffer.concat([
      messagePackHubProtocol.encode({ type: 1, target: 'message', arguments: ['héllo', 1, 2.5, true, null] }),
      messagePackHubProtocol.encode({ type: 1, invocationId: '9', target: 'answer', arguments: ['q'] }),
      messagePackHubProtocol.encode({ type: 3, invocationId: '1', result: { a: [1, 'b'] }, hasResult: true }),
      messagePackHubProtocol.encode({ type: 3, invocationId: '2' }),
      messagePackHubProtocol.encode({ type: 3, invocationId: '3', error: 'nope' }),
      messagePackHubProtocol.encode({ type: 2, invocationId: '4', item: when }),
      messagePackHubProtocol.encode({ type: 2, invocationId: '4', item: Buffer.from([1, 2, 3]) }),
      messagePackHubProtocol.encode({ type: 6 }),
      messagePackHubProtocol.encode({ type: 7, error: 'bye', allowReconnect: true }),
      messagePackHubProtocol.encode({ type: 8, sequenceId: 300 }),
    ]);
    const parsed = officialMsgpack.parseMessages(toArrayBuffer(bytes), NullLogger.instance) as unknown as Record<
      string,
      unknown
    >[];
    assert.equal(parsed.length, 10);
    assert.deepEqual(parsed[0], {
      type: 1,
      headers: {},
      target: 'message',
      arguments: ['héllo', 1, 2.5, true, null],
      streamIds: [],
    });
    assert.equal(parsed[1]?.invocationId, '9');
    assert.deepEqual(parsed[2], {
      type: 3,
      headers: {},
      invocationId: '1',
      result: { a: [1, 'b'] },
      error: undefined,
    });
    assert.deepEqual(parsed[3], { type: 3, headers: {}, invocationId: '2', result: undefined, error: undefined });
    assert.deepEqual(parsed[4], { type: 3, headers: {}, invocationId: '3', result: undefined, error: 'nope' });
    assert.ok(parsed[5]?.item instanceof Date, 'dates use the timestamp extension');
    assert.equal((parsed[5]?.item as Date | undefined)?.getTime(), when.getTime());
    assert.ok(parsed[6]?.item instanceof Uint8Array, 'bytes use bin');
    assert.deepEqual(Array.from((parsed[6]?.item as Uint8Array | undefined) ?? []), [1, 2, 3]);
    assert.deepEqual(parsed[7], { type: 6 });
    assert.deepEqual(parsed[8], { type: 7, error: 'bye', allowReconnect: true });
    assert.deepEqual(parsed[9], { type: 8, sequenceId: 300 });
  });

  test('maps are plain MessagePack maps, not msgpackr records (repeated shapes too)', () => {
    const shape = { a: 1, b: 'x' };
    for (let i = 0; i < 3; i++) {
      const bytes = messagePackHubProtocol.encode({ type: 1, target: 'm', arguments: [shape, shape] });
      const [message] = officialMsgpack.parseMessages(toArrayBuffer(bytes), NullLogger.instance) as unknown as {
        arguments: unknown[];
      }[];
      assert.deepEqual(message?.arguments, [shape, shape]);
    }
  });

  test('VarInt prefix: the body length, one byte below 128, two from 128, three from 16384', () => {
    const seen = new Set<number>();
    const targetLengths = [0, 100, 2_100_000];
    for (const around of [127, 16_383]) for (let t = around - 12; t <= around; t++) targetLengths.push(t);
    for (const t of targetLengths) {
      const bytes = messagePackHubProtocol.encode({ type: 1, target: 'x'.repeat(t), arguments: [] });
      const [length, prefix] = readVarInt(bytes);
      assert.equal(length + prefix, bytes.length, 'the prefix is the body length');
      const expectedPrefix = length < 128 ? 1 : length < 16_384 ? 2 : length < 2_097_152 ? 3 : 4;
      assert.equal(prefix, expectedPrefix, `prefix size for a ${length}-byte body`);
      assert.deepEqual(bytes.subarray(0, prefix), varInt(length));
      seen.add(length);
    }
    // The boundaries themselves were exercised.
    for (const length of [127, 128, 16_383, 16_384]) assert.ok(seen.has(length), `a ${length}-byte body was tested`);
  });

  test('the exact VarInt bytes for 128 and 16384', () => {
    const find = (bodyLength: number) => {
      for (let t = bodyLength - 12; t <= bodyLength; t++) {
        const bytes = messagePackHubProtocol.encode({ type: 1, target: 'x'.repeat(t), arguments: [] });
        if (readVarInt(bytes)[0] === bodyLength) return bytes;
      }
      throw new Error(`no target length gives a ${bodyLength}-byte body`);
    };
    const at128 = find(128);
    assert.deepEqual([...at128.subarray(0, 2)], [0x80, 0x01]);
    assert.equal(at128.length, 130);
    const at16384 = find(16_384);
    assert.deepEqual([...at16384.subarray(0, 3)], [0x80, 0x80, 0x01]);
    assert.equal(at16384.length, 16_387);
  });
});

describe('MessagePack protocol: decode', () => {
  test('decodes what the official client writes', () => {
    const messages: ClientHubMessage[] = [
      { type: MessageType.Invocation, invocationId: '1', target: 'echo', arguments: [{ a: 'é' }], streamIds: [] },
      { type: MessageType.Invocation, target: 'send', arguments: [new Uint8Array([7, 8])], streamIds: ['s'] },
      { type: MessageType.StreamInvocation, invocationId: '2', target: 'countTo', arguments: [2] },
      { type: MessageType.StreamItem, invocationId: 's', item: 5 },
      { type: MessageType.Completion, invocationId: 's' },
      { type: MessageType.Completion, invocationId: '9', result: null },
      { type: MessageType.Completion, invocationId: '10', error: 'no handler' },
      { type: MessageType.CancelInvocation, invocationId: '2' },
      { type: MessageType.Ping },
      { type: MessageType.Close },
      { type: MessageType.Ack, sequenceId: 3 },
      { type: MessageType.Sequence, sequenceId: 70_000 },
    ];
    const bytes = Buffer.concat(messages.map((m) => Buffer.from(officialMsgpack.writeMessage(m))));
    const decoded = messagePackHubProtocol.createDecoder(0).push(bytes);
    assert.equal(decoded.length, messages.length);
    const [inv, send, streamInv, item, voidDone, nullDone, errDone, cancel, ping, close, ack, seq] =
      decoded as unknown as Record<string, unknown>[];
    assert.deepEqual(inv, {
      type: 1,
      headers: {},
      invocationId: '1',
      target: 'echo',
      arguments: [{ a: 'é' }],
      streamIds: undefined,
    });
    assert.equal(send?.invocationId, undefined, 'nil invocation id = non-blocking');
    assert.deepEqual(send?.streamIds, ['s']);
    assert.deepEqual(
      Array.from(((send?.arguments as unknown[] | undefined)?.[0] as Uint8Array | undefined) ?? []),
      [7, 8],
    );
    assert.deepEqual(streamInv, {
      type: 4,
      headers: {},
      invocationId: '2',
      target: 'countTo',
      arguments: [2],
      streamIds: undefined,
    });
    assert.deepEqual(item, { type: 2, headers: {}, invocationId: 's', item: 5 });
    assert.equal(voidDone?.hasResult, false);
    assert.equal(voidDone?.error, undefined);
    assert.equal(nullDone?.hasResult, true);
    assert.equal(nullDone?.result, null);
    assert.equal(errDone?.error, 'no handler');
    assert.equal(errDone?.hasResult, false);
    assert.deepEqual(cancel, { type: 5, headers: {}, invocationId: '2' });
    assert.deepEqual(ping, { type: 6 });
    assert.deepEqual(close, { type: 7, error: undefined, allowReconnect: false });
    assert.deepEqual(ack, { type: 8, sequenceId: 3 });
    assert.deepEqual(seq, { type: 9, sequenceId: 70_000 });
  });

  test('64-bit integers decode as numbers', () => {
    const body = Buffer.from([0x95, 0x01, 0x80, 0xc0, 0xa1, 0x74, 0x91, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0]);
    const [message] = messagePackHubProtocol.createDecoder(0).push(Buffer.concat([varInt(body.length), body]));
    assert.deepEqual((message as { arguments: unknown[] }).arguments, [2 ** 32]);
  });

  test('byte-by-byte delivery (prefix split too) yields each message once', () => {
    const bytes = Buffer.concat([
      framed([1, {}, '1', 'echo', ['z'.repeat(300)]]), // 2-byte prefix
      framed([6]),
    ]);
    const decoder = messagePackHubProtocol.createDecoder(0);
    const out: HubMessage[] = [];
    for (let i = 0; i < bytes.length; i++) out.push(...decoder.push(bytes.subarray(i, i + 1)));
    assert.equal(out.length, 2);
    assert.equal((out[0] as { arguments: string[] }).arguments[0]?.length, 300);
    assert.deepEqual(out[1], { type: 6 });
  });

  test('a `__proto__` map key neither pollutes Object.prototype nor re-prototypes the argument', () => {
    const str = (text: string) => [0xa0 + text.length, ...Buffer.from(text)];
    // [1, {}, nil, "t", [{"__proto__": {"polluted": "yes"}}]]
    const body = Buffer.from([
      0x95,
      0x01,
      0x80,
      0xc0,
      ...str('t'),
      0x91,
      0x81,
      ...str('__proto__'),
      0x81,
      ...str('polluted'),
      ...str('yes'),
    ]);
    const [message] = messagePackHubProtocol.createDecoder(0).push(Buffer.concat([varInt(body.length), body]));
    const arg = (message as { arguments: Record<string, unknown>[] }).arguments[0] as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(arg), Object.prototype);
    assert.equal(arg.polluted, undefined);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  test('unknown message types are skipped', () => {
    const decoded = messagePackHubProtocol.createDecoder(0).push(Buffer.concat([framed([42, 'future']), framed([6])]));
    assert.deepEqual(decoded, [{ type: 6 }]);
  });

  test('extra trailing array elements are ignored', () => {
    const [message] = messagePackHubProtocol.createDecoder(0).push(framed([5, {}, 'x', 'extra', 1]));
    assert.deepEqual(message, { type: 5, headers: {}, invocationId: 'x' });
  });

  test('malformed MessagePack bytes throw HW_ERR_INVALID_MESSAGE', () => {
    // A 3-byte body that claims an array of 2 but holds one element, then a truncated str.
    for (const body of [
      [0x92, 0x01],
      [0xa5, 0x61],
      [0xdc, 0xff],
    ]) {
      assertHubwireError(
        () => messagePackHubProtocol.createDecoder(0).push(Buffer.from([body.length, ...body])),
        'HW_ERR_INVALID_MESSAGE',
      );
    }
  });

  test('a zero-length message throws', () => {
    assertHubwireError(
      () => messagePackHubProtocol.createDecoder(0).push(Buffer.from([0x00])),
      'HW_ERR_INVALID_MESSAGE',
    );
  });

  test('a body that is not an array throws', () => {
    for (const value of [{ type: 1 }, 'text', 7, []]) {
      assertHubwireError(() => messagePackHubProtocol.createDecoder(0).push(framed(value)), 'HW_ERR_INVALID_MESSAGE');
    }
  });

  test('a non-integer message type throws', () => {
    assertHubwireError(() => messagePackHubProtocol.createDecoder(0).push(framed(['1', {}])), 'HW_ERR_INVALID_MESSAGE');
  });

  test('too few elements throw', () => {
    for (const value of [
      [1, {}, '1', 'echo'],
      [2, {}, 'id'],
      [3, {}, 'id'],
      [3, {}, 'id', 1],
      [3, {}, 'id', 3],
      [5, {}],
      [7],
      [8],
      [9],
    ]) {
      assertHubwireError(
        () => messagePackHubProtocol.createDecoder(0).push(framed(value)),
        'HW_ERR_INVALID_MESSAGE',
        undefined,
      );
    }
  });

  test('an unknown completion result kind throws', () => {
    assertHubwireError(
      () => messagePackHubProtocol.createDecoder(0).push(framed([3, {}, 'id', 4, 'x'])),
      'HW_ERR_INVALID_MESSAGE',
      /result kind/,
    );
  });

  test('a non-string target throws', () => {
    assertHubwireError(
      () => messagePackHubProtocol.createDecoder(0).push(framed([1, {}, '1', 12, []])),
      'HW_ERR_INVALID_MESSAGE',
      /target/,
    );
  });

  test('invalid VarInt: a fifth byte above 0x07 throws', () => {
    for (const prefix of [
      [0x80, 0x80, 0x80, 0x80, 0x08],
      [0xff, 0xff, 0xff, 0xff, 0xff],
      [0x80, 0x80, 0x80, 0x80, 0x80],
    ]) {
      assertHubwireError(
        () => messagePackHubProtocol.createDecoder(0).push(Buffer.from(prefix)),
        'HW_ERR_INVALID_MESSAGE',
        /2GB/,
      );
    }
  });

  test('a VarInt at the 5-byte maximum is a length (too large for any limit)', () => {
    const prefix = Buffer.from([0xff, 0xff, 0xff, 0xff, 0x07]);
    assert.deepEqual(messagePackHubProtocol.createDecoder(0).push(prefix), [], 'no limit: waits for the body');
    assertHubwireError(
      () => messagePackHubProtocol.createDecoder(32_768).push(prefix),
      'HW_ERR_MESSAGE_TOO_LARGE',
      /32768B/,
    );
  });

  test('an incomplete prefix waits for more bytes', () => {
    const decoder = messagePackHubProtocol.createDecoder(0);
    assert.deepEqual(decoder.push(Buffer.from([0x80])), []);
    assert.deepEqual(decoder.push(Buffer.from([0x80])), []);
  });

  test('size limit: checked on the prefix, before the body arrives', () => {
    const decoder = messagePackHubProtocol.createDecoder(1000);
    assertHubwireError(() => decoder.push(varInt(1001)), 'HW_ERR_MESSAGE_TOO_LARGE', /maximum message size of 1000B/);
  });

  test('size limit: a message that fits (with its prefix) is accepted, a larger one is refused', () => {
    const limit = 100;
    const make = (bodyLength: number) => {
      // 40+ characters: the string header (str8) keeps its size, so the body grows by one byte per character.
      const base = packr.pack([1, {}, null, 't', ['x'.repeat(40)]]).length;
      const body = packr.pack([1, {}, null, 't', ['x'.repeat(40 + bodyLength - base)]]);
      assert.equal(body.length, bodyLength);
      return Buffer.concat([varInt(body.length), body]);
    };
    assert.equal(messagePackHubProtocol.createDecoder(limit).push(make(limit - 1)).length, 1);
    assertHubwireError(
      () => messagePackHubProtocol.createDecoder(limit).push(make(limit + 1)),
      'HW_ERR_MESSAGE_TOO_LARGE',
    );
  });

  test('a limit of 0 means no limit', () => {
    const big = framed([1, {}, null, 't', ['x'.repeat(200_000)]]);
    assert.equal(messagePackHubProtocol.createDecoder(0).push(big).length, 1);
  });
});

describe('Handshake', () => {
  const request = (value: unknown) => Buffer.from(JSON.stringify(value) + RS);

  test('parses the request; bytes after the separator are returned', () => {
    const after = jsonFrame({ type: 6 });
    const result = parseHandshake(Buffer.concat([request({ protocol: 'json', version: 1 }), after]), 1000);
    assert.deepEqual(result?.request, { protocol: 'json', version: 1 });
    assert.deepEqual(result?.rest, after);
  });

  test('messagepack and version 2 are parsed, extra properties ignored', () => {
    const result = parseHandshake(request({ version: 2, protocol: 'messagepack', extra: [1] }), 1000);
    assert.deepEqual(result?.request, { protocol: 'messagepack', version: 2 });
    assert.equal(result?.rest.length, 0);
  });

  test('waits (undefined) until the separator arrives', () => {
    assert.equal(parseHandshake(Buffer.from('{"protocol":"json","vers'), 1000), undefined);
    assert.equal(parseHandshake(Buffer.alloc(0), 1000), undefined);
  });

  test('the first separator ends the request', () => {
    const result = parseHandshake(Buffer.from(`{"protocol":"json","version":1}${RS}garbage${RS}`), 1000);
    assert.deepEqual(result?.request, { protocol: 'json', version: 1 });
    assert.equal(result?.rest.toString(), `garbage${RS}`);
  });

  test('not JSON', () => {
    assertHubwireError(() => parseHandshake(Buffer.from(`hello${RS}`), 1000), 'HW_ERR_HANDSHAKE', /JSON/);
  });

  test('JSON that is not an object', () => {
    for (const value of [['json', 1], 'json', 1, null, true]) {
      assertHubwireError(() => parseHandshake(request(value), 1000), 'HW_ERR_HANDSHAKE', /object/);
    }
  });

  test('a missing or non-string protocol', () => {
    for (const value of [{ version: 1 }, { protocol: 1, version: 1 }, { protocol: null, version: 1 }]) {
      assertHubwireError(() => parseHandshake(request(value), 1000), 'HW_ERR_HANDSHAKE', /protocol/);
    }
  });

  test('a missing or non-integer version', () => {
    for (const value of [
      { protocol: 'json' },
      { protocol: 'json', version: '1' },
      { protocol: 'json', version: 1.5 },
      { protocol: 'json', version: null },
    ]) {
      assertHubwireError(() => parseHandshake(request(value), 1000), 'HW_ERR_HANDSHAKE', /version/);
    }
  });

  test('an over-long request without a separator fails without waiting for more', () => {
    assertHubwireError(
      () => parseHandshake(Buffer.from(`{"protocol":"json","version":1,"pad":"${'x'.repeat(2000)}`), 1000),
      'HW_ERR_HANDSHAKE',
      /maximum message size/,
    );
  });

  test('an over-long request with a separator fails', () => {
    assertHubwireError(
      () => parseHandshake(request({ protocol: 'json', version: 1, pad: 'x'.repeat(2000) }), 1000),
      'HW_ERR_HANDSHAKE',
      /maximum message size/,
    );
  });

  test('a short request followed by many message bytes is fine', () => {
    const tail = Buffer.from('x'.repeat(5000));
    const result = parseHandshake(Buffer.concat([request({ protocol: 'json', version: 1 }), tail]), 1000);
    assert.equal(result?.rest.length, 5000);
  });

  test('the replies', () => {
    assert.equal(HANDSHAKE_OK.toString(), `{}${RS}`);
    const error = handshakeError(`The protocol 'x' is not supported.`);
    assert.equal(error.toString(), `{"error":"The protocol 'x' is not supported."}${RS}`);
    const quoted = handshakeError('a "quoted"\nline');
    assert.equal(quoted[quoted.length - 1], RECORD_SEPARATOR);
    assert.deepEqual(JSON.parse(quoted.toString('utf8', 0, quoted.length - 1)), { error: 'a "quoted"\nline' });
  });
});

describe('Message validation', () => {
  const invalid = (raw: unknown, pattern?: RegExp) =>
    assertHubwireError(() => validateMessage(raw), 'HW_ERR_INVALID_MESSAGE', pattern);

  test('not an object', () => {
    for (const raw of [null, undefined, 1, 'x', [1]]) invalid(raw);
  });

  test('type must be an integer', () => {
    invalid({}, /type/);
    invalid({ type: '1' }, /type/);
    invalid({ type: 1.5 }, /type/);
    invalid({ type: null }, /type/);
  });

  test('unknown integer types are ignored (undefined)', () => {
    assert.equal(validateMessage({ type: 0 }), undefined);
    assert.equal(validateMessage({ type: 10 }), undefined);
    assert.equal(validateMessage({ type: 1000, anything: [] }), undefined);
  });

  test('invocation fields', () => {
    invalid({ type: 1, arguments: [] }, /target/);
    invalid({ type: 1, target: 't' }, /arguments/);
    invalid({ type: 1, target: 't', arguments: {} }, /arguments/);
    invalid({ type: 1, target: 't', arguments: [], invocationId: 5 }, /invocationId/);
    invalid({ type: 1, target: 't', arguments: [], streamIds: 's' }, /streamIds/);
    invalid({ type: 1, target: 't', arguments: [], streamIds: [1] }, /streamIds/);
    invalid({ type: 1, target: 't', arguments: [], headers: [] }, /headers/);
    invalid({ type: 1, target: 't', arguments: [], headers: { a: 1 } }, /header/);
    assert.deepEqual(validateMessage({ type: 1, target: 't', arguments: [], invocationId: null, streamIds: [] }), {
      type: 1,
      headers: undefined,
      invocationId: undefined,
      target: 't',
      arguments: [],
      streamIds: undefined,
    });
  });

  test('stream invocation requires an invocation id', () => {
    invalid({ type: 4, target: 't', arguments: [] }, /invocationId/);
    invalid({ type: 4, target: 't', arguments: [], invocationId: null }, /invocationId/);
  });

  test('stream item, completion and cancel require a string invocation id', () => {
    invalid({ type: 2, item: 1 }, /invocationId/);
    invalid({ type: 3 }, /invocationId/);
    invalid({ type: 3, invocationId: 3 }, /invocationId/);
    invalid({ type: 5 }, /invocationId/);
  });

  test('completion: error must be a string, and error and result are exclusive', () => {
    invalid({ type: 3, invocationId: '1', error: 5 }, /error/);
    invalid({ type: 3, invocationId: '1', error: 'x', result: 1 }, /exclusive/);
    assert.deepEqual(validateMessage({ type: 3, invocationId: '1', result: null }), {
      type: 3,
      headers: undefined,
      invocationId: '1',
      error: undefined,
      result: null,
      hasResult: true,
    });
  });

  test('close: allowReconnect must be a boolean when present', () => {
    invalid({ type: 7, allowReconnect: 'yes' }, /allowReconnect/);
    invalid({ type: 7, error: 1 }, /error/);
    assert.deepEqual(validateMessage({ type: 7, error: null, allowReconnect: null }), {
      type: 7,
      error: undefined,
      allowReconnect: false,
    });
  });

  test('ack and sequence need a non-negative integer', () => {
    for (const type of [8, 9]) {
      invalid({ type }, /sequenceId/);
      invalid({ type, sequenceId: -1 }, /sequenceId/);
      invalid({ type, sequenceId: 1.5 }, /sequenceId/);
      invalid({ type, sequenceId: '1' }, /sequenceId/);
      assert.deepEqual(validateMessage({ type, sequenceId: 0 }), { type, sequenceId: 0 });
    }
  });
});
