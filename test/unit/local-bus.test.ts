// LocalBus, the in-process MessageBus of a single node: who receives a send for every audience (all, connections,
// groups, users, each with except), each recipient once, one shared message per send; group changes by connection
// id; a send to one connection waiting while that client is behind; client results (ids, answers, errors, the wrong
// connection answering, timeouts, abort signals, disconnects and close).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LocalBus } from '../../packages/hubwire/src/bus/local-bus.ts';
import type { Audience, BusConnection } from '../../packages/hubwire/src/bus/message-bus.ts';
import { ClientResultError, HubwireError } from '../../packages/hubwire/src/errors.ts';
import type { HubMessage } from '../../packages/hubwire/src/protocol/messages.ts';

type Serialized = Parameters<BusConnection['writeSerialized']>[0];

class FakeConnection implements BusConnection {
  readonly serialized: Serialized[] = [];
  readonly messages: HubMessage[] = [];
  readonly changes: string[] = [];
  /** What whenWritable returns (undefined: the client keeps up). */
  behind: Promise<void> | undefined;
  constructor(
    readonly connectionId: string,
    readonly userId: string | undefined = undefined,
  ) {}
  writeSerialized(message: Serialized): void {
    this.serialized.push(message);
  }
  writeMessage(message: HubMessage): void {
    this.messages.push(message);
  }
  whenWritable(): Promise<void> | undefined {
    return this.behind;
  }
  onGroupChange(group: string, added: boolean): void {
    this.changes.push(`${added ? '+' : '-'}${group}`);
  }
  /** The targets of what it received, in order. */
  get targets(): string[] {
    return this.serialized.map((s) => s.message.target);
  }
}

/** A bus with connections a (alice), b (alice), c (bob), d (anonymous); a and c in 'room', b and c in 'lobby'. */
async function setUp(options?: { clientResultTimeout?: number }) {
  const bus = new LocalBus(options);
  const a = new FakeConnection('a', 'alice');
  const b = new FakeConnection('b', 'alice');
  const c = new FakeConnection('c', 'bob');
  const d = new FakeConnection('d');
  for (const connection of [a, b, c, d]) await bus.onConnected(connection);
  await bus.addToGroup('a', 'room');
  await bus.addToGroup('c', 'room');
  await bus.addToGroup('b', 'lobby');
  await bus.addToGroup('c', 'lobby');
  return { bus, a, b, c, d, all: [a, b, c, d] };
}

/** Sends to the audience and returns which connections received it (each id once per message received). */
async function receivers(audience: Audience): Promise<string[]> {
  const { bus, all } = await setUp();
  await bus.send(audience, 'm', []);
  return all.flatMap((connection) => connection.serialized.map(() => connection.connectionId));
}

const codeOf = (code: string) => (error: unknown) => error instanceof HubwireError && error.code === code;

describe('LocalBus: audiences', () => {
  test('send writes one invocation message, shared by every recipient', async () => {
    const { bus, all } = await setUp();
    const args = [1, 'two', { three: 3 }];
    await bus.send({ all: true }, 'hello', args);
    for (const connection of all) assert.equal(connection.serialized.length, 1);
    const [first] = all[0]!.serialized;
    assert.deepEqual(first!.message, { type: 1, target: 'hello', arguments: args });
    for (const connection of all) assert.equal(connection.serialized[0], first, 'encoded once, for everyone');
    for (const connection of all) assert.deepEqual(connection.messages, [], 'nothing goes through writeMessage');
  });

  test('all', async () => {
    assert.deepEqual(await receivers({ all: true }), ['a', 'b', 'c', 'd']);
  });

  test('all except some', async () => {
    assert.deepEqual(await receivers({ all: true, except: ['b', 'd', 'unknown'] }), ['a', 'c']);
    assert.deepEqual(await receivers({ all: true, except: [] }), ['a', 'b', 'c', 'd']);
  });

  test('connections: each listed one once, unknown ids ignored', async () => {
    assert.deepEqual(await receivers({ connections: ['c'] }), ['c']);
    assert.deepEqual(await receivers({ connections: ['a', 'd', 'a', 'nobody'] }), ['a', 'd']);
    assert.deepEqual(await receivers({ connections: [] }), []);
    assert.deepEqual(await receivers({ connections: ['A'] }), [], 'connection ids are case-sensitive');
  });

  test('connections except', async () => {
    assert.deepEqual(await receivers({ connections: ['a', 'b', 'c'], except: ['b'] }), ['a', 'c']);
    assert.deepEqual(await receivers({ connections: ['a'], except: ['a'] }), []);
  });

  test('one group', async () => {
    assert.deepEqual(await receivers({ groups: ['room'] }), ['a', 'c']);
    assert.deepEqual(await receivers({ groups: ['empty'] }), []);
  });

  test('several groups: a member of more than one receives once', async () => {
    assert.deepEqual(await receivers({ groups: ['room', 'lobby'] }), ['a', 'b', 'c']);
    assert.deepEqual(await receivers({ groups: ['room', 'room'] }), ['a', 'c']);
    assert.deepEqual(await receivers({ groups: ['nothing', 'lobby'] }), ['b', 'c']);
    assert.deepEqual(await receivers({ groups: [] }), []);
  });

  test('groups except', async () => {
    assert.deepEqual(await receivers({ groups: ['room'], except: ['c'] }), ['a']);
    assert.deepEqual(await receivers({ groups: ['room', 'lobby'], except: ['c', 'a'] }), ['b']);
  });

  test('users: every connection of each user, each once', async () => {
    assert.deepEqual(await receivers({ users: ['alice'] }), ['a', 'b']);
    assert.deepEqual(await receivers({ users: ['alice', 'bob', 'alice'] }), ['a', 'b', 'c']);
    assert.deepEqual(await receivers({ users: ['carol'] }), []);
    assert.deepEqual(await receivers({ users: [] }), []);
  });

  test('users except', async () => {
    assert.deepEqual(await receivers({ users: ['alice', 'bob'], except: ['a'] }), ['b', 'c']);
  });

  test('an anonymous connection is reached by no user name', async () => {
    assert.deepEqual(await receivers({ users: ['', 'undefined'] }), []);
  });

  test('every recipient gets the sends in the order they were made', async () => {
    const { bus, a, c } = await setUp();
    await Promise.all([
      bus.send({ all: true }, 'one', []),
      bus.send({ groups: ['room'] }, 'two', []),
      bus.send({ connections: ['a'] }, 'three', []),
      bus.send({ users: ['bob'] }, 'four', []),
    ]);
    assert.deepEqual(a.targets, ['one', 'two', 'three']);
    assert.deepEqual(c.targets, ['one', 'two', 'four']);
  });

  test('deliver writes a given message to the audience, synchronously', async () => {
    const { bus, a, b, c } = await setUp();
    const message = { message: { type: 1, target: 'x', arguments: [] } } as unknown as Serialized;
    bus.deliver({ groups: ['lobby'] }, message);
    assert.deepEqual(a.serialized, []);
    assert.equal(b.serialized[0], message);
    assert.equal(c.serialized[0], message);
  });
});

describe('LocalBus: connections and groups', () => {
  test('a connection receives nothing before onConnected or after onDisconnected', async () => {
    const bus = new LocalBus();
    const a = new FakeConnection('a', 'alice');
    await bus.send({ all: true }, 'before', []);
    await bus.onConnected(a);
    await bus.addToGroup('a', 'room');
    await bus.send({ all: true }, 'during', []);
    await bus.onDisconnected(a);
    for (const audience of [
      { all: true },
      { connections: ['a'] },
      { groups: ['room'] },
      { users: ['alice'] },
    ] as const) {
      await bus.send(audience, 'after', []);
    }
    assert.deepEqual(a.targets, ['during']);
    assert.equal(bus.index.group('room'), undefined);
    assert.equal(bus.index.user('alice'), undefined);
  });

  test('addToGroup and removeFromGroup by connection id', async () => {
    const { bus, a, d } = await setUp();
    await bus.addToGroup('d', 'room');
    await bus.send({ groups: ['room'] }, 'with d', []);
    await bus.removeFromGroup('a', 'room');
    await bus.send({ groups: ['room'] }, 'without a', []);
    assert.deepEqual(a.targets, ['with d']);
    assert.deepEqual(d.targets, ['with d', 'without a']);
    assert.deepEqual(a.changes, ['+room', '-room']);
    assert.deepEqual(d.changes, ['+room']);
  });

  test('group changes of an unknown connection id are ignored', async () => {
    const { bus } = await setUp();
    await bus.addToGroup('ghost', 'room');
    await bus.removeFromGroup('ghost', 'lobby');
    await bus.removeFromGroup('d', 'room');
    assert.deepEqual(
      [...(bus.index.group('room') ?? [])].map((c) => c.connectionId),
      ['a', 'c'],
    );
  });

  test('restore registers a connection with its groups at once', async () => {
    const bus = new LocalBus();
    const a = new FakeConnection('a', 'alice');
    bus.restore(a, ['room', 'lobby']);
    await bus.send({ groups: ['lobby'] }, 'lobby', []);
    await bus.send({ users: ['alice'] }, 'alice', []);
    await bus.send({ connections: ['a'] }, 'a', []);
    assert.deepEqual(a.targets, ['lobby', 'alice', 'a']);
    assert.deepEqual([...(bus.index.groupsOfConnection(a) ?? [])].sort(), ['lobby', 'room']);
    // The index tells the connection about each group, as for addToGroup.
    assert.deepEqual(a.changes, ['+room', '+lobby']);
  });
});

describe('LocalBus: slow clients', () => {
  test('a send to one connection waits while that client is behind', async () => {
    const { bus, a } = await setUp();
    let release!: () => void;
    a.behind = new Promise<void>((resolve) => {
      release = resolve;
    });
    assert.equal(bus.whenWritable({ connections: ['a'] }), a.behind);
    let done = false;
    const sent = bus.send({ connections: ['a'] }, 'm', []).then(() => {
      done = true;
    });
    // Written at once, resolved only when the client caught up.
    assert.deepEqual(a.targets, ['m']);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(done, false);
    release();
    await sent;
    assert.equal(done, true);
  });

  test('a broadcast, or a send to several connections, never waits for a slow client', async () => {
    const { bus, a } = await setUp();
    a.behind = new Promise<void>(() => {}); // never catches up
    await bus.send({ all: true }, 'all', []);
    await bus.send({ connections: ['a', 'b'] }, 'two', []);
    await bus.send({ groups: ['room'] }, 'group', []);
    await bus.send({ users: ['alice'] }, 'user', []);
    assert.deepEqual(a.targets, ['all', 'two', 'group', 'user']);
    assert.equal(bus.whenWritable({ connections: ['a', 'b'] }), undefined);
    assert.equal(bus.whenWritable({ groups: ['room'] }), undefined);
    assert.equal(bus.whenWritable({ connections: ['nobody'] }), undefined);
  });

  test('a connection without whenWritable never holds a send', async () => {
    const bus = new LocalBus();
    const plain: BusConnection & { got: number } = {
      connectionId: 'p',
      userId: undefined,
      got: 0,
      writeSerialized() {
        this.got++;
      },
      writeMessage() {},
    };
    await bus.onConnected(plain);
    await bus.send({ connections: ['p'] }, 'm', []);
    assert.equal(plain.got, 1);
  });
});

describe('LocalBus: client results', () => {
  test('invokeConnection writes an invocation with a fresh r-prefixed id and resolves with the answer', async () => {
    const { bus, a, b } = await setUp();
    const first = bus.invokeConnection('a', 'getName', ['x']);
    const second = bus.invokeConnection('b', 'getName', []);
    assert.deepEqual(a.messages, [{ type: 1, invocationId: 'r1', target: 'getName', arguments: ['x'] }]);
    assert.deepEqual(b.messages, [{ type: 1, invocationId: 'r2', target: 'getName', arguments: [] }]);
    assert.deepEqual(a.serialized, [], 'only the asked connection gets it, through writeMessage');
    assert.equal(bus.setConnectionResult('b', { type: 3, invocationId: 'r2', result: 'bee' }), true);
    assert.equal(bus.setConnectionResult('a', { type: 3, invocationId: 'r1', result: { n: 1 } }), true);
    assert.deepEqual(await first, { n: 1 });
    assert.equal(await second, 'bee');
  });

  test('a completion without a result resolves with undefined', async () => {
    const { bus } = await setUp();
    const pending = bus.invokeConnection('a', 'void', []);
    bus.setConnectionResult('a', { type: 3, invocationId: 'r1' });
    assert.equal(await pending, undefined);
  });

  test('an error completion rejects with ClientResultError carrying the client message', async () => {
    const { bus } = await setUp();
    const pending = bus.invokeConnection('c', 'fail', []);
    assert.equal(bus.setConnectionResult('c', { type: 3, invocationId: 'r1', error: 'client says no' }), true);
    await assert.rejects(pending, (error: unknown) => {
      assert.ok(error instanceof ClientResultError);
      assert.equal(error.code, 'HW_ERR_CLIENT_RESULT');
      assert.equal(error.message, 'client says no');
      return true;
    });
  });

  test('only the connection that was asked may answer, and only once', async () => {
    const { bus } = await setUp();
    const pending = bus.invokeConnection('a', 'q', []);
    assert.equal(bus.setConnectionResult('b', { type: 3, invocationId: 'r1', result: 'forged' }), false);
    assert.equal(bus.setConnectionResult('a', { type: 3, invocationId: 'r9', result: 'unknown id' }), false);
    assert.equal(bus.setConnectionResult('a', { type: 3, invocationId: 'r1', result: 'real' }), true);
    assert.equal(bus.setConnectionResult('a', { type: 3, invocationId: 'r1', result: 'again' }), false);
    assert.equal(await pending, 'real');
  });

  test('invoking a connection that is not here rejects with HW_ERR_CONNECTION_NOT_FOUND', async () => {
    const { bus, a } = await setUp();
    await assert.rejects(bus.invokeConnection('ghost', 'q', []), codeOf('HW_ERR_CONNECTION_NOT_FOUND'));
    await bus.onDisconnected(a);
    await assert.rejects(bus.invokeConnection('a', 'q', []), codeOf('HW_ERR_CONNECTION_NOT_FOUND'));
  });

  test('the disconnect of a connection rejects its pending results, not those of others', async () => {
    const { bus, a } = await setUp();
    const ofA = bus.invokeConnection('a', 'q', []);
    const alsoOfA = bus.invokeConnection('a', 'q', []);
    const ofB = bus.invokeConnection('b', 'q', []);
    await bus.onDisconnected(a);
    await assert.rejects(ofA, codeOf('HW_ERR_CONNECTION_CLOSED'));
    await assert.rejects(alsoOfA, /Connection 'a' disconnected/);
    assert.equal(bus.setConnectionResult('b', { type: 3, invocationId: 'r3', result: 'still here' }), true);
    assert.equal(await ofB, 'still here');
  });

  test('close rejects every pending result', async () => {
    const { bus } = await setUp();
    const results = [bus.invokeConnection('a', 'q', []), bus.invokeConnection('c', 'q', [])];
    await bus.close();
    for (const result of results) await assert.rejects(result, codeOf('HW_ERR_CONNECTION_CLOSED'));
  });

  test('a result not answered in time rejects with HW_ERR_CLIENT_RESULT_TIMEOUT (per call or the default)', async () => {
    const { bus } = await setUp({ clientResultTimeout: 20 });
    const started = Date.now();
    await assert.rejects(bus.invokeConnection('a', 'slow', []), (error: unknown) => {
      assert.ok(codeOf('HW_ERR_CLIENT_RESULT_TIMEOUT')(error));
      assert.match((error as Error).message, /'a' did not answer 'slow' within 20 ms/);
      return true;
    });
    assert.ok(Date.now() - started >= 15);
    await assert.rejects(bus.invokeConnection('b', 'slow', [], { timeout: 5 }), /within 5 ms/);
    // A late answer finds nothing waiting.
    assert.equal(bus.setConnectionResult('a', { type: 3, invocationId: 'r1', result: 'late' }), false);
  });

  test('without a timeout a result waits as long as it takes', async () => {
    const { bus } = await setUp();
    const pending = bus.invokeConnection('a', 'q', []);
    await new Promise((resolve) => setTimeout(resolve, 30));
    bus.setConnectionResult('a', { type: 3, invocationId: 'r1', result: 'eventually' });
    assert.equal(await pending, 'eventually');
  });

  test('an abort signal rejects with its reason; an already aborted one sends nothing', async () => {
    const { bus, a, b } = await setUp();
    const controller = new AbortController();
    const pending = bus.invokeConnection('a', 'q', [], { signal: controller.signal });
    assert.equal(a.messages.length, 1);
    controller.abort(new Error('caller gave up'));
    await assert.rejects(pending, /caller gave up/);
    assert.equal(bus.setConnectionResult('a', { type: 3, invocationId: 'r1', result: 'late' }), false);

    await assert.rejects(
      bus.invokeConnection('b', 'q', [], { signal: AbortSignal.abort(new Error('too late')) }),
      /too late/,
    );
    assert.deepEqual(b.messages, [], 'an invocation aborted before it started is not written');
  });
});
