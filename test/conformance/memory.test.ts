// The conformance suite on the in-process memory backplane.

import { MemoryDatabase, MemoryStore, ScaleoutEngine } from 'hubwire';
import { runBackplaneConformance } from './backplane-suite.js';

const database = new MemoryDatabase();
runBackplaneConformance('memory', {
  createBackplane: () => new ScaleoutEngine(new MemoryStore(database), { onError: () => {} }),
});
