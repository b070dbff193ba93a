// Starts test fixtures (test/fixtures/*-node.ts) as real child processes that print JSON lines on stdout, and stops
// or kills them. startNodeProcess starts the hub node (hub-node.ts); classic-node.ts and publisher-node.ts have
// helpers of their own on top of startFixture.

import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/** A fixture process: its JSON lines on stdout can be waited for. */
export interface FixtureProcess {
  child: ChildProcess;
  /** Everything the process wrote to stderr (errors it recovered from). */
  stderr: string[];
  exited: Promise<number | null>;
  /** The first JSON line with `key`, or a rejection when the process exits or `timeoutMs` passes first. */
  waitForLine(key: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** SIGTERM, then SIGKILL after 5 s. */
  stop(): Promise<void>;
  kill(): Promise<void>;
}

export interface NodeProcess extends FixtureProcess {
  port: number;
  nodeId: string;
  url: string;
}

const root = new URL('../..', import.meta.url).pathname;

/** Spawns `test/fixtures/<fixture>` through tsx, with `hubwire` resolved to its sources. */
export function spawnFixture(
  fixture: string,
  args: string[],
  options: { stdin?: boolean; nodeArgs?: string[] } = {},
): FixtureProcess {
  const child = spawn(
    process.execPath,
    [
      ...(options.nodeArgs ?? []),
      '--conditions=hubwire-source',
      '--import',
      'tsx',
      `test/fixtures/${fixture}`,
      ...args,
    ],
    { cwd: root, stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] },
  );
  // Never outlive the test process.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const stderr: string[] = [];
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => stderr.push(chunk));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      process.off('exit', killOnExit);
      resolve(code);
    }),
  );
  const messages: Record<string, unknown>[] = [];
  const listeners = new Set<() => void>();
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    try {
      messages.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      return; // not ours
    }
    for (const listener of listeners) listener();
  });
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    child,
    stderr,
    exited,
    waitForLine(key, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const done = () => {
          clearTimeout(timer);
          listeners.delete(check);
          child.off('exit', onExit);
        };
        const check = () => {
          const found = messages.find((message) => key in message);
          if (found) {
            done();
            resolve(found);
          }
        };
        const onExit = (code: number | null) => {
          done();
          reject(new Error(`${fixture} exited with ${code} before '${key}': ${stderr.join('')}`));
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${fixture}: no '${key}' line in time: ${stderr.join('')}`));
        }, timeoutMs);
        listeners.add(check);
        child.once('exit', onExit);
        check();
      });
    },
    async stop() {
      if (!running()) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
    async kill() {
      if (!running()) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Spawns a fixture and waits for its ready line (`{"port":…,"nodeId":…}`); kills it when that never comes. */
export async function startFixture(
  fixture: string,
  args: string[],
  timeoutMs = 20_000,
  options: { stdin?: boolean; nodeArgs?: string[] } = {},
): Promise<FixtureProcess & { port: number; nodeId: string }> {
  const started = spawnFixture(fixture, args, options);
  try {
    const ready = await started.waitForLine('port', timeoutMs);
    return { ...started, port: ready.port as number, nodeId: String(ready.nodeId) };
  } catch (error) {
    await started.kill();
    throw error;
  }
}

export async function startNodeProcess(args: string[], timeoutMs = 20_000): Promise<NodeProcess> {
  const node = await startFixture('hub-node.ts', args, timeoutMs);
  return { ...node, url: `http://127.0.0.1:${node.port}/test` };
}

/** `count` hub nodes started together with the same arguments (one cluster). */
export function startNodeProcesses(count: number, args: string[]): Promise<NodeProcess[]> {
  return Promise.all(Array.from({ length: count }, () => startNodeProcess(args)));
}
