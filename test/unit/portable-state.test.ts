// The backplane side of a connection that may move between nodes (hub/moves/portable-state.ts): what it marks and
// records, what it counts as read back, and the checkpoints it publishes (only at points the client acknowledged).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ConnectionRecord } from '../../packages/hubwire/src/bus/connection-record.ts';
import { type Checkpoint, parseCheckpoint } from '../../packages/hubwire/src/hub/moves/checkpoint.ts';
import { PortableState } from '../../packages/hubwire/src/hub/moves/portable-state.ts';
import { ReconnectBuffer } from '../../packages/hubwire/src/hub/reconnect-buffer.ts';

function fixture() {
  const records: ConnectionRecord[] = [];
  const checkpoints: Checkpoint[] = [];
  let position = [10];
  let reject: Error | undefined;
  const failures: unknown[] = [];
  const state = new PortableState(
    {
      nodeId: 'node-1',
      positions: () => position,
      record: async (record) => {
        records.push(record);
        if (reject) throw reject;
      },
      checkpoint: (checkpoint) => checkpoints.push(checkpoint),
      failed: (error) => failures.push(error),
    },
    'c1',
    '/chat',
    'json',
  );
  return {
    state,
    records,
    checkpoints,
    failures,
    at: (id: number) => {
      position = [id];
    },
    rejectWith: (error: Error) => {
      reject = error;
    },
  };
}

describe('portable connection state', () => {
  test('client messages are marked, invocations tracked until their completion is read back', () => {
    const { state, records } = fixture();
    state.take(1, { type: 1, invocationId: '7', target: 'x', arguments: [] });
    state.take(2, { type: 1, target: 'fire', arguments: [] });
    assert.deepEqual(records, [
      { kind: 'mark', sequenceId: 1, invocationId: '7' },
      { kind: 'mark', sequenceId: 2, invocationId: undefined },
    ]);
    assert.deepEqual(state.runningHere(), ['7']);
    // Read back: counted only now.
    assert.equal(state.received, 0);
    for (const record of records.splice(0)) assert.equal(state.read(record), undefined);
    assert.equal(state.received, 2);
    assert.deepEqual([...state.open], ['7']);
    state.send({ type: 3, invocationId: '7', result: 1, hasResult: true });
    assert.deepEqual(state.runningHere(), []);
    const written = state.read(records[0] as ConnectionRecord);
    assert.deepEqual(written, { type: 3, invocationId: '7', result: 1, hasResult: true }, 'written when read back');
    assert.deepEqual([...state.open], []);
  });

  test('checkpoints only at points the client acknowledged, at most once a second', () => {
    const { state, checkpoints, at } = fixture();
    state.publishNow(0);
    assert.deepEqual(checkpoints.at(-1), {
      id: 'c1',
      node: 'node-1',
      hub: '/chat',
      protocol: 'json',
      seq: 0,
      position: [10],
      groups: [],
      received: 0,
      open: [],
    });
    const t0 = Date.now() + 5000;
    at(20);
    state.groupChanged('room', true);
    state.tick(t0, 5, 0); // the client has acknowledged nothing: no checkpoint
    assert.equal(checkpoints.length, 1);
    at(30);
    state.tick(t0 + 100, 9, 5); // acknowledged 5: the boundary at seq 5 (position 20) is published
    assert.equal(checkpoints.length, 2);
    assert.deepEqual(checkpoints.at(-1)?.position, [20]);
    assert.equal(checkpoints.at(-1)?.seq, 5);
    assert.deepEqual(checkpoints.at(-1)?.groups, ['room']);
    state.tick(t0 + 200, 9, 9); // within the second: none
    assert.equal(checkpoints.length, 2);
    state.tick(t0 + 1200, 9, 9);
    assert.equal(checkpoints.at(-1)?.seq, 9);
    assert.deepEqual(checkpoints.at(-1)?.position, [30]);
  });

  test('an idle connection moves its checkpoint on every 30 s (trims may pass an old one by)', () => {
    const { state, checkpoints, at } = fixture();
    state.publishNow(0);
    const t0 = Date.now();
    at(500);
    state.tick(t0 + 10_000, 0, 0);
    assert.equal(checkpoints.length, 1, 'nothing new yet');
    state.tick(t0 + 31_000, 0, 0);
    assert.equal(checkpoints.length, 2);
    assert.deepEqual(checkpoints.at(-1)?.position, [500]);
  });

  test('a record the backplane refuses is reported', async () => {
    const { state, failures, rejectWith } = fixture();
    rejectWith(new Error('queue full'));
    state.send({ type: 2, invocationId: '1', item: 1 });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal((failures[0] as Error).message, 'queue full');
  });

  test('starting from a checkpoint carries its counts, groups and open invocations', () => {
    const { state, checkpoints } = fixture();
    const checkpoint: Checkpoint = {
      id: 'c1',
      node: 'node-0',
      hub: '/chat',
      protocol: 'json',
      seq: 40,
      position: [7],
      groups: ['a', 'b'],
      received: 12,
      open: ['3'],
    };
    state.startFrom(checkpoint);
    assert.equal(state.received, 12);
    assert.deepEqual([...state.groups], ['a', 'b']);
    assert.deepEqual([...state.open], ['3']);
    state.adopt(checkpoint);
    assert.deepEqual(checkpoints.at(-1), { ...checkpoint, node: 'node-1' }, 'republished as this node');
  });
});

describe('checkpoints from notices', () => {
  test('well-formed ones are read, anything else is dropped', () => {
    const good = {
      id: 'c',
      node: 'n',
      hub: '/h',
      protocol: 'messagepack',
      seq: 1,
      position: [3],
      groups: [],
      received: 0,
      open: [],
    };
    assert.deepEqual(parseCheckpoint({ ...good, moves: 2 }), good);
    for (const bad of [
      null,
      'x',
      { ...good, seq: -1.5 },
      { ...good, position: [-1] },
      { ...good, groups: [1] },
      { ...good, open: 'x' },
      { ...good, id: 3 },
    ]) {
      assert.equal(parseCheckpoint(bad), undefined, JSON.stringify(bad));
    }
  });
});

describe('reconnect buffer for a connection that moved here', () => {
  test('continues the numbering, drops client messages already taken, acks no more than the backplane has', () => {
    const buffer = new ReconnectBuffer(1000);
    buffer.continueFrom(40, 12);
    assert.equal(buffer.waitingForSequence, true);
    assert.equal(buffer.lastSent, 40);
    assert.equal(buffer.acked, 40);
    buffer.add(Buffer.from('m'));
    assert.equal(buffer.lastSent, 41);
    buffer.taken(14);
    assert.equal(buffer.onSequence(13), true, 'the client resends from its first unacknowledged');
    assert.equal(buffer.shouldProcess(), false, '13 was taken on the other node');
    assert.equal(buffer.shouldProcess(), false, '14 too');
    assert.equal(buffer.shouldProcess(), true, '15 is new');
    assert.equal(buffer.takeAck(14), 14, 'acks only what the backplane has');
    assert.equal(buffer.takeAck(14), undefined);
    assert.equal(buffer.takeAck(), 15);
    buffer.ack(99);
    assert.equal(buffer.acked, 41, 'an ack past what was sent counts as what was sent');
  });
});
