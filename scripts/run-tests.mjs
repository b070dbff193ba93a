// Runs the test files under the given folders (default: all of test/) with node's test runner.
// TypeScript runs through tsx; `hubwire` resolves to its sources (the `hubwire-source` export condition).

import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const folders = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const passthrough = process.argv.slice(2).filter((a) => a.startsWith('--'));
// A test that waits on something that never comes fails after this instead of holding CI until its job's limit
// (the longest test, the soak, takes about 95 s).
if (!passthrough.some((a) => a.startsWith('--test-timeout'))) passthrough.push('--test-timeout=240000');

function collect(dir, out) {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) collect(path, out);
    else if (name.endsWith('.test.ts')) out.push(relative(root, path));
  }
  return out;
}

const files = [];
for (const folder of folders.length ? folders : ['test']) {
  const path = join(root, folder);
  if (statSync(path).isFile()) files.push(relative(root, path));
  else collect(path, files);
}
if (files.length === 0) {
  console.error('No test files found.');
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  ['--conditions=hubwire-source', '--import', 'tsx', '--test', '--test-reporter=spec', ...passthrough, ...files],
  { cwd: root, stdio: 'inherit' },
);
process.exit(result.status ?? 1);
