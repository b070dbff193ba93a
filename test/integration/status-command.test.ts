// `hubwire status <url>`: the cluster as the backplane's tables say, read without joining it (SQLite here: two
// backplanes in this process are the nodes). Its JSON agrees with the nodes' own view; an uninstalled database
// and an unreachable one get a clear error and exit code 1, never a stack trace.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Backplane, type BackplaneStatus, backplaneFromUrl } from 'hubwire';
import { waitFor } from '../helpers/wait.js';

const root = new URL('../..', import.meta.url).pathname;

function status(args: string[]) {
  const result = spawnSync(
    process.execPath,
    ['--conditions=hubwire-source', '--import', 'tsx', 'packages/hubwire/src/cli.ts', 'status', ...args],
    { cwd: root, encoding: 'utf8', timeout: 30_000 },
  );
  return { code: result.status, out: result.stdout, err: result.stderr };
}

describe('hubwire status', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hubwire-status-'));
  const url = `sqlite:${join(dir, 'hub.db')}`;
  let nodes: Backplane[] = [];

  before(async () => {
    nodes = await Promise.all(
      [0, 1].map(() => backplaneFromUrl(url, { heartbeatInterval: 100, nodeTimeout: 300, onError: () => {} })),
    );
    await Promise.all(nodes.map((node) => node.start()));
    for (let i = 0; i < 5; i++) await nodes[0]?.publish({ kind: 5, hub: 'status-test', data: i });
    await nodes[0]?.flush();
  });

  after(async () => {
    await Promise.all(nodes.map((node) => node.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  test('--json: the stream heads, and every node alive with its epoch, stream positions and lag', async () => {
    const [a, b] = nodes as [Backplane, Backplane];
    // Both nodes have delivered the five messages and said so in a heartbeat.
    await waitFor(
      () => {
        const read = status([url, '--json']);
        if (read.code !== 0) return false;
        const parsed = JSON.parse(read.out) as BackplaneStatus;
        return parsed.nodes.length === 2 && parsed.nodes.every((node) => node.lag === 0);
      },
      15_000,
      'a status with both nodes caught up',
    );
    const parsed = JSON.parse(status([url, '--json']).out) as BackplaneStatus;
    assert.equal(parsed.kind, 'sqlite');
    assert.equal(parsed.schema, 'hubwire');
    assert.equal(parsed.epoch, a.epoch);
    assert.equal(parsed.schemaVersion, 3);
    assert.deepEqual(parsed.streams, [{ stream: 0, head: a.positions()?.[0] }]);
    assert.ok((parsed.streams[0]?.head ?? 0) >= 1, 'the messages made at least one row');
    assert.deepEqual(parsed.nodes.map((node) => node.id).sort(), [a.nodeId, b.nodeId].sort());
    for (const node of parsed.nodes) {
      assert.equal(node.alive, true);
      assert.ok(node.heartbeatAgeMs < 5000);
    }
  });

  test('the text form: one line per node, and the heads', () => {
    const read = status([url]);
    assert.equal(read.code, 0, read.err);
    assert.match(read.out, /^sqlite backplane, schema hubwire \(version 3\), epoch \S+/);
    assert.match(read.out, /keeps 10000 rows \/ 60 s/);
    assert.match(read.out, /stream heads: 0: \d+/);
    assert.match(read.out, /nodes: 2 alive, 0 not/);
    for (const node of nodes) assert.match(read.out, new RegExp(`alive\\s+${node.nodeId}\\s+heartbeat`));
  });

  test('an uninstalled database and an unreachable one: a clear error, exit code 1, no stack trace', () => {
    const empty = status([`sqlite:${join(dir, 'empty.db')}`]);
    assert.equal(empty.code, 1);
    assert.match(empty.err, /Cannot read the sqlite backplane \(schema hubwire\)/);
    assert.doesNotMatch(empty.err, /^\s+at /m);
    const unreachable = status(['postgres://postgres@127.0.0.1:1/test']);
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.err, /Cannot read the postgres backplane/);
    assert.doesNotMatch(unreachable.err, /^\s+at /m);
  });
});
