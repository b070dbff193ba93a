// The store conformance suite on the in-process MemoryStore. A namespace is one MemoryDatabase, made with the
// stream count of the first store created on it. Where the MemoryStore departs from the BackplaneStore contract
// of the database stores, the suite's parts are skipped rather than weakened:
// - it does not validate stream numbers, ids, limits or publishers (a bad stream number fails with a TypeError
//   from the missing array, not a RangeError);
// - a MemoryDatabase has a fixed number of streams: a store with another tableCount cannot grow it;
// - it cannot be configured without push wake-ups (subscribe always resolves with a stop function);
// - it has no named namespace to validate.

import { MemoryDatabase, MemoryStore } from 'hubwire';
import { runStoreConformance, type StoreNamespace } from './store-suite.js';

interface MemoryNamespace extends StoreNamespace {
  database(): MemoryDatabase | undefined;
}

runStoreConformance<MemoryNamespace>('memory', {
  wakeups: true,
  validatesArguments: false,
  grows: false,
  disablesWakeups: false,
  fresh() {
    let database: MemoryDatabase | undefined;
    return {
      database: () => database,
      create(options = {}) {
        const tableCount = options.tableCount ?? 1;
        database ??= new MemoryDatabase(tableCount);
        if (database.streamCount !== tableCount) {
          throw new RangeError(`this MemoryDatabase has ${database.streamCount} streams, not ${tableCount}`);
        }
        return new MemoryStore(database);
      },
    };
  },
  async cleanup() {},
  async age(namespace, stream, throughId, ms) {
    const rows = namespace.database()!.streams[stream]!;
    for (const [index, row] of rows.entries()) {
      if (row.id <= throughId) rows[index] = { ...row, createdAt: row.createdAt - ms };
    }
  },
});
