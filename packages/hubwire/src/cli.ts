#!/usr/bin/env node
// `hubwire install-schema <url> [--schema name] [--table-count n]`: creates or migrates a backplane's tables
// ahead of time, for deployments whose application role may not create tables.

import { parseArgs } from 'node:util';
import { loadBackplanePackage } from './backplane/from-url.js';

const USAGE = 'Usage: hubwire install-schema <postgres://… | sqlite:file> [--schema hubwire] [--table-count 1]';

function parseCommandLine(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: { schema: { type: 'string' }, 'table-count': { type: 'string' }, help: { type: 'boolean' } },
  });
}

async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseCommandLine>;
  try {
    parsed = parseCommandLine(argv);
  } catch (error) {
    console.error(`hubwire: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const { positionals, values } = parsed;
  const [command, url] = positionals;
  if (values.help || command !== 'install-schema' || !url) {
    console.error(USAGE);
    return values.help ? 0 : 2;
  }
  const tableCount = values['table-count'] === undefined ? undefined : Number(values['table-count']);
  if (tableCount !== undefined && !(Number.isInteger(tableCount) && tableCount >= 1)) {
    console.error('--table-count must be a positive integer.');
    return 2;
  }
  const backplane = await loadBackplanePackage(url);
  const result = await backplane.installSchema(url, { schema: values.schema, tableCount });
  console.log(`Schema installed: ${JSON.stringify(result)}`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`hubwire: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
