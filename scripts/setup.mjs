// Makes a fresh clone ready: installs npm dependencies when missing or stale, and (for the tests) Debian's
// Chromium for the browser tests and HAProxy for the no-sticky-sessions tests. Runs before `npm start` and
// `npm test`, so each is one command on a fresh machine. Uses nothing but Node itself, because nothing else is
// installed yet.

import { execSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const forTests = process.argv.includes('--tests');

function run(command) {
  console.log(`[setup] ${command}`);
  execSync(command, { cwd: root, stdio: 'inherit' });
}

// npm dependencies: the hidden lockfile npm writes into node_modules is older than package-lock.json when stale.
const installed = join(root, 'node_modules', '.package-lock.json');
const lock = join(root, 'package-lock.json');
if (!existsSync(installed) || statSync(installed).mtimeMs < statSync(lock).mtimeMs) {
  run('npm ci --no-audit --no-fund');
}

// Debian packages the tests use: Chromium (browser tests) and HAProxy (a round-robin balancer in front of nodes).
const debian = forTests
  ? [
      ['/usr/bin/chromium', 'chromium'],
      ['/usr/sbin/haproxy', 'haproxy'],
    ]
      .filter(([path]) => !existsSync(path))
      .map(([, name]) => name)
  : [];
if (debian.length > 0) {
  if (process.getuid?.() === 0) {
    run('apt-get update -qq');
    run(`DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${debian.join(' ')}`);
  } else {
    console.error(
      `[setup] The tests need Debian's ${debian.join(' and ')}: sudo apt-get install -y ${debian.join(' ')}`,
    );
    process.exit(1);
  }
}
