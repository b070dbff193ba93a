// The command lines a user types first: `npm run chat -- --help`, `npm start -- --help` and the `hubwire` bin
// answer help with their usage and a wrong option with the usage and exit code 2, never a stack trace.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';

const root = new URL('../..', import.meta.url).pathname;

function run(script: string, args: string[]) {
  const result = spawnSync(process.execPath, ['--conditions=hubwire-source', '--import', 'tsx', script, ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: result.status, out: result.stdout, err: result.stderr };
}

describe('command lines', () => {
  for (const [name, script, usage] of [
    ['npm run chat', 'examples/chat/src/main.ts', /^Usage: npm run chat -- /m],
    ['npm start', 'examples/chat/src/demo.ts', /^Usage: npm start -- /m],
    ['the hubwire bin', 'packages/hubwire/src/cli.ts', /^Usage: hubwire install-schema /m],
  ] as const) {
    test(`${name}: --help prints the usage; an unknown option is a clear error`, () => {
      const help = run(script, ['--help']);
      assert.equal(help.status, 0, help.err);
      assert.match(help.out + help.err, usage);
      const wrong = run(script, ['--no-such-option']);
      assert.equal(wrong.status, 2, wrong.err);
      assert.match(wrong.err, /Unknown option '--no-such-option'/);
      assert.doesNotMatch(wrong.err, /^\s+at /m, 'no stack trace');
    });
  }
});
