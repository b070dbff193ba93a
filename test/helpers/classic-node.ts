// Starts test/fixtures/classic-node.ts (the classic test hub, jQuery pages, and test-only routes) as a real child
// process on a backplane, and stops or kills it; drops a test schema afterwards.

import pg from 'pg';
import { type FixtureProcess, startFixture } from './node-process.js';

export interface ClassicNodeProcess extends FixtureProcess {
  port: number;
  nodeId: string;
  /** `http://127.0.0.1:<port>` */
  base: string;
}

export async function startClassicNodeProcess(args: string[], timeoutMs = 20_000): Promise<ClassicNodeProcess> {
  const node = await startFixture('classic-node.ts', args, timeoutMs);
  return { ...node, base: `http://127.0.0.1:${node.port}` };
}

export async function dropSchema(connectionString: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}
