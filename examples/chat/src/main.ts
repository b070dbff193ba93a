// `npm run chat -- --port <P> [--backplane <url>] [--name <node name>]`: one chat node.

import { parseArgs } from 'node:util';
import { startChatServer } from './server.js';

const USAGE = `Usage: npm run chat -- [--port <port>] [--host <host>] [--name <node name>] [--backplane <url>]

  --port       port to listen on (default 5000; 0 picks a free one)
  --host       address to listen on (default 127.0.0.1)
  --name       how the page names this node (default "node on port <port>")
  --backplane  a backplane shared with other nodes: postgres://…, mysql://… or sqlite:<file> (default: none)
  --help       this text`;

function parseCommandLine() {
  try {
    return parseArgs({
      options: {
        port: { type: 'string', default: '5000' },
        host: { type: 'string', default: '127.0.0.1' },
        name: { type: 'string' },
        backplane: { type: 'string' },
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

const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`Invalid --port '${values.port}'.`);
  process.exit(2);
}
try {
  const server = await startChatServer({
    port,
    host: values.host,
    nodeName: values.name ?? `node on port ${port}`,
    backplane: values.backplane,
  });
  await server.hubwire.ready();
  const via = values.backplane ? ` via ${values.backplane.replace(/\/\/[^@/]*@/, '//***@')}` : '';
  console.log(
    `Hubwire chat listening on ${server.url} (hub at ${server.url}chat, classic SignalR 2 page at ${server.url}classic, dashboard at ${server.url}hubwire)${via}`,
  );
  const stop = () => {
    server.close().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
} catch (error) {
  console.error(`Could not start the chat node: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
