// `npm run chat -- --port <P>`: one chat node.

import { parseArgs } from 'node:util';
import { startChatServer } from './server.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '5000' },
    host: { type: 'string', default: '127.0.0.1' },
    name: { type: 'string' },
  },
});

const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`Invalid --port '${values.port}'.`);
  process.exit(2);
}
const server = await startChatServer({ port, host: values.host, nodeName: values.name ?? `node on port ${port}` });
console.log(`Hubwire chat listening on ${server.url} (hub at ${server.url}chat)`);

const stop = () => {
  server.close().then(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
