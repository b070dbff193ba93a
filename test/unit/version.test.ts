// The version Hubwire reports (the node registry, `hubwire status`) is the one its package.json publishes.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { VERSION } from 'hubwire';

test("VERSION is packages/hubwire/package.json's version", () => {
  const pkg = JSON.parse(readFileSync(new URL('../../packages/hubwire/package.json', import.meta.url), 'utf8'));
  assert.equal(VERSION, pkg.version);
});
