// The conformance suite on the SQLite backplane: the three nodes share one database file in a temp directory
// (one connection each, as separate processes would have), woken by the WAL watch.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '@hubwire/sqlite';
import { Backplane } from 'hubwire';
import { runBackplaneConformance } from './backplane-suite.js';

const dir = mkdtempSync(join(tmpdir(), 'hubwire-sqlite-conformance-'));
const path = join(dir, 'hub.db');

runBackplaneConformance('sqlite', {
  createBackplane: () => new Backplane(new SqliteStore({ path }), { onError: () => {} }),
  cleanup: async () => rmSync(dir, { recursive: true, force: true }),
});
