// The public surface of @hubwire/postgres: the store, its options, and the URL entry points for backplaneFromUrl
// and the `hubwire install-schema` CLI.

export type { PostgresStoreOptions } from './options.js';
export { installSchema, MAX_TABLE_COUNT, SCHEMA_VERSION } from './schema.js';
export { createStore, PostgresStore } from './store.js';
