// A hub's options resolved: each from the hub's own options, else the server's, else the defaults (options.ts), and
// checked (a bad value throws a TypeError naming the option, at mapHub).

import { validateAllowedOrigins } from './connection/cors.js';
import type { HubOptions, ResolvedHubOptions } from './hub/hub-options.js';
import { DEFAULTS, type HubwireOptions } from './options.js';
import { jsonHubProtocol } from './protocol/json-protocol.js';
import { messagePackHubProtocol } from './protocol/msgpack-protocol.js';

export function resolveHubOptions(server: HubwireOptions, hubOptions: HubOptions): ResolvedHubOptions {
  const pick = <K extends keyof typeof DEFAULTS & keyof HubOptions>(key: K) =>
    (hubOptions[key] ?? server[key as keyof HubwireOptions] ?? DEFAULTS[key]) as (typeof DEFAULTS)[K];
  const resolved: ResolvedHubOptions = {
    transports: pick('transports'),
    keepAliveInterval: pick('keepAliveInterval'),
    clientTimeoutInterval: pick('clientTimeoutInterval'),
    handshakeTimeout: pick('handshakeTimeout'),
    maximumReceiveMessageSize: pick('maximumReceiveMessageSize'),
    maximumParallelInvocationsPerClient: pick('maximumParallelInvocationsPerClient'),
    streamBufferCapacity: pick('streamBufferCapacity'),
    enableDetailedErrors: pick('enableDetailedErrors'),
    allowStatefulReconnects: pick('allowStatefulReconnects'),
    statefulReconnectBufferSize: pick('statefulReconnectBufferSize'),
    clientResultTimeout: pick('clientResultTimeout'),
    longPollTimeout: pick('longPollTimeout'),
    maxRequestBodySize: pick('maxRequestBodySize'),
    maxWebSocketFrameSize: pick('maxWebSocketFrameSize'),
    transportMaxBufferSize: pick('transportMaxBufferSize'),
    maxQueuedBytes: pick('maxQueuedBytes'),
    requireAuthenticatedUser: pick('requireAuthenticatedUser'),
    protocols: hubOptions.protocols ?? server.protocols ?? [jsonHubProtocol, messagePackHubProtocol],
    authorize: hubOptions.authorize,
    methods: hubOptions.methods,
    callable: hubOptions.callable,
    allowedOrigins: hubOptions.allowedOrigins ?? server.allowedOrigins,
    negotiateRedirect: hubOptions.negotiateRedirect,
    filters: [...(server.filters ?? []), ...(hubOptions.filters ?? [])],
  };
  for (const transport of resolved.transports) {
    if (transport !== 'WebSockets' && transport !== 'ServerSentEvents' && transport !== 'LongPolling') {
      throw new TypeError(`Unknown transport '${String(transport)}'.`);
    }
  }
  for (const key of ['keepAliveInterval', 'clientTimeoutInterval', 'handshakeTimeout', 'longPollTimeout'] as const) {
    if (!(resolved[key] > 0)) throw new TypeError(`Option '${key}' must be a positive number of milliseconds.`);
  }
  if (!(resolved.maximumParallelInvocationsPerClient >= 1)) {
    throw new TypeError(`Option 'maximumParallelInvocationsPerClient' must be at least 1.`);
  }
  validateAllowedOrigins(resolved.allowedOrigins);
  for (const key of ['transportMaxBufferSize', 'maxQueuedBytes'] as const) {
    if (!(resolved[key] > 0)) throw new TypeError(`Option '${key}' must be a positive number of bytes.`);
  }
  if (resolved.maxQueuedBytes < resolved.transportMaxBufferSize) {
    throw new TypeError(`Option 'maxQueuedBytes' must be at least 'transportMaxBufferSize'.`);
  }
  return resolved;
}
