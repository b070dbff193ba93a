// The public surface of @hubwire/sqlite: the store, its options, and the URL entry points for backplaneFromUrl
// and the `hubwire install-schema` CLI.

export { pathFromUrl, type SqliteStoreOptions } from './options.js';
export { MAX_TABLE_COUNT, SCHEMA_VERSION } from './schema.js';
export { createStore, installSchema, SqliteStore } from './store.js';
