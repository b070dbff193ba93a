// The public surface of @hubwire/postgres: the store, its options, and the schema installer for the CLI.

export { SCHEMA_VERSION } from './schema.js';
export { installSchema, PostgresStore, type PostgresStoreOptions } from './store.js';
