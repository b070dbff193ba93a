// The classic SignalR 2 endpoint mounted at a base path (`/signalr`): owns its hubs, its live connections, the
// token key and one timer; checks every request (JSONP, user, hubs, transport, token) before routes.ts acts on it.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { rejectUpgrade } from '../connection/http-dispatcher.js';
import { requestInfo } from '../connection/request-info.js';
import type { ClassicConnection, ConnectionServices } from './classic-connection.js';
import { ClassicConnection as Connection } from './classic-connection.js';
import type { ClassicHub } from './classic-hub.js';
import type { ClassicTransport, ResolvedClassicOptions } from './options.js';
import type { PersistentEndpoint } from './persistent.js';
import { ClassicHttpError, ERRORS, parseConnectionData, respondText } from './requests.js';
import { routeRequest, routeUpgrade } from './routes.js';
import { TokenProtector } from './tokens.js';

export interface ClassicServerDeps {
  authenticate: ((request: IncomingMessage) => unknown) | undefined;
  userIdOf: (user: unknown) => string | undefined;
  reportError: (error: unknown, where: string) => void;
}

export type Route = 'negotiate' | 'connect' | 'reconnect' | 'start' | 'send' | 'poll' | 'abort' | 'ping' | 'hubs';

const ROUTES: Record<string, Route> = {
  negotiate: 'negotiate',
  connect: 'connect',
  reconnect: 'reconnect',
  start: 'start',
  send: 'send',
  poll: 'poll',
  abort: 'abort',
  ping: 'ping',
  hubs: 'hubs',
  js: 'hubs',
};

/** What every request of an existing connection carries, checked. */
export interface CheckedRequest {
  url: URL;
  user: unknown;
  hubs: ClassicHub[];
  transport: ClassicTransport;
  connectionId: string;
}

export class ClassicServer implements ConnectionServices {
  readonly hubs = new Map<string, ClassicHub>();
  readonly tokens: TokenProtector;
  readonly webSockets: WebSocketServer;
  private readonly connections = new Map<string, ClassicConnection>();
  /** Connections that were stopped (by the client or the server), until the disconnect timeout: no revival. */
  private readonly ended = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    readonly basePath: string,
    hubs: readonly ClassicHub[],
    readonly options: ResolvedClassicOptions,
    readonly deps: ClassicServerDeps,
    /** Set for a persistent connection endpoint (mapClassicConnection): no hubs, raw data. */
    readonly persistent?: PersistentEndpoint,
  ) {
    for (const hub of hubs) {
      if (this.hubs.has(hub.lowerName)) throw new Error(`The classic hub name '${hub.name}' is mapped twice.`);
      this.hubs.set(hub.lowerName, hub);
    }
    this.tokens = new TokenProtector(options.key);
    this.webSockets = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      clientTracking: false,
      maxPayload: options.maxIncomingMessageSize,
    });
  }

  /** The route of a path under the base path: undefined when the path is not ours, null when unknown there. */
  private route(pathname: string): Route | null | undefined {
    if (!pathname.startsWith(`${this.basePath}/`)) return undefined;
    const rest = pathname.slice(this.basePath.length + 1).replace(/\/$/, '');
    return ROUTES[rest] ?? null;
  }

  handleRequest(request: IncomingMessage, response: ServerResponse): boolean {
    const url = parseUrl(request);
    const route = url && this.route(url.pathname);
    if (!url || route === undefined) return false;
    if (route === null) {
      request.resume();
      respondText(response, 404, 'Not found.');
      return true;
    }
    routeRequest(this, route, url, request, response).catch((error: unknown) => {
      request.resume();
      if (error instanceof ClassicHttpError) respondText(response, error.status, error.message);
      else {
        this.reportError(error, `classic request ${url.pathname}`);
        respondText(response, 500, 'Internal server error.');
      }
    });
    return true;
  }

  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const url = parseUrl(request);
    const route = url && this.route(url.pathname);
    if (!url || route === undefined) return false;
    const destroy = () => socket.destroy();
    socket.on('error', destroy);
    routeUpgrade(this, route, url, request, socket, head, () => socket.off('error', destroy)).catch(
      (error: unknown) => {
        if (error instanceof ClassicHttpError) rejectUpgrade(socket, error.status, error.message);
        else {
          this.reportError(error, `classic upgrade ${url.pathname}`);
          rejectUpgrade(socket, 500, 'Internal server error.');
        }
      },
    );
    return true;
  }

  // --- Checks shared by the routes ----------------------------------------------------------------------------
  async authenticate(request: IncomingMessage): Promise<unknown> {
    if (!this.deps.authenticate) return undefined;
    try {
      return await this.deps.authenticate(request);
    } catch {
      throw new ClassicHttpError(401, '');
    }
  }

  /** The hubs of `connectionData`, each mapped and authorized for `user` (checked on every request). */
  async resolveHubs(url: URL, user: unknown, request: IncomingMessage): Promise<ClassicHub[]> {
    if (this.persistent) {
      // A persistent connection ignores connectionData; its own authorization runs on every request.
      if (!(await this.persistent.authorize(user, request))) {
        throw new ClassicHttpError(user === undefined || user === null ? 401 : 403, '');
      }
      return [];
    }
    const hubs: ClassicHub[] = [];
    for (const name of parseConnectionData(url.searchParams.get('connectionData'))) {
      const hub = this.hubs.get(name);
      if (!hub) throw new ClassicHttpError(400, `'${name}' Hub could not be resolved.`);
      if (!(await hub.endpoint.authorizeConnection(user, request))) {
        throw new ClassicHttpError(user === undefined || user === null ? 401 : 403, '');
      }
      hubs.push(hub);
    }
    return hubs;
  }

  /** Everything but negotiate, ping and the proxy script: a known transport, and a token of this user. */
  async check(url: URL, request: IncomingMessage): Promise<CheckedRequest> {
    if (url.searchParams.has('callback')) throw ERRORS.jsonp();
    const user = await this.authenticate(request);
    const hubs = await this.resolveHubs(url, user, request);
    const transport = url.searchParams.get('transport') as ClassicTransport | null;
    if (!transport || !this.options.transports.includes(transport)) throw ERRORS.unknownTransport();
    const token = url.searchParams.get('connectionToken');
    if (!token) throw ERRORS.missingToken();
    const identity = this.tokens.readConnectionToken(token);
    if (!identity) throw ERRORS.badToken();
    const userName = this.deps.userIdOf(user) ?? '';
    if (identity.userName.toLowerCase() !== userName.toLowerCase()) throw ERRORS.userChanged();
    return { url, user, hubs, transport, connectionId: identity.connectionId };
  }

  // --- Connections --------------------------------------------------------------------------------------------
  connection(connectionId: string): ClassicConnection | undefined {
    return this.connections.get(connectionId);
  }

  isEnded(connectionId: string): boolean {
    return this.ended.has(connectionId);
  }

  /**
   * The connection's state on this node, created when missing (a connect, or a client coming back after this node
   * lost it: its groups come back from the groups token). Subscriptions follow `connectionData`.
   */
  open(checked: CheckedRequest, request: IncomingMessage, groupsToken: string | null): ClassicConnection {
    if (this.closed || this.ended.has(checked.connectionId)) throw ERRORS.ended();
    const connection = this.connections.get(checked.connectionId);
    if (connection) {
      connection.request = requestInfo(request);
      const existing = connection;
      existing.ready = existing.ready
        .then(() => existing.subscribe(checked.hubs))
        .catch((e) => this.failed(existing, e));
      return connection;
    }
    const created = new Connection(
      checked.connectionId,
      checked.user,
      this.deps.userIdOf(checked.user),
      checked.transport,
      requestInfo(request),
      this,
    );
    this.connections.set(checked.connectionId, created);
    created.ready = (async () => {
      if (this.persistent) await created.subscribePersistent(this.persistent);
      await created.subscribe(checked.hubs);
      await created.restoreGroups(groupsToken);
    })().catch((error: unknown) => this.failed(created, error));
    this.ensureTimer();
    return created;
  }

  /** The bus refused the connection (a backplane down past its queue): it ends, and the client reconnects later. */
  private failed(connection: ClassicConnection, error: unknown): void {
    this.reportError(error, `subscribing classic connection '${connection.connectionId}'`);
    connection.dispose(error instanceof Error ? error : new Error(String(error)), false);
  }

  /** A connection state for one /send of a connection this node does not hold: hub calls work, nothing is kept. */
  transient(checked: CheckedRequest, request: IncomingMessage): ClassicConnection {
    const user = checked.user;
    return new Connection(
      checked.connectionId,
      user,
      this.deps.userIdOf(user),
      checked.transport,
      requestInfo(request),
      this,
    );
  }

  removed(connection: ClassicConnection, stopCalled: boolean): void {
    if (this.connections.get(connection.connectionId) === connection) this.connections.delete(connection.connectionId);
    if (stopCalled) this.markEnded(connection.connectionId);
  }

  markEnded(connectionId: string): void {
    this.ended.set(connectionId, Date.now() + this.options.disconnectTimeout);
    this.ensureTimer();
  }

  reportError(error: unknown, where: string): void {
    this.deps.reportError(error, where);
  }

  private ensureTimer(): void {
    if (this.timer || this.closed) return;
    // Fine enough for the shortest configured keep-alive or timeout (once a second with the defaults).
    const { keepAlive, disconnectTimeout } = this.options;
    const interval = Math.max(50, Math.min(1000, Math.min(keepAlive ?? disconnectTimeout, disconnectTimeout) / 4));
    this.timer = setInterval(() => this.tick(Date.now()), interval);
    this.timer.unref();
  }

  private tick(now: number): void {
    for (const connection of [...this.connections.values()]) {
      try {
        connection.tick(now);
      } catch (error) {
        this.reportError(error, `classic connection '${connection.connectionId}'`);
      }
    }
    for (const [id, expires] of this.ended) if (expires <= now) this.ended.delete(id);
    if (this.connections.size === 0 && this.ended.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  /** Server shutdown: long polls hear `T:1`, streams close, hubs run onDisconnected. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const connection of [...this.connections.values()]) connection.shutdown();
    this.connections.clear();
  }
}

function parseUrl(request: IncomingMessage): URL | undefined {
  try {
    return new URL(request.url ?? '/', 'http://localhost');
  } catch {
    return undefined;
  }
}
