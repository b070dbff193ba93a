// `npm start`: the scaleout demo. Two chat nodes in separate processes on two ports share a backplane (an SQLite
// file under .data/ by default, or `--backplane postgres://…`); open one page on each and chat across them.
// Ctrl-C stops both.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

const root = new URL('../../..', import.meta.url).pathname;
const USAGE = `Usage: npm start -- [--backplane <url>] [--ports <a>,<b>] [--host <host>]

  --backplane  the backplane both nodes share: sqlite:<file> (default, a file under data/), postgres://… or mysql://…
  --ports      the two nodes' ports (default 5000,5001)
  --host       address to listen on (default 127.0.0.1)
  --help       this text`;

function parseCommandLine() {
  try {
    return parseArgs({
      options: {
        backplane: { type: 'string' },
        ports: { type: 'string', default: '5000,5001' },
        host: { type: 'string', default: '127.0.0.1' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
}

const values = parseCommandLine();
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

const ports = (values.ports ?? '').split(',').map(Number);
if (ports.length !== 2 || ports.some((p) => !Number.isInteger(p) || p <= 0 || p > 65535)) {
  console.error(`--ports takes two ports, e.g. 5000,5001 (got '${values.ports}').`);
  process.exit(2);
}
let backplane = values.backplane;
if (!backplane) {
  const dataDir = join(root, '.data');
  mkdirSync(dataDir, { recursive: true });
  backplane = `sqlite:${join(dataDir, 'chat.db')}`;
}

const children: ChildProcess[] = [];
let stopping = false;

function stopAll(code: number): void {
  if (stopping) return;
  stopping = true;
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
  const force = setTimeout(() => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  }, 5000);
  force.unref();
  Promise.all(children.map((c) => (c.exitCode !== null ? undefined : new Promise((r) => c.once('exit', r))))).then(() =>
    process.exit(code),
  );
}

const ready = ports.map(
  (port, index) =>
    new Promise<string>((resolve, reject) => {
      const name = `node ${index === 0 ? 'A' : 'B'} (port ${port})`;
      const child = spawn(
        process.execPath,
        [
          '--conditions=hubwire-source',
          '--import',
          'tsx',
          join(root, 'examples/chat/src/main.ts'),
          '--port',
          String(port),
          '--host',
          values.host as string,
          '--name',
          name,
          '--backplane',
          backplane as string,
        ],
        { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
      );
      children.push(child);
      createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
        if (line.startsWith('Hubwire chat listening on '))
          resolve(line.slice('Hubwire chat listening on '.length).split(' ')[0] as string);
        else console.log(`[${name}] ${line}`);
      });
      child.once('exit', (code) => {
        if (!stopping) {
          console.error(`${name} exited (${code}); stopping the demo.`);
          stopAll(1);
        }
        reject(new Error(`${name} exited`));
      });
    }),
);

process.on('SIGINT', () => stopAll(0));
process.on('SIGTERM', () => stopAll(0));

try {
  const urls = await Promise.all(ready);
  console.log(`\nHubwire chat demo: two nodes sharing ${backplane.replace(/\/\/[^@/]*@/, '//***@')}`);
  console.log(`  node A: ${urls[0]}`);
  console.log(`  node B: ${urls[1]}`);
  console.log(`  dashboard: ${urls[0]}hubwire (either node's shows both; from this machine only)`);
  console.log(`  metrics:   ${urls[0]}metrics and ${urls[1]}metrics (Prometheus; from this machine only)`);
  console.log('Open one page on each node and chat across them (add `classic` to a URL for the jQuery page).');
  console.log('Ctrl-C stops both.\n');
} catch {
  stopAll(1);
}
