// Stateful reconnect bookkeeping (PROTOCOL.md §6): outgoing trackable messages are numbered from 1 and kept until
// acked (cumulatively), sends past the byte limit wait for acks, a reconnect replays the unacked ones after a
// Sequence naming the oldest; incoming messages are counted so replayed duplicates are dropped.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ReconnectBuffer } from '../../packages/hubwire/src/hub/reconnect-buffer.ts';

const bytes = (label: string, size = label.length) => Buffer.from(label.padEnd(size, '.'));

describe('ReconnectBuffer: outgoing', () => {
  test('a fresh buffer announces Sequence(1) and replays nothing', () => {
    const buffer = new ReconnectBuffer(100);
    assert.deepEqual(buffer.replay(), { sequenceId: 1, messages: [] });
  });

  test('messages within the limit are written at once and numbered from 1', () => {
    const buffer = new ReconnectBuffer(100);
    const [a, b, c] = [bytes('a', 10), bytes('b', 10), bytes('c', 10)];
    assert.equal(buffer.add(a), true);
    assert.equal(buffer.add(b), true);
    assert.equal(buffer.add(c), true);
    // Nothing acked: the oldest unacked is 1, and everything is replayed in order.
    assert.deepEqual(buffer.replay(), { sequenceId: 1, messages: [a, b, c] });
    // Ack(2) frees 1 and 2: 3 is now the oldest.
    assert.deepEqual(buffer.ack(2), []);
    assert.deepEqual(buffer.replay(), { sequenceId: 3, messages: [c] });
  });

  test('ack is cumulative and everything acked leaves Sequence(next id)', () => {
    const buffer = new ReconnectBuffer(100);
    for (const label of ['a', 'b', 'c', 'd']) buffer.add(bytes(label));
    buffer.ack(4);
    assert.deepEqual(buffer.replay(), { sequenceId: 5, messages: [] });
    buffer.add(bytes('e'));
    assert.deepEqual(buffer.replay(), { sequenceId: 5, messages: [bytes('e')] });
  });

  test('an ack below or equal to what was already acked changes nothing', () => {
    const buffer = new ReconnectBuffer(100);
    const [a, b, c] = [bytes('a'), bytes('b'), bytes('c')];
    buffer.add(a);
    buffer.add(b);
    buffer.add(c);
    buffer.ack(2);
    assert.deepEqual(buffer.ack(1), []);
    assert.deepEqual(buffer.ack(2), []);
    assert.deepEqual(buffer.ack(0), []);
    assert.deepEqual(buffer.replay(), { sequenceId: 3, messages: [c] });
  });

  test('filling the limit exactly is allowed; past it, sends wait', () => {
    const buffer = new ReconnectBuffer(30);
    assert.equal(buffer.add(bytes('a', 10)), true);
    assert.equal(buffer.add(bytes('b', 20)), true, '30 of 30 bytes: not past the limit');
    assert.equal(buffer.add(bytes('c', 1)), false, '31 of 30 bytes: waits');
  });

  test('once one message waits, later ones wait too (order is kept), even if they would fit', () => {
    const buffer = new ReconnectBuffer(30);
    const a = bytes('a', 20);
    const big = bytes('big', 20);
    const tiny = bytes('t', 1);
    assert.equal(buffer.add(a), true);
    assert.equal(buffer.add(big), false);
    assert.equal(buffer.add(tiny), false, 'tiny would fit, but must not overtake big');
    // Ack(1) frees a: big and tiny go out, in order.
    assert.deepEqual(buffer.ack(1), [big, tiny]);
  });

  test('acks release waiting messages in order, as far as the limit allows', () => {
    const buffer = new ReconnectBuffer(30);
    const m = [bytes('1', 10), bytes('2', 10), bytes('3', 10), bytes('4', 10), bytes('5', 10), bytes('6', 10)];
    assert.deepEqual(
      m.map((b) => buffer.add(b)),
      [true, true, true, false, false, false],
    );
    assert.deepEqual(buffer.ack(1), [m[3]], 'one freed slot, one released');
    assert.deepEqual(buffer.ack(3), [m[4], m[5]]);
    assert.deepEqual(buffer.ack(6), []);
    assert.deepEqual(buffer.replay(), { sequenceId: 7, messages: [] });
  });

  test('a single message larger than the limit still goes out when nothing is in flight', () => {
    const buffer = new ReconnectBuffer(10);
    const huge = bytes('huge', 50);
    assert.equal(buffer.add(huge), true, 'otherwise the connection would stall for ever');
    assert.equal(buffer.add(bytes('next', 1)), false);
    assert.deepEqual(buffer.ack(1), [bytes('next', 1)]);
  });

  test('a large waiting message is released alone once everything before it is acked', () => {
    const buffer = new ReconnectBuffer(10);
    const a = bytes('a', 5);
    const huge = bytes('huge', 50);
    assert.equal(buffer.add(a), true);
    assert.equal(buffer.add(huge), false);
    assert.deepEqual(buffer.ack(1), [huge]);
  });

  test('replay: unacked messages written before the drop, oldest first, with their ids', () => {
    const buffer = new ReconnectBuffer(100);
    const m = ['1', '2', '3', '4', '5'].map((label) => bytes(label, 10));
    for (const b of m) buffer.add(b);
    buffer.ack(2);
    const replay = buffer.replay();
    assert.equal(replay.sequenceId, 3);
    assert.deepEqual(replay.messages, [m[2], m[3], m[4]]);
    // Replaying does not forget them: they are still unacked.
    assert.deepEqual(buffer.replay(), replay);
  });

  test('replay excludes messages still waiting for room', () => {
    const buffer = new ReconnectBuffer(20);
    const m = ['1', '2', '3'].map((label) => bytes(label, 10));
    for (const b of m) buffer.add(b);
    const replay = buffer.replay();
    assert.equal(replay.sequenceId, 1);
    assert.deepEqual(replay.messages, [m[0], m[1]], 'the third never fitted, it is not written yet');
    assert.deepEqual(buffer.ack(2), [m[2]]);
    assert.deepEqual(buffer.replay(), { sequenceId: 3, messages: [m[2]] });
  });
});

describe('ReconnectBuffer: incoming', () => {
  test('counts processed messages; takeAck reports the highest once', () => {
    const buffer = new ReconnectBuffer(100);
    assert.equal(buffer.takeAck(), undefined, 'nothing received, nothing to ack');
    assert.equal(buffer.shouldProcess(), true);
    assert.equal(buffer.shouldProcess(), true);
    assert.equal(buffer.shouldProcess(), true);
    assert.equal(buffer.takeAck(), 3);
    assert.equal(buffer.takeAck(), undefined, 'no repeat without something new');
    assert.equal(buffer.shouldProcess(), true);
    assert.equal(buffer.takeAck(), 4);
  });

  test('after Sequence(s) the replayed duplicates are dropped and new ones processed', () => {
    const buffer = new ReconnectBuffer(100);
    for (let i = 0; i < 5; i++) buffer.shouldProcess(); // 1..5 processed
    buffer.takeAck();
    buffer.waitingForSequence = true;
    // The client did not see our ack of 4 and 5: it replays from 4.
    assert.equal(buffer.onSequence(4), true);
    assert.equal(buffer.waitingForSequence, false);
    assert.equal(buffer.shouldProcess(), false, '4 again: duplicate');
    assert.equal(buffer.shouldProcess(), false, '5 again: duplicate');
    assert.equal(buffer.shouldProcess(), true, '6 is new');
    assert.equal(buffer.takeAck(), 6);
  });

  test('Sequence(next expected id) drops nothing', () => {
    const buffer = new ReconnectBuffer(100);
    buffer.shouldProcess();
    buffer.shouldProcess();
    assert.equal(buffer.onSequence(3), true);
    assert.equal(buffer.shouldProcess(), true);
    assert.equal(buffer.takeAck(), 3);
  });

  test('Sequence(1) on a connection that received nothing is fine', () => {
    const buffer = new ReconnectBuffer(100);
    assert.equal(buffer.onSequence(1), true);
    assert.equal(buffer.shouldProcess(), true);
  });

  test('Sequence above the next expected id is an error (a gap)', () => {
    const buffer = new ReconnectBuffer(100);
    buffer.shouldProcess();
    buffer.shouldProcess();
    assert.equal(buffer.onSequence(4), false, 'message 3 would be lost');
    const fresh = new ReconnectBuffer(100);
    assert.equal(fresh.onSequence(2), false);
  });

  test('Sequence from the very start replays everything as duplicates', () => {
    const buffer = new ReconnectBuffer(100);
    for (let i = 0; i < 3; i++) buffer.shouldProcess();
    assert.equal(buffer.onSequence(1), true);
    assert.deepEqual(
      [buffer.shouldProcess(), buffer.shouldProcess(), buffer.shouldProcess(), buffer.shouldProcess()],
      [false, false, false, true],
    );
  });

  test('two reconnects in a row keep counting', () => {
    const buffer = new ReconnectBuffer(100);
    for (let i = 0; i < 3; i++) buffer.shouldProcess(); // 1..3
    assert.equal(buffer.onSequence(2), true);
    assert.equal(buffer.shouldProcess(), false); // 2
    assert.equal(buffer.onSequence(3), true); // dropped again before 3 arrived
    assert.equal(buffer.shouldProcess(), false); // 3
    assert.equal(buffer.shouldProcess(), true); // 4
    assert.equal(buffer.takeAck(), 4);
  });

  test('incoming counting and outgoing numbering are independent', () => {
    const buffer = new ReconnectBuffer(100);
    buffer.add(bytes('out'));
    buffer.add(bytes('out2'));
    buffer.shouldProcess();
    assert.equal(buffer.takeAck(), 1);
    assert.deepEqual(buffer.replay().sequenceId, 1);
    buffer.ack(2);
    assert.equal(buffer.replay().sequenceId, 3);
    assert.equal(buffer.onSequence(2), true);
  });
});
