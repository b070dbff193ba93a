#!/usr/bin/env node
// `hubwire install-schema <url> [--schema name] [--table-count n]`: creates or migrates a backplane's tables
// ahead of time, for deployments whose application role may not create tables.
// `hubwire status <url> [--schema name] [--table-count n] [--json]`: the cluster as the backplane's tables say.

import { parseArgs } from 'node:util';
import { loadBackplanePackage } from './backplane/from-url.js';
import { formatStatus, readStatus } from './status.js';

/** One line, newline included: written as it is, so the shell prompt that follows starts on a line of its own. */
const USAGE =
  'Usage: hubwire install-schema <postgres://… | mysql://… | sqlite:file> [--schema hubwire] [--table-count 1]\n' +
  '       hubwire status <postgres://… | mysql://… | sqlite:file> [--schema hubwire] [--table-count 1] [--json]\n';

function parseCommandLine(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      schema: { type: 'string' },
      'table-count': { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
}

async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseCommandLine>;
  try {
    parsed = parseCommandLine(argv);
  } catch (error) {
    process.stderr.write(`hubwire: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const { positionals, values } = parsed;
  const [command, url] = positionals;
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if ((command !== 'install-schema' && command !== 'status') || !url) {
    process.stderr.write(USAGE);
    return 2;
  }
  const tableCount = values['table-count'] === undefined ? undefined : Number(values['table-count']);
  if (tableCount !== undefined && !(Number.isInteger(tableCount) && tableCount >= 1)) {
    console.error('--table-count must be a positive integer.');
    return 2;
  }
  if (command === 'status') {
    const status = await readStatus(url, { schema: values.schema, tableCount });
    process.stdout.write(values.json ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status));
    return 0;
  }
  const backplane = await loadBackplanePackage(url);
  const result = await backplane.installSchema(url, { schema: values.schema, tableCount });
  console.log(`Schema installed: ${JSON.stringify(result)}`);
  return 0;
}

// Exits once what was written has been flushed (process.exit() right after a write to a pipe can cut it short
// on some platforms); the database packages close their connections before installSchema resolves.
main(process.argv.slice(2)).then(
  (code) => exitAfterFlush(code),
  (error: unknown) => {
    process.stderr.write(`hubwire: ${error instanceof Error ? error.message : String(error)}\n`);
    exitAfterFlush(1);
  },
);

function exitAfterFlush(code: number): void {
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}
