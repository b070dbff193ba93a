// The packages as a user gets them: builds the four workspaces, `npm pack`s them, installs the tarballs into a
// blank project outside the repo, and from plain `node` (no tsx, no source condition) runs a two-node chat over a
// shared SQLite file, once as an ES module and once as CommonJS, with the official client. Then a TypeScript
// consumer of `hubwire`, `hubwire/backplane` and the store packages type-checks against the installed types
// (moduleResolution node16, ESM and CommonJS files, and bundler). Needs the npm registry or its cache only.

import assert from 'node:assert/strict';
import { type SpawnSyncOptions, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const WORKSPACES = ['hubwire', '@hubwire/postgres', '@hubwire/sqlite', '@hubwire/mysql'];

/** The environment of the commands run here: without the npm settings of an enclosing `npm test` or node flags. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    const lower = key.toLowerCase();
    if (
      lower === 'node_options' ||
      (lower.startsWith('npm_') && !/^npm_config_(cache|registry|userconfig)$/.test(lower))
    ) {
      continue;
    }
    env[key] = value;
  }
  return { ...env, ...extra };
}

function run(command: string, args: string[], options: SpawnSyncOptions & { cwd: string }): string {
  const result = spawnSync(command, args, {
    encoding: 'utf8',
    env: cleanEnv(),
    maxBuffer: 64 * 1024 * 1024,
    timeout: 180_000,
    ...options,
  });
  const output = `${String(result.stdout ?? '')}${String(result.stderr ?? '')}`;
  if (result.error) throw new Error(`${command} ${args.join(' ')}: ${result.error.message}\n${output}`);
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited with ${result.status ?? result.signal}:\n${output}`);
  }
  return String(result.stdout ?? '');
}

const npm = (args: string[], cwd: string) => run('npm', args, { cwd });

function installedVersion(name: string): string {
  return (JSON.parse(readFileSync(join(repo, 'node_modules', name, 'package.json'), 'utf8')) as { version: string })
    .version;
}

// The chat, written as a user of the installed packages would; `header` imports them, the rest is the same for
// both module formats. `process.argv[2]` is the SQLite file; the official client comes from the repo's install.
const chatBody = (format: string) => `
const check = (ok, what) => {
  if (!ok) throw new Error('check failed: ' + what);
};

async function main() {
  const { Hub, Hubwire, backplaneFromUrl } = hubwire;
  check(hubwire.MemoryStore === kit.MemoryStore, 'hubwire and hubwire/backplane hand out the same MemoryStore');
  check(hubwire.validateTableCount === kit.validateTableCount, 'and the same validators');
  check(typeof kit.withConnection === 'function' && typeof kit.errorReporter === 'function', 'store helpers');
  check(typeof sqlite.SqliteStore === 'function' && typeof sqlite.createStore === 'function', '@hubwire/sqlite');

  class ChatHub extends Hub {
    send(name, message) {
      return this.clients.all.broadcastMessage(name, message);
    }
  }

  const url = 'sqlite:' + process.argv[2];
  const nodes = [];
  for (let i = 0; i < 2; i++) {
    const server = new Hubwire({ backplane: await backplaneFromUrl(url) });
    server.mapHub('/chat', ChatHub);
    nodes.push({ server, port: await server.listen(0, '127.0.0.1') });
  }

  const signalR = createRequire(process.env.HUBWIRE_REPO + '/package.json')('@microsoft/signalr');
  const connect = (port) =>
    new signalR.HubConnectionBuilder()
      .withUrl('http://127.0.0.1:' + port + '/chat')
      .configureLogging(signalR.LogLevel.Warning)
      .build();
  const sender = connect(nodes[0].port);
  const receiver = connect(nodes[1].port);
  const received = new Promise((resolve, reject) => {
    receiver.on('broadcastMessage', (name, message) => resolve([name, message]));
    setTimeout(() => reject(new Error('no message crossed the nodes within 15 s')), 15_000).unref();
  });
  await sender.start();
  await receiver.start();
  await sender.invoke('send', 'ada', 'hello from ${format}');
  const [name, message] = await received;
  check(name === 'ada' && message === 'hello from ${format}', 'the message that crossed: ' + name + ' ' + message);

  await sender.stop();
  await receiver.stop();
  for (const node of nodes) await node.server.close();
  const ours = (path) => /[\\\\/]node_modules[\\\\/](hubwire|@hubwire)[\\\\/]/.test(path);
  return {
    message,
    resolved,
    // CommonJS files of hubwire and its stores that were loaded (ES modules never show here).
    required: Object.keys(require.cache).filter(ours),
  };
}

main().then(
  (result) => {
    console.log(JSON.stringify(result));
    process.exit(0);
  },
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
`;

const ESM_CHAT = `import { createRequire } from 'node:module';
import * as hubwire from 'hubwire';
import * as kit from 'hubwire/backplane';
import * as sqlite from '@hubwire/sqlite';

const require = createRequire(import.meta.url);
const resolved = ['hubwire', 'hubwire/backplane', '@hubwire/sqlite'].map((name) => import.meta.resolve(name));
${chatBody('esm')}`;

const CJS_CHAT = `'use strict';
const { createRequire } = require('node:module');
const hubwire = require('hubwire');
const kit = require('hubwire/backplane');
const sqlite = require('@hubwire/sqlite');

const resolved = ['hubwire', 'hubwire/backplane', '@hubwire/sqlite'].map((name) => require.resolve(name));
${chatBody('cjs')}`;

// A TypeScript user's file: the README's hub, a store of each package, the store authors' entry. The last line
// must be an error: it proves the imports resolved to real types rather than to \`any\`.
const CONSUMER = `import { Hub, Hubwire, backplaneFromUrl, type BackplaneStore } from 'hubwire';
import { MemoryStore, type StoreOptions, validateTableCount, withConnection } from 'hubwire/backplane';
import { MysqlStore } from '@hubwire/mysql';
import { PostgresStore } from '@hubwire/postgres';
import { SqliteStore, type SqliteStoreOptions } from '@hubwire/sqlite';

interface ChatClient {
  broadcastMessage(name: string, message: string): void;
}

export class ChatHub extends Hub<ChatClient> {
  send(name: string, message: string): Promise<void> {
    return this.clients.all.broadcastMessage(name, message);
  }
}

const options: SqliteStoreOptions = { path: './hub.db', schema: 'hubwire', wakeups: true };
const common: StoreOptions = options;
export const stores: BackplaneStore[] = [
  new SqliteStore(options),
  new MemoryStore(),
  new PostgresStore({ connectionString: 'postgres://app@db/app', schema: 'hub', wakeups: false }),
  new MysqlStore({ connectionString: 'mysql://app@db/app', schema: 'hub', poolSize: common.tableCount ?? 2 }),
];

export async function start(): Promise<number> {
  const hubwire = new Hubwire({ backplane: await backplaneFromUrl('sqlite:./hub.db') });
  hubwire.mapHub('/chat', ChatHub);
  void withConnection;
  return hubwire.listen(validateTableCount(1) + 5000);
}

// @ts-expect-error: a function is not a number (and this line errs only if the types are real)
export const wrong: number = validateTableCount;
`;

describe('the packages as a user installs them', { timeout: 300_000 }, () => {
  let work: string;
  let app: string;
  /** Package name → its tarball. */
  const tarballs = new Map<string, string>();

  before(() => {
    work = mkdtempSync(join(tmpdir(), 'hubwire-packaging-'));
    app = join(work, 'app');
    mkdirSync(join(work, 'packs'));
    mkdirSync(app);
  });

  after(() => {
    if (work && !process.env.HUBWIRE_KEEP_PACKAGING) rmSync(work, { recursive: true, force: true });
  });

  test('npm run build builds all four packages, ES modules and CommonJS', () => {
    npm(['run', 'build'], repo);
    for (const dir of ['hubwire', 'backplane-postgres', 'backplane-sqlite', 'backplane-mysql']) {
      const dist = join(repo, 'packages', dir, 'dist');
      for (const file of ['index.js', 'index.d.ts', 'cjs/index.js', 'cjs/index.d.ts']) {
        assert.ok(existsSync(join(dist, file)), `${dir}/dist/${file}`);
      }
      assert.deepEqual(JSON.parse(readFileSync(join(dist, 'cjs', 'package.json'), 'utf8')), { type: 'commonjs' });
    }
  });

  test('npm pack: each tarball has both builds and its sources, and no build state', () => {
    const args = ['pack', '--ignore-scripts', '--json', '--pack-destination', join(work, 'packs')];
    const packed = JSON.parse(npm([...args, ...WORKSPACES.flatMap((name) => ['-w', name])], repo)) as {
      name: string;
      filename: string;
      files: { path: string }[];
    }[];
    assert.deepEqual(packed.map((p) => p.name).sort(), [...WORKSPACES].sort());
    for (const { name, filename, files } of packed) {
      const paths = new Set(files.map((f) => f.path));
      for (const path of ['package.json', 'dist/index.js', 'dist/index.d.ts', 'dist/cjs/index.js', 'src/index.ts']) {
        assert.ok(paths.has(path), `${name} packs ${path}`);
      }
      assert.ok(paths.has('dist/cjs/package.json'), `${name} packs dist/cjs/package.json`);
      assert.ok(![...paths].some((p) => p.endsWith('.tsbuildinfo')), `${name} packs no .tsbuildinfo`);
      tarballs.set(name, join(work, 'packs', filename));
    }
  });

  test('the tarballs install into a blank project', () => {
    // better-sqlite3 is the one native module: install scripts are skipped (compiling SQLite takes minutes) and
    // the repo's compiled addon of the same version is copied in, as its own install would have built it.
    const sqliteVersion = installedVersion('better-sqlite3');
    const dependencies: Record<string, string> = { 'better-sqlite3': sqliteVersion };
    for (const [name, tarball] of tarballs) dependencies[name] = `file:${tarball}`;
    writeFileSync(
      join(app, 'package.json'),
      `${JSON.stringify({ name: 'blank-app', version: '1.0.0', private: true, dependencies }, null, 2)}\n`,
    );
    npm(['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts'], app);
    const addon = join('build', 'Release', 'better_sqlite3.node');
    const target = join(app, 'node_modules', 'better-sqlite3');
    assert.equal(JSON.parse(readFileSync(join(target, 'package.json'), 'utf8')).version, sqliteVersion);
    mkdirSync(join(target, 'build', 'Release'), { recursive: true });
    copyFileSync(join(repo, 'node_modules', 'better-sqlite3', addon), join(target, addon));
    for (const name of WORKSPACES) assert.ok(existsSync(join(app, 'node_modules', name, 'dist', 'cjs', 'index.js')));
  });

  for (const [format, file, source] of [
    ['an ES module', 'chat.mjs', ESM_CHAT],
    ['CommonJS', 'chat.cjs', CJS_CHAT],
  ] as const) {
    test(`${format}: two nodes on one SQLite file, a message crosses them (plain node)`, () => {
      writeFileSync(join(app, file), source);
      const output = run(process.execPath, [file, join(work, `${file}.db`)], {
        cwd: app,
        env: cleanEnv({ HUBWIRE_REPO: repo }),
        timeout: 60_000,
      });
      const result = JSON.parse(output.trim().split('\n').at(-1) ?? '{}') as {
        message: string;
        resolved: string[];
        required: string[];
      };
      assert.match(result.message, /^hello from (esm|cjs)$/);
      // Everything comes from the blank project's node_modules, in one format: no second copy of hubwire.
      const installed = join(realpathSync(app), 'node_modules', sep);
      for (const where of result.resolved) {
        const path = where.startsWith('file:') ? fileURLToPath(where) : where;
        assert.ok(path.startsWith(installed), `${where} is in the blank project`);
        assert.equal(path.includes(`${join('dist', 'cjs')}`), file === 'chat.cjs', `${where} is the ${format} build`);
      }
      if (file === 'chat.mjs') {
        assert.deepEqual(result.required, [], 'an ES module app loads no CommonJS copy of hubwire');
      } else {
        assert.ok(
          result.required.every((path) => path.includes(join('dist', 'cjs'))),
          result.required.join('\n'),
        );
        // backplaneFromUrl loaded the store with require(): the CommonJS store, on the CommonJS hubwire.
        assert.ok(
          result.required.some((path) => path.includes(join('@hubwire', 'sqlite', 'dist', 'cjs'))),
          result.required.join('\n'),
        );
      }
    });
  }

  test('the hubwire bin: usage ends with a newline; install-schema on SQLite', () => {
    const bin = join(app, 'node_modules', '.bin', 'hubwire');
    const usage = run(bin, ['--help'], { cwd: app });
    assert.match(usage, /^Usage: hubwire install-schema .*\n {7}hubwire status .*\n$/);
    const installed = run(bin, ['install-schema', `sqlite:${join(work, 'cli.db')}`], { cwd: app });
    assert.match(installed, /^Schema installed: \{"epoch":"[0-9a-f-]{36}","version":\d+\}\n$/);
  });

  test('a TypeScript consumer type-checks: node16 (ESM and CommonJS files) and bundler resolution', () => {
    const base = {
      strict: true,
      noEmit: true,
      skipLibCheck: false,
      target: 'ES2022',
      lib: ['ES2022'],
      types: ['node'],
    };
    writeFileSync(join(app, 'consumer.mts'), CONSUMER);
    writeFileSync(join(app, 'consumer.cts'), CONSUMER);
    writeFileSync(join(app, 'consumer.ts'), CONSUMER);
    const configs = {
      'tsconfig.node16.json': {
        compilerOptions: { ...base, module: 'Node16', moduleResolution: 'Node16' },
        files: ['consumer.mts', 'consumer.cts'],
      },
      'tsconfig.bundler.json': {
        compilerOptions: { ...base, module: 'ESNext', moduleResolution: 'Bundler' },
        files: ['consumer.ts'],
      },
    };
    const tsc = join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
    for (const [name, config] of Object.entries(configs)) {
      writeFileSync(join(app, name), JSON.stringify(config, null, 2));
      run(process.execPath, [tsc, '-p', name], { cwd: app });
    }
  });
});
