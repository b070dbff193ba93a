// The public surface of @hubwire/mysql: the store, its options, and the URL entry points for backplaneFromUrl
// and the `hubwire install-schema` CLI.

export type { MysqlStoreOptions } from './options.js';
export { MAX_TABLE_COUNT, SCHEMA_VERSION, TableNames } from './schema.js';
export { createStore, installSchema, MysqlStore } from './store.js';
