// `hubwire/backplane`: the entry point for store authors. Everything a BackplaneStore (a database package such as
// @hubwire/postgres) needs from hubwire: the store contract and its types, the argument and key validators, the
// memory store (a reference implementation and a test double), the key-store helpers, and the helpers the
// bundled stores share (options and their aliases, the onError wrapper, pooled connections, transactions, locks).
// The main `hubwire` entry keeps exporting the contract and validators it always did; this file adds nothing of
// its own, so both entries hand out the very same functions and classes.

export type { AppendResult, BackplaneStore, StoredKey, StoredRow } from './backplane-store.js';
export type { BackplanePackage, StoreUrlOptions } from './from-url.js';
export {
  KeyRing,
  type KeyRingOptions,
  type KeySource,
  type KeyStore,
  MAX_KEY_ID_LENGTH,
  MAX_KEY_PURPOSE_LENGTH,
  MAX_KEY_SECRET_BYTES,
  supportsKeys,
  validateKeyPurpose,
  validateKeyTime,
  validateStoredKey,
} from './key-ring.js';
export { MemoryDatabase, MemoryStore } from './memory-store.js';
export {
  MAX_NODE_ID_LENGTH,
  MAX_NODE_INFO_BYTES,
  type NodeRecord,
  type NodeStore,
  supportsNodes,
  validateNodeAge,
  validateNodeId,
  validateNodeInfo,
} from './node-registry.js';
export {
  asError,
  CONNECT_TIMEOUT_MS,
  type ConnectionLender,
  checkAppend,
  checkReadAfter,
  checkStream,
  checkTrim,
  DEFAULT_POOL_SIZE,
  DEFAULT_SCHEMA,
  errorReporter,
  type HeldLock,
  inTransaction,
  type Lease,
  MAX_TABLE_COUNT,
  optionWithAlias,
  type PooledStoreOptions,
  parseKeyTime,
  parseStoredId,
  type StoreOptions,
  TRIM_BLOCK_ROWS,
  type Transactional,
  validatePoolSize,
  validateSchemaName,
  validateTableCount,
  withConnection,
  withLock,
} from './store-support.js';
