// The store check both SQL stores' tests run after a database-specific writer took the next id in a transaction
// it has not committed yet: a concurrent append waits for it, readers skip nothing, and after COMMIT or ROLLBACK the
// ids are gap-free.

import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import type { BackplaneStore } from 'hubwire';

/** Settles within `ms` or reports which state it stayed in (a rejection counts as settled). */
export function settledWithin<T>(promise: Promise<T>, ms: number): Promise<'pending' | 'settled'> {
  return Promise.race([
    promise.then(
      () => 'settled' as const,
      () => 'settled' as const,
    ),
    delay(ms).then(() => 'pending' as const),
  ]);
}

/**
 * `store` has row 1 ('first') committed in stream 0 and another session holds row 2 ('late') uncommitted;
 * `end(outcome)` commits or rolls that session back.
 */
export async function checkLateCommit(
  store: BackplaneStore,
  outcome: 'COMMIT' | 'ROLLBACK',
  end: (outcome: 'COMMIT' | 'ROLLBACK') => Promise<unknown>,
): Promise<void> {
  const appending = store.append(0, 'p', 2, Buffer.from('after'));
  assert.equal(await settledWithin(appending, 300), 'pending', 'the append waits for the stream row');
  // Readers see neither the uncommitted row nor anything past the committed top.
  assert.equal(await store.top(0), 1);
  assert.deepEqual(
    (await store.readAfter(0, 0, 10)).map((row) => row.id),
    [1],
  );
  await end(outcome);
  const { id } = await appending;
  const read = await store.readAfter(0, 0, 10);
  if (outcome === 'COMMIT') {
    assert.equal(id, 3);
    assert.deepEqual(
      read.map((row) => [row.id, row.payload.toString()]),
      [
        [1, 'first'],
        [2, 'late'],
        [3, 'after'],
      ],
    );
  } else {
    assert.equal(id, 2, 'the rolled-back id is reused: no gap');
    assert.deepEqual(
      read.map((row) => [row.id, row.payload.toString()]),
      [
        [1, 'first'],
        [2, 'after'],
      ],
    );
  }
}
