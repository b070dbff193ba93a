// Malformed and oversize hub messages after a good handshake, over real sockets against a real in-process server:
// broken JSON and MessagePack, missing or mistyped fields, messages beyond the size limits, impossible sequence ids
// and deep nesting. The server answers with a Close message that says why, then closes cleanly.
// Each case checks the documented status, error or close, and then that the server still serves other clients
// (`assertServerHealthy`: an echo is answered and broadcasts between a JSON and a MessagePack client arrive intact).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import {
  assertServerHealthy,
  connUrl,
  HubSocket,
  type Json,
  negotiate,
  type Protocol,
  RawSocket,
  RS,
  request,
  startLongPolling,
  tokenOf,
  wsUrl,
} from '../../helpers/wire-client.js';

/** Per-test bound. */
const TEST = { timeout: 20_000 };

describe('a malformed or oversize hub message closes the connection with an error', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.close());

  async function closesWith(protocol: Protocol, payload: string | Buffer, pattern: RegExp): Promise<void> {
    const socket = await HubSocket.connect(server, protocol);
    try {
      socket.raw.send(payload);
      await socket.expectClose(pattern);
    } finally {
      socket.close();
    }
    await assertServerHealthy(server);
  }

  test('malformed JSON closes the connection', TEST, async () => {
    await closesWith('json', `{"type":1,"target":${RS}`, /invalid json/i);
  });

  test('a JSON message without `type` closes the connection', TEST, async () => {
    await closesWith('json', `{"target":"echo","arguments":[1],"invocationId":"1"}${RS}`, /'type'/);
  });

  test('an invocation with a non-string target closes the connection', TEST, async () => {
    await closesWith('json', `{"type":1,"invocationId":"1","target":42,"arguments":[]}${RS}`, /'target'/);
  });

  test('an invocation whose arguments are not an array closes the connection', TEST, async () => {
    await closesWith('json', `{"type":1,"invocationId":"1","target":"echo","arguments":"x"}${RS}`, /'arguments'/);
  });

  test('a second handshake after the first closes the connection', TEST, async () => {
    await closesWith('json', `{"protocol":"json","version":1}${RS}`, /'type'/);
  });

  test('malformed MessagePack bytes close the connection', TEST, async () => {
    // Length 2, then an array header announcing 2 elements with only one present.
    await closesWith('messagepack', Buffer.from([0x02, 0x92, 0x01]), /MessagePack/);
  });

  test('a MessagePack body that is not an array closes the connection', TEST, async () => {
    // Length 1, then the integer 5.
    await closesWith('messagepack', Buffer.from([0x01, 0x05]), /array/);
  });

  test('an invalid VarInt length prefix closes the connection', TEST, async () => {
    await closesWith('messagepack', Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80]), /2GB/);
  });

  test('a JSON message bigger than maximumReceiveMessageSize closes the connection', TEST, async () => {
    const big = JSON.stringify({ type: 1, invocationId: '1', target: 'echo', arguments: ['x'.repeat(40 * 1024)] });
    await closesWith('json', big + RS, /maximum message size of 32768B/);
  });

  test('a JSON message bigger than the limit, sent unterminated in pieces, closes the connection', TEST, async () => {
    const socket = await HubSocket.connect(server, 'json');
    try {
      const piece = `{"type":1,"target":"echo","arguments":["${'y'.repeat(10 * 1024)}`;
      socket.raw.send(piece);
      for (let i = 0; i < 3; i++) socket.raw.send('z'.repeat(10 * 1024));
      await socket.expectClose(/maximum message size of 32768B/);
    } finally {
      socket.close();
    }
    await assertServerHealthy(server);
  });

  test(
    'a MessagePack length prefix above maximumReceiveMessageSize closes the connection before the body',
    TEST,
    async () => {
      // 40000 as a VarInt: 0xC0 0xB8 0x02, and no body at all.
      await closesWith('messagepack', Buffer.from([0xc0, 0xb8, 0x02]), /maximum message size of 32768B/);
    },
  );

  test('a WebSocket frame beyond maxWebSocketFrameSize → close 1009', TEST, async () => {
    const small = await startTestServer({ maxWebSocketFrameSize: 16 * 1024, maximumReceiveMessageSize: 64 * 1024 });
    try {
      const socket = await HubSocket.connect(small, 'json');
      try {
        const frame = JSON.stringify({ type: 1, invocationId: '1', target: 'echo', arguments: ['x'.repeat(20_000)] });
        socket.raw.send(frame + RS);
        const closed = await socket.raw.waitClosed();
        assert.equal(closed.code, 1009);
      } finally {
        socket.close();
      }
      // Frames within the limit still work, on a new connection.
      const ok = await HubSocket.connect(small, 'json');
      try {
        ok.invoke('2', 'echo', ['y'.repeat(10_000)]);
        await ok.expectResult('2', 'y'.repeat(10_000));
      } finally {
        ok.close();
      }
      await assertServerHealthy(small);
    } finally {
      await small.close();
    }
  });

  test(
    'a message bigger than maximumReceiveMessageSize over long polling: Close with the size, then 204',
    TEST,
    async () => {
      const token = await startLongPolling(server);
      assert.equal(
        (await request('POST', connUrl(server, token), { body: `{"protocol":"json","version":1}${RS}` })).status,
        200,
      );
      assert.equal((await request('GET', connUrl(server, token, '&_=2'))).body, `{}${RS}`);
      const big = JSON.stringify({ type: 1, invocationId: '1', target: 'echo', arguments: ['x'.repeat(40 * 1024)] });
      assert.equal((await request('POST', connUrl(server, token), { body: big + RS })).status, 200);
      const poll = await request('GET', connUrl(server, token, '&_=3'));
      assert.equal(poll.status, 200);
      assert.ok(poll.body.endsWith(RS));
      const close = JSON.parse(poll.body.slice(0, -1)) as Json;
      assert.equal(close.type, 7);
      assert.match(close.error as string, /maximum message size of 32768B/);
      assert.equal((await request('GET', connUrl(server, token, '&_=4'))).status, 204);
      await assertServerHealthy(server);
    },
  );

  test('with stateful reconnect, a Sequence beyond what was received → Close', TEST, async () => {
    const negotiated = await negotiate(server, 'negotiateVersion=1&useStatefulReconnect=true');
    assert.equal(negotiated.useStatefulReconnect, true);
    const token = tokenOf(negotiated);
    const socket = new HubSocket(await RawSocket.open(wsUrl(server, token)), 'json', token);
    try {
      socket.raw.send(`{"protocol":"json","version":2}${RS}`);
      assert.deepEqual((await socket.handshakeReply()).value, {});
      socket.send({ type: 9, sequenceId: 5 });
      await socket.expectClose(/Sequence/);
    } finally {
      socket.close();
    }
    await assertServerHealthy(server);
  });

  test('deeply nested arguments neither crash nor hang the server', TEST, async () => {
    // JSON: 5000 levels parse, but cannot be serialized back.
    const json = await HubSocket.connect(server, 'json');
    try {
      const depth = 5000;
      json.raw.send(
        `{"type":1,"invocationId":"deep","target":"echo","arguments":[${'['.repeat(depth)}${']'.repeat(depth)}]}${RS}`,
      );
      const answer = await json.next();
      if (answer.type === 3) {
        assert.equal(answer.invocationId, 'deep');
        await json.expectUsable();
      } else {
        assert.equal(answer.type, 7, `expected a Completion or a Close, got ${JSON.stringify(answer).slice(0, 200)}`);
      }
    } finally {
      json.close();
    }
    // MessagePack: 20000 nested arrays in 20 kB, [1, {}, "deep", "echo", [[[...nil...]]]].
    const msgpack = await HubSocket.connect(server, 'messagepack');
    try {
      const body = Buffer.concat([
        Buffer.from([0x95, 0x01, 0x80, 0xa4, ...Buffer.from('deep'), 0xa4, ...Buffer.from('echo'), 0x91]),
        Buffer.alloc(20_000, 0x91),
        Buffer.from([0xc0]),
      ]);
      const prefix = [];
      for (let rest = body.length; ; ) {
        const byte = rest & 0x7f;
        rest >>= 7;
        prefix.push(rest > 0 ? byte | 0x80 : byte);
        if (rest === 0) break;
      }
      msgpack.raw.send(Buffer.concat([Buffer.from(prefix), body]));
      const answer = await msgpack.next();
      if (answer.type === 7) {
        assert.equal(typeof answer.error, 'string');
        assert.equal((await msgpack.raw.waitClosed()).code, 1000);
      } else {
        assert.equal(answer.type, 3, `expected a Completion or a Close, got type ${String(answer.type)}`);
        assert.equal(answer.invocationId, 'deep');
      }
    } finally {
      msgpack.close();
    }
    await assertServerHealthy(server);
  });
});
