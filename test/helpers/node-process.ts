// Starts Hubwire nodes as real child processes (test/fixtures/hub-node.ts) and stops or kills them.

import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface NodeProcess {
  port: number;
  nodeId: string;
  url: string;
  child: ChildProcess;
  /** Everything the node wrote to stderr (errors it recovered from). */
  stderr: string[];
  exited: Promise<number | null>;
  stop(): Promise<void>;
  kill(): Promise<void>;
}

const root = new URL('../..', import.meta.url).pathname;

export async function startNodeProcess(args: string[], timeoutMs = 20_000): Promise<NodeProcess> {
  const child = spawn(
    process.execPath,
    ['--conditions=hubwire-source', '--import', 'tsx', 'test/fixtures/hub-node.ts', ...args],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const stderr: string[] = [];
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => stderr.push(chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const ready = await new Promise<{ port: number; nodeId: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node did not start in time: ${stderr.join('')}`)), timeoutMs);
    lines.on('line', (line) => {
      try {
        const message = JSON.parse(line) as { port?: number; nodeId?: string };
        if (message.port) {
          clearTimeout(timer);
          resolve({ port: message.port, nodeId: message.nodeId as string });
        }
      } catch {
        // not ours
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`node exited with ${code} before it was ready: ${stderr.join('')}`));
    });
  });
  const node: NodeProcess = {
    ...ready,
    url: `http://127.0.0.1:${ready.port}/test`,
    child,
    stderr,
    exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
  return node;
}
