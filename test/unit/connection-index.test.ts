// ConnectionIndex: a node's local membership, kept both ways (group → connections, connection → groups) and
// user → connections. Adding and removing keeps the two sides in step, empty sets are dropped, the connection is
// told about each membership change exactly once, and a stale registration never evicts a newer one.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConnectionIndex } from '../../packages/hubwire/src/bus/connection-index.ts';
import type { BusConnection } from '../../packages/hubwire/src/bus/message-bus.ts';

class FakeConnection implements BusConnection {
  readonly changes: string[] = [];
  constructor(
    readonly connectionId: string,
    readonly userId: string | undefined = undefined,
  ) {}
  writeSerialized(): void {}
  writeMessage(): void {}
  onGroupChange(group: string, added: boolean): void {
    this.changes.push(`${added ? '+' : '-'}${group}`);
  }
}

const ids = (set: ReadonlySet<BusConnection> | undefined) => (set ? [...set].map((c) => c.connectionId).sort() : set);
const names = (set: ReadonlySet<string> | undefined) => (set ? [...set].sort() : set);

describe('ConnectionIndex: connections and users', () => {
  test('add registers a connection by id, and under its user when it has one', () => {
    const index = new ConnectionIndex();
    const alice1 = new FakeConnection('c1', 'alice');
    const alice2 = new FakeConnection('c2', 'alice');
    const anonymous = new FakeConnection('c3');
    for (const c of [alice1, alice2, anonymous]) index.add(c);
    assert.equal(index.connections.get('c1'), alice1);
    assert.equal(index.connections.get('c3'), anonymous);
    assert.equal(index.connections.size, 3);
    assert.deepEqual(ids(index.user('alice')), ['c1', 'c2']);
    assert.equal(index.user('bob'), undefined);
    // An anonymous connection is under no user, not even an empty-named one or 'undefined'.
    assert.equal(index.user(''), undefined);
    assert.equal(index.user('undefined'), undefined);
  });

  test('the empty string is a user id like any other', () => {
    const index = new ConnectionIndex();
    index.add(new FakeConnection('c1', ''));
    assert.deepEqual(ids(index.user('')), ['c1']);
  });

  test('user ids are case-sensitive', () => {
    const index = new ConnectionIndex();
    index.add(new FakeConnection('c1', 'Alice'));
    assert.equal(index.user('alice'), undefined);
    assert.deepEqual(ids(index.user('Alice')), ['c1']);
  });

  test('remove drops the connection and its user entry; the last one drops the user', () => {
    const index = new ConnectionIndex();
    const alice1 = new FakeConnection('c1', 'alice');
    const alice2 = new FakeConnection('c2', 'alice');
    index.add(alice1);
    index.add(alice2);
    index.remove(alice1);
    assert.equal(index.connections.has('c1'), false);
    assert.deepEqual(ids(index.user('alice')), ['c2']);
    index.remove(alice2);
    assert.equal(index.connections.size, 0);
    assert.equal(index.user('alice'), undefined);
  });

  test('removing a connection that was never added changes nothing', () => {
    const index = new ConnectionIndex();
    const kept = new FakeConnection('c1', 'alice');
    index.add(kept);
    index.addToGroup(kept, 'room');
    index.remove(new FakeConnection('c2', 'alice'));
    assert.equal(index.connections.get('c1'), kept);
    assert.deepEqual(ids(index.user('alice')), ['c1']);
    assert.deepEqual(ids(index.group('room')), ['c1']);
  });

  test('a stale registration removed after a newer one under the same id leaves the newer one in place', () => {
    // A connection that moved off this node and back: the old object is removed after the new one was added.
    const index = new ConnectionIndex();
    const old = new FakeConnection('c1', 'alice');
    index.add(old);
    index.addToGroup(old, 'room');
    const newer = new FakeConnection('c1', 'alice');
    index.add(newer);
    index.addToGroup(newer, 'room');
    index.remove(old);
    assert.equal(index.connections.get('c1'), newer);
    assert.deepEqual([...(index.user('alice') ?? [])], [newer]);
    assert.deepEqual([...(index.group('room') ?? [])], [newer]);
    assert.equal(index.groupsOfConnection(old), undefined);
    assert.deepEqual(names(index.groupsOfConnection(newer)), ['room']);
  });
});

describe('ConnectionIndex: groups', () => {
  test('addToGroup indexes both ways and tells the connection once', () => {
    const index = new ConnectionIndex();
    const a = new FakeConnection('a');
    const b = new FakeConnection('b');
    index.add(a);
    index.add(b);
    index.addToGroup(a, 'room');
    index.addToGroup(a, 'lobby');
    index.addToGroup(b, 'room');
    index.addToGroup(a, 'room'); // already a member: no second notice
    assert.deepEqual(ids(index.group('room')), ['a', 'b']);
    assert.deepEqual(ids(index.group('lobby')), ['a']);
    assert.deepEqual(names(index.groupsOfConnection(a)), ['lobby', 'room']);
    assert.deepEqual(names(index.groupsOfConnection(b)), ['room']);
    assert.deepEqual(a.changes, ['+room', '+lobby']);
    assert.deepEqual(b.changes, ['+room']);
  });

  test('group names are case-sensitive and the empty name is a group', () => {
    const index = new ConnectionIndex();
    const a = new FakeConnection('a');
    index.add(a);
    index.addToGroup(a, 'Room');
    index.addToGroup(a, '');
    assert.equal(index.group('room'), undefined);
    assert.deepEqual(ids(index.group('Room')), ['a']);
    assert.deepEqual(ids(index.group('')), ['a']);
  });

  test('a connection without onGroupChange can join and leave groups', () => {
    const index = new ConnectionIndex();
    const plain: BusConnection = {
      connectionId: 'p',
      userId: undefined,
      writeSerialized() {},
      writeMessage() {},
    };
    index.add(plain);
    index.addToGroup(plain, 'room');
    assert.deepEqual(ids(index.group('room')), ['p']);
    index.removeFromGroup(plain, 'room');
    assert.equal(index.group('room'), undefined);
  });

  test('removeFromGroup removes both ways, drops empty sets and tells the connection', () => {
    const index = new ConnectionIndex();
    const a = new FakeConnection('a');
    const b = new FakeConnection('b');
    index.add(a);
    index.add(b);
    index.addToGroup(a, 'room');
    index.addToGroup(b, 'room');
    index.addToGroup(a, 'lobby');
    index.removeFromGroup(a, 'room');
    assert.deepEqual(ids(index.group('room')), ['b']);
    assert.deepEqual(names(index.groupsOfConnection(a)), ['lobby']);
    index.removeFromGroup(a, 'lobby');
    assert.equal(index.group('lobby'), undefined, 'an emptied group is dropped');
    assert.equal(index.groupsOfConnection(a), undefined, 'a connection in no group has no entry');
    assert.deepEqual(a.changes, ['+room', '+lobby', '-room', '-lobby']);
  });

  test('removing a connection from a group it is not in changes nothing and tells no one', () => {
    const index = new ConnectionIndex();
    const a = new FakeConnection('a');
    const b = new FakeConnection('b');
    index.add(a);
    index.add(b);
    index.addToGroup(b, 'room');
    index.removeFromGroup(a, 'room');
    index.removeFromGroup(a, 'nowhere');
    index.removeFromGroup(b, 'nowhere');
    assert.deepEqual(ids(index.group('room')), ['b']);
    assert.deepEqual(a.changes, []);
    assert.deepEqual(b.changes, ['+room']);
    assert.equal(index.group('nowhere'), undefined);
  });

  test('leaving and joining again notifies each time', () => {
    const index = new ConnectionIndex();
    const a = new FakeConnection('a');
    index.add(a);
    index.addToGroup(a, 'room');
    index.removeFromGroup(a, 'room');
    index.removeFromGroup(a, 'room');
    index.addToGroup(a, 'room');
    assert.deepEqual(a.changes, ['+room', '-room', '+room']);
    assert.deepEqual(ids(index.group('room')), ['a']);
  });

  test('remove takes the connection out of every group, keeping the other members, without notices', () => {
    const index = new ConnectionIndex();
    const a = new FakeConnection('a', 'alice');
    const b = new FakeConnection('b');
    index.add(a);
    index.add(b);
    index.addToGroup(a, 'room');
    index.addToGroup(a, 'lobby');
    index.addToGroup(b, 'room');
    index.remove(a);
    assert.deepEqual(ids(index.group('room')), ['b']);
    assert.equal(index.group('lobby'), undefined);
    assert.equal(index.groupsOfConnection(a), undefined);
    assert.equal(index.user('alice'), undefined);
    // The connection is going away: it is not told about each group it leaves.
    assert.deepEqual(a.changes, ['+room', '+lobby']);
    // Joining again after a remove starts from nothing.
    index.add(a);
    index.addToGroup(a, 'room');
    assert.deepEqual(ids(index.group('room')), ['a', 'b']);
    assert.deepEqual(names(index.groupsOfConnection(a)), ['room']);
  });

  test('many connections and groups: every membership is found from both sides until removed', () => {
    const index = new ConnectionIndex();
    const connections = Array.from({ length: 20 }, (_, i) => new FakeConnection(`c${i}`, `u${i % 3}`));
    for (const c of connections) index.add(c);
    // Connection i joins the groups g(j) for every j dividing i + 1.
    const groupsOf = (i: number) => [1, 2, 3, 5].filter((j) => (i + 1) % j === 0).map((j) => `g${j}`);
    for (const [i, c] of connections.entries()) for (const g of groupsOf(i)) index.addToGroup(c, g);
    for (const [i, c] of connections.entries()) assert.deepEqual(names(index.groupsOfConnection(c)), groupsOf(i));
    for (const j of [1, 2, 3, 5]) {
      const expected = connections.filter((_, i) => (i + 1) % j === 0).map((c) => c.connectionId);
      assert.deepEqual(ids(index.group(`g${j}`)), expected.sort());
    }
    for (const c of connections) index.remove(c);
    assert.equal(index.connections.size, 0);
    for (const j of [1, 2, 3, 5]) assert.equal(index.group(`g${j}`), undefined);
    for (const u of ['u0', 'u1', 'u2']) assert.equal(index.user(u), undefined);
  });
});
