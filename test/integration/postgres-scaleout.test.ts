// PostgreSQL scaleout end to end: three Hubwire nodes in separate processes on one database, official clients on
// each node; ordering against the stream's own order; and chaos: PostgreSQL restarted mid-stream, the LISTEN
// connection killed, a node killed with SIGKILL. Committed messages: 0 lost, 0 reordered, 0 duplicated.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { SCHEMA_VERSION } from '@hubwire/postgres';
import type * as signalR from '@microsoft/signalr';
import { backplaneFromUrl, Hubwire } from 'hubwire';
import pg from 'pg';
import { decodeBatch } from '../../packages/hubwire/src/backplane/envelope.js';
import { collect, delay, startClient } from '../helpers/clients.js';
import { type NodeProcess, startNodeProcess } from '../helpers/node-process.js';
import { TestHub } from '../helpers/test-hub.js';

const DATABASE_URL = process.env.HUBWIRE_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';

function restartPostgres(): void {
  const version = readdirSync('/etc/postgresql')[0] as string;
  execFileSync('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'restart', '-m', 'fast'], {
    stdio: 'ignore',
  });
}

async function query<T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> {
  for (let attempt = 0; ; attempt++) {
    const client = new pg.Client({ connectionString: DATABASE_URL });
    client.on('error', () => {});
    try {
      await client.connect();
      return (await client.query<T>(sql, params)).rows;
    } catch (error) {
      if (attempt >= 50) throw error;
      await delay(200); // the database may be restarting
    } finally {
      await client.end().catch(() => {});
    }
  }
}

describe('PostgreSQL scaleout across processes', () => {
  const schema = `hw_it_${process.pid}_${Date.now().toString(36)}`;
  const nodeArgs = ['--backplane', DATABASE_URL, '--schema', schema];
  let nodes: NodeProcess[] = [];
  const clients: signalR.HubConnection[] = [];
  const connect = async (node: NodeProcess, token?: string) => {
    const client = await startClient(node.url, { token });
    clients.push(client);
    return client;
  };

  before(async () => {
    // Three nodes start at once on a fresh schema: the install is raced.
    nodes = await Promise.all([0, 1, 2].map(() => startNodeProcess(nodeArgs)));
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.stop().catch(() => {})));
    await Promise.all(nodes.map((n) => n.stop()));
    await query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  });

  test('the raced install left one schema version and one epoch', async () => {
    const rows = await query<{ version: number; epoch: string }>(
      `SELECT version, epoch FROM "${schema}".schema_version`,
    );
    assert.equal(rows.length, 1);
    assert.equal(rows[0]?.version, SCHEMA_VERSION);
  });

  test('every addressing mode crosses processes', async () => {
    const [n0, n1, n2] = nodes as [NodeProcess, NodeProcess, NodeProcess];
    const a = await connect(n0, 'ann');
    const b = await connect(n1, 'bob');
    const c = await connect(n2, 'cid');
    const inbox = [a, b, c].map((x) => collect(x, 'message'));
    const groupInbox = [a, b, c].map((x) => collect<[string, string]>(x, 'groupMessage'));
    const [aId, , cId] = await Promise.all([a, b, c].map((x) => x.invoke<string>('getConnectionId')));
    await a.invoke('broadcast', 'all');
    await b.invoke('toClient', cId, 'client');
    await c.invoke('toUser', 'ann', 'user');
    await a.invoke('toOthers', 'others');
    await b.invoke('toAllExcept', aId, 'except');
    await a.invoke('joinGroup', 'g');
    await c.invoke('joinGroup', 'g');
    await b.invoke('toGroup', 'g', 'group');
    await c.invoke('toOthersInGroup', 'g', 'others-in-group');
    await inbox[0]?.waitFor(2);
    await inbox[1]?.waitFor(3);
    await inbox[2]?.waitFor(4);
    await groupInbox[0]?.waitFor(2);
    await groupInbox[2]?.waitFor(1);
    await delay(200);
    assert.deepEqual(inbox[0]?.items, ['all', 'user']);
    assert.deepEqual(inbox[1]?.items, ['all', 'others', 'except']);
    assert.deepEqual(inbox[2]?.items, ['all', 'client', 'others', 'except']);
    assert.deepEqual(
      groupInbox[0]?.items.map((m) => m[1]),
      ['group', 'others-in-group'],
    );
    assert.deepEqual(groupInbox[1]?.items, []);
    assert.deepEqual(
      groupInbox[2]?.items.map((m) => m[1]),
      ['group'],
    );
    // A client result from a client on another process.
    c.on('answer', (q: string) => `cid answers ${q}`);
    assert.equal(await a.invoke('askClient', cId, 'q'), 'cid answers q');
  });

  test('50 concurrent publishers with random commit delays: every receiver sees the stream order, once', async () => {
    // Commits take a random 0–5 ms while holding the stream's row lock: a reader must never skip a late one.
    await query(`CREATE OR REPLACE FUNCTION "${schema}".slow_commit() RETURNS trigger AS $$
      BEGIN PERFORM pg_sleep(random() * 0.005); RETURN NEW; END $$ LANGUAGE plpgsql`);
    await query(`CREATE TRIGGER slow_commit BEFORE INSERT ON "${schema}".messages_0
      FOR EACH ROW EXECUTE FUNCTION "${schema}".slow_commit()`);
    try {
      const group = 'ordering';
      const receivers = await Promise.all(nodes.map((n) => connect(n)));
      const inboxes = receivers.map((r) => collect<[string, number]>(r, 'groupMessage'));
      for (const r of receivers) await r.invoke('joinGroup', group);
      const { rows: before } = { rows: await query<{ top: string }>(`SELECT last_id AS top FROM "${schema}".streams`) };
      const publishers = await Promise.all(Array.from({ length: 50 }, (_, i) => connect(nodes[i % 3] as NodeProcess)));
      const perPublisher = 10;
      await Promise.all(
        publishers.map(async (p, s) => {
          for (let i = 0; i < perPublisher; i++) await p.invoke('toGroup', group, s * 1000 + i);
        }),
      );
      const total = publishers.length * perPublisher;
      const received = await Promise.all(inboxes.map((inbox) => inbox.waitFor(total, 20_000)));
      await delay(300);
      // The stream's own order, read back from the table.
      const rows = await query<{ id: string; payload: Buffer }>(
        `SELECT id, payload FROM "${schema}".messages_0 WHERE id > $1 ORDER BY id`,
        [before[0]?.top ?? 0],
      );
      const ids = rows.map((r) => Number(r.id));
      assert.deepEqual(
        ids,
        Array.from({ length: ids.length }, (_, i) => (ids[0] as number) + i),
        'ids are gap-free',
      );
      const streamOrder: number[] = [];
      for (const row of rows) {
        for (const envelope of decodeBatch(row.payload).envelopes) {
          if (envelope.kind === 1 && envelope.target === 'groupMessage' && envelope.args[0] === group) {
            streamOrder.push(envelope.args[1] as number);
          }
        }
      }
      assert.equal(streamOrder.length, total);
      for (const items of received) {
        assert.equal(items.length, total, 'exactly once');
        assert.deepEqual(
          items.map((m) => m[1]),
          streamOrder,
          'in id order',
        );
      }
    } finally {
      await query(`DROP TRIGGER IF EXISTS slow_commit ON "${schema}".messages_0`);
    }
  });

  test('chaos: PostgreSQL restart, LISTEN connection killed, a node SIGKILLed — nothing committed is lost', async () => {
    const group = 'chaos';
    const [n0, n1, n2] = nodes as [NodeProcess, NodeProcess, NodeProcess];
    // Receivers on nodes 0 and 1 (node 2 will be killed); publishers on every node.
    const receivers = [await connect(n0), await connect(n1)];
    const inboxes = receivers.map((r) => collect<[string, number]>(r, 'groupMessage'));
    for (const r of receivers) await r.invoke('joinGroup', group);
    const publishers = [await connect(n0), await connect(n1), await connect(n2), await connect(n0), await connect(n1)];
    const committed: number[][] = publishers.map(() => []);
    const failed: number[] = [];
    let running = true;
    // About 1k messages/s in all: 5 publishers, each a commit-acknowledged invoke every ~5 ms.
    const publishing = publishers.map(async (p, s) => {
      for (let i = 0; running; i++) {
        const value = s * 1_000_000 + i;
        try {
          await p.invoke('toGroup', group, value);
          committed[s]?.push(value);
        } catch {
          failed.push(value); // its node died (publisher 2) before answering: not known to be committed
          if (s === 2) return;
        }
        await delay(4);
      }
    });
    const count = () => committed.reduce((sum, list) => sum + list.length, 0);
    await delay(1500);
    const beforeRestart = count();
    restartPostgres();
    await delay(1500);
    await query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()`,
    );
    await delay(1000);
    await n2.kill();
    const beforeKill = count();
    await delay(1500);
    running = false;
    await Promise.all(publishing);
    const all = committed.flat();
    // Traffic in every phase (the rate depends on how busy the machine is; about 1k/s when idle).
    assert.ok(beforeRestart > 25, `traffic before the restart (${beforeRestart} committed)`);
    assert.ok(beforeKill - beforeRestart > 25, `traffic across the restart (${beforeKill - beforeRestart} committed)`);
    assert.ok(all.length - beforeKill > 25, `traffic after the kill (${all.length - beforeKill} committed)`);
    const deadline = Date.now() + 30_000;
    for (const inbox of inboxes) {
      const have = () => {
        const seen = new Set(inbox.items.map((m) => m[1]));
        return all.every((v) => seen.has(v));
      };
      while (!have() && Date.now() < deadline) await delay(100);
    }
    await delay(300);
    for (const [r, inbox] of inboxes.entries()) {
      const values = inbox.items.map((m) => m[1]);
      const seen = new Set(values);
      const lost = all.filter((v) => !seen.has(v));
      assert.equal(lost.length, 0, `receiver ${r} lost ${lost.length} committed messages`);
      assert.equal(values.length, seen.size, `receiver ${r} got duplicates`);
      for (let s = 0; s < publishers.length; s++) {
        const mine = values.filter((v) => Math.floor(v / 1_000_000) === s);
        const sorted = [...mine].sort((x, y) => x - y);
        assert.deepEqual(mine, sorted, `receiver ${r}: publisher ${s} reordered`);
      }
    }
    // The surviving nodes never died.
    assert.equal(n0.child.exitCode, null);
    assert.equal(n1.child.exitCode, null);
    assert.equal(await receivers[0]?.invoke('add', 1, 1), 2);
  });
});

describe('PostgreSQL backplane while the database is unreachable', () => {
  test('sends queue up to maxQueueLength, then fail with the documented error; the server keeps serving', async () => {
    const backplane = await backplaneFromUrl('postgres://postgres@127.0.0.1:1/none', {
      maxQueueLength: 3,
      retryDelay: { min: 50, max: 200 },
      onError: () => {},
    });
    const hubwire = new Hubwire({ backplane, onError: () => {} });
    const context = hubwire.mapHub('/test', TestHub, { enableDetailedErrors: true });
    const port = await hubwire.listen(0);
    try {
      const queued = [1, 2, 3].map((i) => context.clients.all.send('message', i));
      // They stay queued until close() rejects them.
      for (const pending of queued) pending.catch(() => {});
      await assert.rejects(context.clients.all.send('message', 4), {
        code: 'HW_ERR_BACKPLANE_UNAVAILABLE',
        message: /send queue is full \(3 messages\)/,
      });
      for (let i = 0; i < 100 && backplane.stats().streams[0]?.state !== 'buffering'; i++) await delay(20);
      assert.equal(backplane.stats().streams[0]?.state, 'buffering');
      // A client still connects and gets the error through its invocation.
      const client = await startClient(`http://127.0.0.1:${port}/test`);
      await assert.rejects(client.invoke('broadcast', 'x'), /send queue is full/);
      assert.equal(await client.invoke('add', 2, 2), 4);
      await client.stop();
      // Every transport still starts: with the shared keys unreadable, tokens are this node's alone (no claims to
      // commit, no stream heads to read first).
      for (const transport of ['ServerSentEvents', 'LongPolling'] as const) {
        const other = await startClient(`http://127.0.0.1:${port}/test`, { transport });
        assert.equal(await other.invoke('add', 1, 2), 3, transport);
        await other.stop();
      }
      await hubwire.close();
      await Promise.allSettled(queued);
    } finally {
      await hubwire.close();
    }
  });
});
