// Owns every live connection of a server: lookup by token, and one timer that reaps abandoned connections
// and drives keep-alive for all of them.

import type { ServerMeter } from '../metrics/meter.js';
import { randomId } from '../util/ids.js';
import { HttpConnection } from './connection.js';
import type { RequestInfo } from './request-info.js';

export interface ConnectionManagerOptions {
  /** A connection without an active transport for this long is disposed (ms). */
  disconnectTimeout: number;
  /** How often the timer runs (ms). */
  tickInterval: number;
  /** The server's counters (undefined with metrics off). */
  meter?: ServerMeter;
}

export class ConnectionManager {
  private readonly byToken = new Map<string, HttpConnection>();
  private readonly byId = new Map<string, HttpConnection>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: ConnectionManagerOptions) {}

  get size(): number {
    return this.byToken.size;
  }

  /**
   * A new connection. Its token is `makeToken(connectionId)` when that gives one (a token every node can verify),
   * else a random one (only this node knows it); version 0 has no token: the id itself is used on the URL.
   */
  create(
    endpointPath: string,
    negotiateVersion: number,
    negotiateRequest: RequestInfo | undefined,
    user: unknown,
    makeToken?: (connectionId: string) => string | undefined,
  ): HttpConnection {
    const connectionId = randomId();
    const token = negotiateVersion >= 1 ? (makeToken?.(connectionId) ?? randomId()) : connectionId;
    return this.add(connectionId, token, endpointPath, negotiateVersion, negotiateRequest, user);
  }

  /** A connection negotiated on another node, created here from its (verified) token. */
  adopt(
    connectionId: string,
    token: string,
    endpointPath: string,
    negotiateVersion: number,
    user: unknown,
  ): HttpConnection {
    return this.add(connectionId, token, endpointPath, negotiateVersion, undefined, user);
  }

  private add(
    connectionId: string,
    token: string,
    endpointPath: string,
    negotiateVersion: number,
    negotiateRequest: RequestInfo | undefined,
    user: unknown,
  ): HttpConnection {
    const connection = new HttpConnection(
      connectionId,
      token,
      negotiateVersion,
      endpointPath,
      negotiateRequest,
      user,
      Date.now(),
    );
    connection.meter = this.options.meter;
    this.byToken.set(token, connection);
    this.byId.set(connectionId, connection);
    connection.onClose(() => {
      this.byToken.delete(token);
      if (this.byId.get(connectionId) === connection) this.byId.delete(connectionId);
    });
    this.ensureTimer();
    return connection;
  }

  get(token: string): HttpConnection | undefined {
    return this.byToken.get(token);
  }

  /** The connection with a public id (not a credential: never use it to authorize a request). */
  byConnectionId(connectionId: string): HttpConnection | undefined {
    return this.byId.get(connectionId);
  }

  connections(): IterableIterator<HttpConnection> {
    return this.byToken.values();
  }

  private ensureTimer(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), this.options.tickInterval);
    this.timer.unref();
  }

  /** Runs once per tick: reaps connections without a transport, then lets each application do its timers. */
  tick(now = Date.now()): void {
    for (const connection of this.byToken.values()) {
      if (connection.state !== 'active' && now - connection.lastSeen > this.options.disconnectTimeout) {
        connection.closeStatus ??= 'timeout';
        connection.dispose();
        continue;
      }
      try {
        connection.application?.onTick?.(now);
      } catch (error) {
        connection.dispose(error as Error);
      }
    }
    if (this.byToken.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  /** Ends every connection (server shutdown). */
  closeAll(): void {
    for (const connection of this.byToken.values()) connection.closeStatus ??= 'app_shutdown';
    for (const connection of [...this.byToken.values()]) {
      if (connection.application?.onShutdown) connection.application.onShutdown();
      else connection.close();
    }
    for (const connection of [...this.byToken.values()]) connection.dispose();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
