// Request lines whose target `new URL()` rejects, sent on raw TCP to a real server: each must get a 400, not an
// exception (thrown from the `request` or `upgrade` listener it would be uncaught and end the process). The server
// runs in a child process here, so a crash shows up as a failed test instead of taking the test runner down; after the
// 400 the server must still serve other clients (`assertServerHealthy`).

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import { describe, test } from 'node:test';
import { delay } from '../../helpers/clients.js';
import { withTimeout } from '../../helpers/wait.js';
import { assertServerHealthy, type Target, WAIT } from '../../helpers/wire-client.js';

/** Per-test bound. */
const TEST = { timeout: 20_000 };

/** Starts the test server in a child process; resolves once it listens. */
async function startServerProcess(): Promise<{
  child: ChildProcess;
  target: Target;
  exited: Promise<number | null>;
  stderr: () => string;
}> {
  const root = new URL('../../../', import.meta.url);
  const helper = new URL('test/helpers/server.ts', root).href;
  const code = `const { startTestServer } = await import(${JSON.stringify(helper)});
const server = await startTestServer();
process.stdout.write(JSON.stringify({ port: server.port, url: server.url }) + '\\n');
process.stdin.on('end', () => server.close().then(() => process.exit(0)));
process.stdin.resume();`;
  const child = spawn(
    process.execPath,
    ['--conditions=hubwire-source', '--import', 'tsx', '--input-type=module', '-e', code],
    { cwd: root.pathname, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const target = await withTimeout(
    new Promise<Target>((resolve, reject) => {
      let out = '';
      child.stdout?.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const line = out.indexOf('\n');
        if (line !== -1) resolve(JSON.parse(out.slice(0, line)) as Target);
      });
      child.once('exit', (code) => reject(new Error(`the server process exited (${code}): ${stderr}`)));
    }),
    15_000,
    'starting the server process',
  );
  return { child, target, exited, stderr: () => stderr.slice(0, 600) };
}

/** Sends raw bytes on a fresh TCP connection; resolves with the status line of the reply ('' if none came). */
function rawRequest(port: number, text: string): Promise<string> {
  return withTimeout(
    new Promise<string>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.write(text));
      let reply = '';
      socket.on('data', (chunk: Buffer) => {
        reply += chunk.toString('latin1');
      });
      socket.on('error', () => {});
      socket.on('close', () => resolve(reply.split('\r\n')[0] ?? ''));
      socket.setTimeout(2000, () => socket.destroy());
    }),
    WAIT,
    'raw request',
  );
}

/** Runs `body` against a fresh server process, and stops that process afterwards. */
async function withServerProcess(body: (server: Awaited<ReturnType<typeof startServerProcess>>) => Promise<void>) {
  const server = await startServerProcess();
  try {
    await body(server);
  } finally {
    server.child.stdin?.end();
    const stopped = await Promise.race([server.exited.then(() => true), delay(3000).then(() => false)]);
    if (!stopped) server.child.kill();
  }
}

describe('a request target that URL parsing rejects gets a 400, and the server lives on', () => {
  // Neither is a valid request-target (RFC 9112 §3.2: '[' is not a path character; 'http://[' has no valid host).
  const targets = ['//[/test?id=x', 'http://[/test'];

  for (const target of targets) {
    test(`GET ${target} → 400, and the server lives on`, TEST, async () => {
      await withServerProcess(async (server) => {
        const status = await rawRequest(
          server.target.port,
          `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
        );
        await delay(100);
        assert.equal(server.child.exitCode, null, `the server process crashed: ${server.stderr()}`);
        assert.match(status, /^HTTP\/1\.1 400 /);
        await assertServerHealthy(server.target);
      });
    });

    test(`a WebSocket upgrade to ${target} → 400, and the server lives on`, TEST, async () => {
      await withServerProcess(async (server) => {
        const status = await rawRequest(
          server.target.port,
          `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
            'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
        );
        await delay(100);
        assert.equal(server.child.exitCode, null, `the server process crashed: ${server.stderr()}`);
        assert.match(status, /^HTTP\/1\.1 400 /);
        await assertServerHealthy(server.target);
      });
    });
  }
});
