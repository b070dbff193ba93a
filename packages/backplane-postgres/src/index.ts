// The public surface of @hubwire/postgres: the store, its options, and the URL entry points for backplaneFromUrl
// and the `hubwire install-schema` CLI.

export { MAX_TABLE_COUNT, SCHEMA_VERSION } from './schema.js';
export { createStore, installSchema, PostgresStore, type PostgresStoreOptions } from './store.js';
