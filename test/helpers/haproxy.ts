// A real HAProxy (Debian's /usr/sbin/haproxy) in front of test servers on 127.0.0.1, for tests that must not rely on
// sticky sessions. HTTP mode, round robin: every HTTP request is balanced on its own, also when the client reuses a
// keep-alive connection (HAProxy 2.x balances each request of a keep-alive connection unless `prefer-last-server` is
// set; `http-server-close` makes it explicit: a fresh server connection per request). WebSocket upgrades become
// tunnels; held long polls and streams get long timeouts; a dead server is found by health checks (every 200 ms) and,
// until then, a request whose connection it refuses is retried on another server (`redispatch`). HAProxy runs in the
// foreground as a child process and logs every request to its stdout, which is parsed into `requests`.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export const HAPROXY = '/usr/sbin/haproxy';

/** One request as HAProxy logged it (when it ended). */
export interface ProxiedRequest {
  /** Index in `backends` of the server that answered, or -1 (none: e.g. HAProxy answered 503 itself). */
  server: number;
  status: number;
  method: string;
  /** Path and query as the client sent them. */
  uri: string;
}

export interface HaproxyOptions {
  /** Ports of the servers, on 127.0.0.1. */
  backends: number[];
  /** `roundrobin` (default) or `source` (sticky by client address: every local client goes to one server). */
  balance?: 'roundrobin' | 'source';
  /**
   * Log each request as soon as the server's response headers arrive (`option logasap`) rather than when it ends:
   * a WebSocket upgrade (101) is then in `requests` while its tunnel is open, in the order the requests were answered.
   */
  logAsap?: boolean;
  /**
   * Pages HAProxy answers itself (path → HTML, each under HAProxy's 16 kB buffer), so that a browser loads them from
   * the proxy's origin, as the hub's own requests; they reach no server (logged with server -1).
   */
  pages?: Record<string, string>;
}

export interface Haproxy {
  /** The frontend's port on 127.0.0.1. */
  port: number;
  url: string;
  /** Every request logged so far, in the order they ended. */
  readonly requests: readonly ProxiedRequest[];
  /** What HAProxy printed on stderr (warnings, server state changes). */
  readonly stderr: string;
  /** Takes a server out of rotation (`maint`) or puts it back (`ready`) through the admin socket. */
  setServerState(index: number, state: 'ready' | 'drain' | 'maint'): Promise<string>;
  close(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function config(port: number, socket: string, options: HaproxyOptions, pageFiles: [string, string][]): string {
  return `global
  maxconn 2000
  stats socket ${socket} mode 600 level admin
  log stdout len 8192 format raw local0 info

defaults
  mode http
  log global
  log-format "%s %ST %HM %HU"
  # Each request is balanced on its own and gets a fresh server connection.
  option http-server-close
  # Server-Sent Events: without it an event waits ~200 ms in HAProxy (Nagle against the client's delayed ACK).
  option http-no-delay
  # A request whose server refuses the connection (dead, not yet found by the checks) goes to another one.
  option redispatch 1
  retries 3
  # A node dying as a request reaches it may accept the connection and reset it: HAProxy answers 502 unless it
  # retries. The official client tries a stateful reconnect once, so WebSocket upgrades are retried (only they: a
  # long poll or a POST may have taken effect before an empty answer; see the backend).
  retry-on conn-failure empty-response junk-response
  timeout connect 1s
  # Held long polls (110 s on the server), streams and WebSocket tunnels.
  timeout client 120s
  timeout server 120s
  timeout tunnel 120s
  timeout http-request 10s
  timeout http-keep-alive 120s
${options.logAsap ? '  option logasap\n' : ''}
frontend hub
  bind 127.0.0.1:${port}
${pageFiles.map(([path, file]) => `  http-request return status 200 content-type "text/html; charset=utf-8" file ${file} if { path ${path} }\n`).join('')}  default_backend nodes

backend nodes
  balance ${options.balance ?? 'roundrobin'}
  default-server check inter 200 fall 1 rise 2
  http-request disable-l7-retry unless { req.hdr(upgrade) -i websocket }
${options.backends.map((backend, i) => `  server n${i} 127.0.0.1:${backend}`).join('\n')}
`;
}

/** Starts HAProxy in front of `backends`; resolves once its frontend accepts connections. */
export async function startRoundRobin(options: HaproxyOptions, timeoutMs = 10_000): Promise<Haproxy> {
  if (!existsSync(HAPROXY)) throw new Error(`${HAPROXY} is missing: apt-get install -y haproxy`);
  if (options.backends.length === 0) throw new Error('startRoundRobin: no backends');
  const dir = await mkdtemp(join(tmpdir(), 'hubwire-haproxy-'));
  const admin = join(dir, 'admin.sock');
  const pageFiles = await Promise.all(
    Object.entries(options.pages ?? {}).map(async ([path, html], i): Promise<[string, string]> => {
      const file = join(dir, `page-${i}.html`);
      await writeFile(file, html);
      return [path, file];
    }),
  );
  let lastError: Error | undefined;
  // The frontend port is picked free, then bound by HAProxy: another process may take it in between; try again then.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const file = join(dir, 'haproxy.cfg');
    await writeFile(file, config(port, admin, options, pageFiles));
    const child = spawn(HAPROXY, ['-f', file, '-db'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const killOnExit = () => child.kill('SIGKILL');
    process.once('exit', killOnExit);
    const requests: ProxiedRequest[] = [];
    let stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      stderr += chunk;
    });
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const match = /^(\S+) (-?\d+) (\S+) (\S+)/.exec(line);
      if (!match) return;
      const [, server, status, method, uri] = match as unknown as [string, string, string, string, string];
      requests.push({
        server: /^n\d+$/.test(server) ? Number(server.slice(1)) : -1,
        status: Number(status),
        method,
        uri,
      });
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let running = true;
    void exited.then(() => {
      running = false;
    });
    const deadline = Date.now() + timeoutMs;
    while (running && Date.now() < deadline && !(await accepts(port))) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const close = async () => {
      process.off('exit', killOnExit);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
        await exited;
        clearTimeout(timer);
      }
    };
    if (running && (await accepts(port))) {
      return {
        port,
        url: `http://127.0.0.1:${port}`,
        requests,
        get stderr() {
          return stderr;
        },
        setServerState: (index, state) => adminCommand(admin, `set server nodes/n${index} state ${state}`),
        async close() {
          await close();
          await rm(dir, { recursive: true, force: true });
        },
      };
    }
    await close();
    lastError = new Error(`haproxy did not accept connections on ${port} within ${timeoutMs} ms: ${stderr}`);
  }
  await rm(dir, { recursive: true, force: true });
  throw lastError;
}

/** One command on HAProxy's admin socket; resolves with its answer. */
function adminCommand(socketPath: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      answer += chunk;
    });
    socket.once('error', reject);
    socket.once('close', () => resolve(answer.trim()));
    socket.setTimeout(5000, () => socket.destroy(new Error(`haproxy admin socket: no answer to '${command}'`)));
    socket.end(`${command}\n`);
  });
}
