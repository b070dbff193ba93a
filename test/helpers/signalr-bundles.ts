// The official clients' browser bundles (from node_modules), by the path a test page loads them from.

import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

export const SIGNALR_BUNDLES: Record<string, string> = {
  '/lib/signalr.js': join(dirname(require.resolve('@microsoft/signalr')), '..', 'browser', 'signalr.min.js'),
  '/lib/signalr-protocol-msgpack.js': join(
    dirname(require.resolve('@microsoft/signalr-protocol-msgpack')),
    '..',
    'browser',
    'signalr-protocol-msgpack.min.js',
  ),
};
