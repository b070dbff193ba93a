// The conformance suite on the in-process memory backplane.

import { Backplane, MemoryDatabase, MemoryStore } from 'hubwire';
import { runBackplaneConformance } from './backplane-suite.js';

const database = new MemoryDatabase();
runBackplaneConformance('memory', {
  createBackplane: () => new Backplane(new MemoryStore(database), { onError: () => {} }),
});
