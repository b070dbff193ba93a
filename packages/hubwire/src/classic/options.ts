// Options of the classic ASP.NET SignalR 2 endpoint and their defaults (those of SignalR 2's
// IConfigurationManager unless noted). Times are milliseconds here; negotiate reports them in seconds.

import { randomBytes } from 'node:crypto';
import { validateAllowedOrigins } from '../connection/cors.js';
import type { HubContext } from '../hub/clients.js';

export type ClassicTransport = 'webSockets' | 'serverSentEvents' | 'foreverFrame' | 'longPolling';

export const CLASSIC_TRANSPORTS: readonly ClassicTransport[] = [
  'webSockets',
  'serverSentEvents',
  'foreverFrame',
  'longPolling',
];

/** Who is rejoining groups (see `rejoinGroups`). */
export interface RejoinContext {
  readonly connectionId: string;
  /** What the authentication hook returned. */
  readonly user: unknown;
  readonly userId: string | undefined;
  /** The classic hub name (`ChatHub`), or undefined on a persistent connection endpoint. */
  readonly hub: string | undefined;
}

export type RejoinGroups = (context: RejoinContext, groups: string[]) => string[] | Promise<string[]>;

export interface ClassicHubsOptions {
  /**
   * Key of the HMAC that protects connection and groups tokens (at least 16 bytes). Default: with a backplane,
   * a key set kept in the backplane's database and shared by every node (rotated weekly, old keys accepted for
   * a week more); without one, random per process (tokens do not survive a restart). Given, it is used as is,
   * and every node that serves the same clients needs the same key.
   */
  classicKey?: Buffer | string;
  /**
   * Cross-origin pages allowed (CORS with credentials for HTTP requests, and the Origin check of WebSocket
   * upgrades): a list of origins (`'*'` is refused, see HubOptions.allowedOrigins) or a predicate. Default: the
   * server's `allowedOrigins` (none: no CORS
   * headers and no check, so only same-origin pages can use the endpoint).
   */
  allowedOrigins?: readonly string[] | ((origin: string) => boolean);
  /**
   * SignalR 2's rejoin hook: which groups of a client's groups token it rejoins when its connection state is
   * built on a node (after a reconnect, a move to another node, or a restart). Default: all of them.
   */
  rejoinGroups?: RejoinGroups;
  /** Transports offered. Default: all four. */
  transports?: ClassicTransport[];
  /** Interval of keep-alive messages (ms); `null` turns them off. Default 10000 (a third of the disconnect timeout). */
  keepAlive?: number | null;
  /** A connection without a live transport for this long is disconnected (ms). Default 30000. */
  disconnectTimeout?: number;
  /** How long a long poll is held open when there is nothing to send (ms). Default 110000. */
  connectionTimeout?: number;
  /** How long clients wait for the init message before trying the next transport (ms). Default 5000. */
  transportConnectTimeout?: number;
  /** Pause clients make between long polls (ms). Default 0. */
  longPollDelay?: number;
  /** Messages kept per connection for replay after a reconnect or a lost poll. Default 1000. */
  messageBufferSize?: number;
  /**
   * Bytes written to a connection's stream (WebSockets, Server-Sent Events, forever frame) and not taken by its
   * client at most: past it the stream is dropped as slow, and the connection waits for the client to reconnect
   * with its cursor (replaying what the message buffer still holds) or to reach the disconnect timeout. Default
   * 1 MiB.
   */
  maxQueuedBytes?: number;
  /** Largest WebSocket message or `/send` body accepted (bytes). Default 65536, as SignalR 2's WebSocket limit. */
  maxIncomingMessageSize?: number;
}

export interface ResolvedClassicOptions {
  key: Buffer;
  /** `classicKey` was given (else `key` is random, and a backplane's shared key set is used when there is one). */
  keyGiven: boolean;
  allowedOrigins: readonly string[] | ((origin: string) => boolean) | undefined;
  rejoinGroups: RejoinGroups | undefined;
  transports: readonly ClassicTransport[];
  keepAlive: number | null;
  disconnectTimeout: number;
  connectionTimeout: number;
  transportConnectTimeout: number;
  longPollDelay: number;
  messageBufferSize: number;
  maxQueuedBytes: number;
  maxIncomingMessageSize: number;
}

/** A classic hub name mapped to a modern hub: its path (`'/chat'`) or its context (`hubwire.hub('/chat')`). */
export type ClassicHubMap = Record<string, string | HubContext>;

export function resolveClassicOptions(
  options: ClassicHubsOptions = {},
  serverAllowedOrigins?: readonly string[] | ((origin: string) => boolean),
): ResolvedClassicOptions {
  const key =
    options.classicKey === undefined
      ? randomBytes(32)
      : Buffer.isBuffer(options.classicKey)
        ? options.classicKey
        : Buffer.from(options.classicKey, 'utf8');
  if (key.length < 16) throw new TypeError(`Option 'classicKey' must be at least 16 bytes long.`);
  const transports = options.transports ?? CLASSIC_TRANSPORTS;
  for (const transport of transports) {
    if (!CLASSIC_TRANSPORTS.includes(transport)) throw new TypeError(`Unknown classic transport '${transport}'.`);
  }
  const disconnectTimeout = options.disconnectTimeout ?? 30_000;
  const keepAlive = options.keepAlive === undefined ? Math.floor(disconnectTimeout / 3) : options.keepAlive;
  const resolved: ResolvedClassicOptions = {
    key,
    keyGiven: options.classicKey !== undefined,
    allowedOrigins: options.allowedOrigins ?? serverAllowedOrigins,
    rejoinGroups: options.rejoinGroups,
    transports,
    keepAlive,
    disconnectTimeout,
    connectionTimeout: options.connectionTimeout ?? 110_000,
    transportConnectTimeout: options.transportConnectTimeout ?? 5_000,
    longPollDelay: options.longPollDelay ?? 0,
    messageBufferSize: options.messageBufferSize ?? 1000,
    maxQueuedBytes: options.maxQueuedBytes ?? 1024 * 1024,
    maxIncomingMessageSize: options.maxIncomingMessageSize ?? 64 * 1024,
  };
  for (const name of ['disconnectTimeout', 'connectionTimeout', 'transportConnectTimeout'] as const) {
    if (!(resolved[name] > 0)) throw new TypeError(`Option '${name}' must be a positive number of milliseconds.`);
  }
  if (keepAlive !== null && !(keepAlive > 0)) throw new TypeError(`Option 'keepAlive' must be positive or null.`);
  if (keepAlive !== null && keepAlive > disconnectTimeout / 3) {
    // SignalR 2's rule: clients reconnect after two missed keep-alives, which must fit in the disconnect timeout.
    throw new TypeError(`Option 'keepAlive' must be at most a third of 'disconnectTimeout'.`);
  }
  validateAllowedOrigins(resolved.allowedOrigins);
  if (!(Number.isSafeInteger(resolved.messageBufferSize) && resolved.messageBufferSize >= 1))
    throw new TypeError(`Option 'messageBufferSize' must be a whole number of at least 1.`);
  if (!(resolved.maxQueuedBytes > 0))
    throw new TypeError(`Option 'maxQueuedBytes' must be a positive number of bytes.`);
  if (!(resolved.longPollDelay >= 0)) throw new TypeError(`Option 'longPollDelay' must not be negative.`);
  return resolved;
}
