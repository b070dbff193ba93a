// Starts test/fixtures/classic-node.ts (the classic test hub, jQuery pages, and test-only routes) as a real child
// process on a backplane, and stops or kills it; drops a test schema afterwards.

import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import pg from 'pg';

const root = new URL('../..', import.meta.url).pathname;

export interface ClassicNodeProcess {
  port: number;
  nodeId: string;
  /** `http://127.0.0.1:<port>` */
  base: string;
  child: ChildProcess;
  /** Everything the node wrote to stderr. */
  stderr: string[];
  exited: Promise<void>;
  /** SIGTERM (a clean close), SIGKILL after 5 s. */
  stop(): Promise<void>;
  /** SIGKILL: the node dies without a goodbye. */
  kill(): Promise<void>;
}

export async function startClassicNodeProcess(args: string[], timeoutMs = 20_000): Promise<ClassicNodeProcess> {
  const child = spawn(
    process.execPath,
    ['--conditions=hubwire-source', '--import', 'tsx', 'test/fixtures/classic-node.ts', ...args],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  // Never outlive the test process.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const stderr: string[] = [];
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => stderr.push(chunk));
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      process.off('exit', killOnExit);
      resolve();
    }),
  );
  const ready = await new Promise<{ port: number; nodeId: string }>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`classic node did not start within ${timeoutMs} ms: ${stderr.join('')}`));
    }, timeoutMs);
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      try {
        const message = JSON.parse(line) as { port?: number; nodeId?: string };
        if (message.port) {
          clearTimeout(timer);
          resolve({ port: message.port, nodeId: String(message.nodeId) });
        }
      } catch {
        // not ours
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`classic node exited with ${code} before it was ready: ${stderr.join('')}`));
    });
  });
  const alive = () => child.exitCode === null && child.signalCode === null;
  return {
    ...ready,
    base: `http://127.0.0.1:${ready.port}`,
    child,
    stderr,
    exited,
    async stop() {
      if (!alive()) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
    async kill() {
      if (!alive()) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
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
