// MessageBuffer, the messages of one classic connection: numbered from 1, kept up to a capacity (the oldest dropped
// first) until acknowledged; a client re-polling with its cursor gets what it missed, in order, none twice, and
// lostAfter tells when some of that was dropped before it could have it. Checked by hand and against a plain model.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MessageBuffer } from '../../packages/hubwire/src/classic/message-buffer.ts';
import { resolveClassicOptions } from '../../packages/hubwire/src/classic/options.ts';

const message = (n: number) => Buffer.from(`m${n}`);
const texts = (buffers: Buffer[]) => buffers.map((b) => b.toString());

/** A buffer with messages m1..mN pushed. */
function filled(capacity: number, n: number): MessageBuffer {
  const buffer = new MessageBuffer(capacity);
  for (let i = 1; i <= n; i++) buffer.push(message(i));
  return buffer;
}

describe('MessageBuffer', () => {
  test('a fresh buffer has nothing, and nothing was lost', () => {
    const buffer = new MessageBuffer(10);
    assert.equal(buffer.last, 0);
    assert.deepEqual(buffer.after(0), []);
    assert.equal(buffer.lostAfter(0), false);
  });

  test('messages are numbered from 1; after(seq) gives those after seq, oldest first, the same buffers', () => {
    const buffer = new MessageBuffer(10);
    const pushed = [message(1), message(2), message(3)];
    assert.deepEqual(
      pushed.map((m) => buffer.push(m)),
      [1, 2, 3],
    );
    assert.equal(buffer.last, 3);
    const all = buffer.after(0);
    assert.deepEqual(texts(all), ['m1', 'm2', 'm3']);
    for (const [i, m] of all.entries()) assert.equal(m, pushed[i], 'the pushed buffer itself, not a copy');
    assert.deepEqual(texts(buffer.after(1)), ['m2', 'm3']);
    assert.deepEqual(texts(buffer.after(2)), ['m3']);
    assert.deepEqual(buffer.after(3), []);
    assert.deepEqual(buffer.after(100), [], 'a cursor past the end gets nothing');
    assert.deepEqual(texts(buffer.after(-5)), ['m1', 'm2', 'm3'], 'a cursor before the start gets everything');
    for (const seq of [0, 1, 2, 3, 7]) assert.equal(buffer.lostAfter(seq), false);
  });

  test('after() does not consume: asking twice gives the same', () => {
    const buffer = filled(10, 3);
    assert.deepEqual(texts(buffer.after(1)), texts(buffer.after(1)));
  });

  test('ack forgets every message up to seq; the numbering goes on', () => {
    const buffer = filled(10, 5);
    buffer.ack(2);
    assert.deepEqual(texts(buffer.after(2)), ['m3', 'm4', 'm5']);
    // An older cursor gets what is still kept: acked messages are gone.
    assert.deepEqual(texts(buffer.after(0)), ['m3', 'm4', 'm5']);
    buffer.ack(1); // below what was acked: nothing changes
    assert.deepEqual(texts(buffer.after(0)), ['m3', 'm4', 'm5']);
    buffer.ack(5);
    assert.deepEqual(buffer.after(0), []);
    assert.equal(buffer.last, 5);
    assert.equal(buffer.push(message(6)), 6);
    assert.deepEqual(texts(buffer.after(5)), ['m6']);
    assert.deepEqual(texts(buffer.after(0)), ['m6']);
  });

  test('ack past the newest message forgets everything, and later messages keep their numbers', () => {
    const buffer = filled(10, 3);
    buffer.ack(99);
    assert.deepEqual(buffer.after(0), []);
    assert.equal(buffer.last, 3);
    assert.equal(buffer.push(message(4)), 4);
    assert.deepEqual(texts(buffer.after(3)), ['m4']);
  });

  test('ack(0) and negative acks change nothing', () => {
    const buffer = filled(10, 2);
    buffer.ack(0);
    buffer.ack(-3);
    assert.deepEqual(texts(buffer.after(0)), ['m1', 'm2']);
  });

  test('past the capacity the oldest are dropped, and lostAfter says so for the cursors that missed them', () => {
    const buffer = filled(3, 5);
    assert.equal(buffer.last, 5);
    assert.deepEqual(texts(buffer.after(0)), ['m3', 'm4', 'm5']);
    assert.deepEqual(texts(buffer.after(3)), ['m4', 'm5']);
    // m1 and m2 are gone: a client at 0 or 1 lost something, one at 2 or later did not.
    assert.equal(buffer.lostAfter(0), true);
    assert.equal(buffer.lostAfter(1), true);
    assert.equal(buffer.lostAfter(2), false);
    assert.equal(buffer.lostAfter(4), false);
    assert.equal(buffer.lostAfter(5), false);
  });

  test('a capacity of 1 keeps only the newest', () => {
    const buffer = new MessageBuffer(1);
    for (let i = 1; i <= 4; i++) {
      assert.equal(buffer.push(message(i)), i);
      assert.deepEqual(texts(buffer.after(0)), [`m${i}`]);
    }
    assert.equal(buffer.lostAfter(2), true);
    assert.equal(buffer.lostAfter(3), false);
  });

  test('with everything acked or dropped, lostAfter compares with the newest number', () => {
    // Acked messages count as gone: only a cursor at (or past) the newest lost nothing.
    const buffer = filled(10, 4);
    buffer.ack(4);
    assert.equal(buffer.lostAfter(4), false);
    assert.equal(buffer.lostAfter(3), true);
    assert.equal(buffer.lostAfter(0), true);
    // Acking part of it: the acked ones count as gone for a cursor before them.
    const partly = filled(10, 4);
    partly.ack(2);
    assert.equal(partly.lostAfter(2), false);
    assert.equal(partly.lostAfter(1), true);
  });

  test('the ring grows past its first 16 slots and wraps around, keeping the order', () => {
    const buffer = new MessageBuffer(100);
    let next = 1;
    // Push 10, ack 8, so the start is not at slot 0 when the ring has to grow.
    for (; next <= 10; next++) buffer.push(message(next));
    buffer.ack(8);
    for (; next <= 60; next++) buffer.push(message(next));
    assert.deepEqual(
      texts(buffer.after(0)),
      Array.from({ length: 52 }, (_, i) => `m${i + 9}`),
    );
    // Fill to the capacity and beyond: the oldest go, the rest stay in order.
    for (; next <= 150; next++) buffer.push(message(next));
    assert.deepEqual(
      texts(buffer.after(0)),
      Array.from({ length: 100 }, (_, i) => `m${i + 51}`),
    );
    assert.deepEqual(texts(buffer.after(148)), ['m149', 'm150']);
  });

  test('agrees with a plain model under random pushes, acks and reads', () => {
    let seed = 12345;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    for (const capacity of [1, 2, 3, 15, 16, 17, 40]) {
      const buffer = new MessageBuffer(capacity);
      // The model: every message ever pushed, and the numbers still kept.
      let last = 0;
      let kept: number[] = [];
      for (let step = 0; step < 2000; step++) {
        const action = random(10);
        if (action < 6) {
          assert.equal(buffer.push(message(++last)), last);
          kept.push(last);
          if (kept.length > capacity) kept.shift();
        } else if (action < 8) {
          const seq = last - random(capacity + 3);
          buffer.ack(seq);
          kept = kept.filter((s) => s > seq);
        } else {
          const seq = last - random(capacity + 5);
          const expected = kept.filter((s) => s > seq);
          assert.deepEqual(
            texts(buffer.after(seq)),
            expected.map((s) => `m${s}`),
            `capacity ${capacity}, step ${step}`,
          );
          const lost = kept.length > 0 ? (kept[0] as number) > seq + 1 : last > seq;
          assert.equal(buffer.lostAfter(seq), lost, `lostAfter(${seq}), capacity ${capacity}, step ${step}`);
        }
        assert.equal(buffer.last, last);
      }
    }
  });

  test('a large capacity (messageBufferSize over ~120,000) fills past 65,536 messages', () => {
    const capacity = 200_000;
    const buffer = new MessageBuffer(capacity);
    for (let i = 1; i <= 70_000; i++) buffer.push(message(i));
    assert.equal(buffer.last, 70_000);
    assert.equal(buffer.after(69_998).length, 2);
  });

  test('messageBufferSize must be a whole number of at least 1 (the option is checked when the endpoint is mapped)', () => {
    for (const bad of [0, 1.5, -3, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(
        () => resolveClassicOptions({ messageBufferSize: bad }),
        /messageBufferSize' must be a whole number/,
      );
    }
    assert.equal(resolveClassicOptions({ messageBufferSize: 7 }).messageBufferSize, 7);
  });
});
