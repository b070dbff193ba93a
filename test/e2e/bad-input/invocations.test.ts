// Bad invocations and stray messages after a good handshake, over real sockets against a real in-process server:
// unknown or forbidden methods, the wrong number of arguments, unknown message types, and replies to nothing. The
// server answers a call with an error (or ignores the message), and the connection stays usable.
// Each case checks the documented status, error or close, and then that the server still serves other clients
// (`assertServerHealthy`: an echo is answered and broadcasts between a JSON and a MessagePack client arrive intact).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { assertServerHealthy, HubSocket, RS } from '../../helpers/wire-client.js';

/** Per-test bound. */
const TEST = { timeout: 20_000 };

describe('a bad invocation is answered with an error and a stray message is ignored; the connection stays usable', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.close());

  test('an unknown method → Completion error, connection stays usable', TEST, async () => {
    for (const protocol of ['json', 'messagepack'] as const) {
      const socket = await HubSocket.connect(server, protocol);
      try {
        socket.invoke('1', 'noSuchMethod', []);
        await socket.expectError('1', /Unknown hub method 'noSuchMethod'/);
        socket.send({ type: 4, invocationId: '2', target: 'noSuchStream', arguments: [] });
        await socket.expectError('2', /Unknown hub method/);
        await socket.expectUsable();
      } finally {
        socket.close();
      }
    }
    await assertServerHealthy(server);
  });

  test('lifetime methods, the constructor, Object.prototype and hub state are not callable', TEST, async () => {
    const socket = await HubSocket.connect(server, 'json');
    try {
      const targets = ['constructor', 'onDisconnected', 'onConnected', 'toString', 'hasOwnProperty', '__proto__'];
      for (const [i, target] of [...targets, 'context', 'clients', 'ONDISCONNECTED'].entries()) {
        socket.invoke(`t${i}`, target, []);
        await socket.expectError(`t${i}`, /Unknown hub method/);
      }
      await socket.expectUsable();
    } finally {
      socket.close();
    }
  });

  test('an unknown method without an invocation id gets no answer', TEST, async () => {
    const socket = await HubSocket.connect(server, 'json');
    try {
      socket.send({ type: 1, target: 'noSuchMethod', arguments: [] });
      socket.send({ type: 1, target: 'add', arguments: [1] });
      // The next thing back is the echo's completion: nothing was said about the two calls above.
      await socket.expectUsable();
    } finally {
      socket.close();
    }
  });

  test('the wrong number of arguments → Completion error mentioning the count', TEST, async () => {
    for (const protocol of ['json', 'messagepack'] as const) {
      const socket = await HubSocket.connect(server, protocol);
      try {
        socket.invoke('few', 'add', [1]);
        await socket.expectError('few', /argument/);
        socket.invoke('many', 'echo', [1, 2]);
        await socket.expectError('many', /argument/);
        socket.invoke('none', 'add', []);
        await socket.expectError('none', /argument/);
        socket.send({ type: 4, invocationId: 'stream', target: 'countTo', arguments: [] });
        await socket.expectError('stream', /argument/);
        socket.invoke('right', 'add', [2, 3]);
        await socket.expectResult('right', 5);
      } finally {
        socket.close();
      }
    }
    await assertServerHealthy(server);
  });

  test('unknown message types are ignored, the connection stays usable', TEST, async () => {
    const json = await HubSocket.connect(server, 'json');
    try {
      json.raw.send(`{"type":99,"whatever":[1,2,3]}${RS}{"type":0}${RS}`);
      await json.expectUsable('json');
    } finally {
      json.close();
    }
    const msgpack = await HubSocket.connect(server, 'messagepack');
    try {
      // [99, "future"] framed with its length.
      msgpack.raw.send(Buffer.from([0x09, 0x92, 0x63, 0xa6, ...Buffer.from('future')]));
      await msgpack.expectUsable('msgpack');
    } finally {
      msgpack.close();
    }
    await assertServerHealthy(server);
  });

  test('a StreamItem, Completion or CancelInvocation for an unknown id is ignored', TEST, async () => {
    const socket = await HubSocket.connect(server, 'json');
    try {
      socket.send({ type: 2, invocationId: 'no-such-stream', item: 1 });
      socket.send({ type: 3, invocationId: 'no-such-stream' });
      socket.send({ type: 3, invocationId: 'no-such-call', result: 5 });
      socket.send({ type: 5, invocationId: 'no-such-call' });
      await socket.expectUsable();
    } finally {
      socket.close();
    }
    await assertServerHealthy(server);
  });

  test('Ack and Sequence on a connection without stateful reconnect are ignored', TEST, async () => {
    const socket = await HubSocket.connect(server, 'json');
    try {
      socket.send({ type: 8, sequenceId: 1000 });
      socket.send({ type: 9, sequenceId: 1000 });
      await socket.expectUsable();
    } finally {
      socket.close();
    }
  });

  test("the client's Close message ends the connection cleanly, without a Close back", TEST, async () => {
    const socket = await HubSocket.connect(server, 'json');
    try {
      socket.send({ type: 7 });
      assert.equal((await socket.raw.waitClosed()).code, 1000);
      assert.equal(socket.raw.frames.size, 0, 'nothing was sent back');
    } finally {
      socket.close();
    }
    await assertServerHealthy(server);
  });
});
