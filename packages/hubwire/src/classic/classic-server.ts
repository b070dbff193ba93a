// The classic SignalR 2 endpoint mounted at a base path (`/signalr`): owns its hubs, its live connections, the
// token key and one timer; checks every request (JSONP, user, hubs, transport, token) before routes.ts acts on it.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { StreamHistory } from '../backplane/stream-history.js';
import { answerByOrigin, checkOrigin } from '../connection/cors.js';
import { rejectUpgrade } from '../connection/http-dispatcher.js';
import { requestInfo } from '../connection/request-info.js';
import type { ClassicConnection, ConnectionServices } from './classic-connection.js';
import { ClassicConnection as Connection } from './classic-connection.js';
import type { ClassicHub } from './classic-hub.js';
import { ClassicKeys } from './keys.js';
import { ClassicNotices } from './node-notices.js';
import type { ClassicTransport, ResolvedClassicOptions } from './options.js';
import type { PersistentEndpoint } from './persistent.js';
import { ClassicHttpError, ERRORS, parseConnectionData, respondText } from './requests.js';
import { formatPosition, parsePosition } from './resume.js';
import { routeRequest, routeUpgrade } from './routes.js';
import { TokenProtector } from './tokens.js';

export interface ClassicServerDeps {
  authenticate: ((request: IncomingMessage) => unknown) | undefined;
  userIdOf: (user: unknown) => string | undefined;
  reportError: (error: unknown, where: string) => void;
  /** The server's allowedOrigins: the default of the endpoint's. */
  allowedOrigins?: readonly string[] | ((origin: string) => boolean) | undefined;
  /** The server's backplane, if any: connections then move freely between nodes (no sticky sessions). */
  backplane?: StreamHistory | undefined;
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
  readonly engine: StreamHistory | undefined;
  /** What this endpoint's instances on the nodes tell each other (connection moves). */
  private readonly notices: ClassicNotices;
  private readonly keySet: ClassicKeys;

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
    this.engine = deps.backplane;
    this.keySet = new ClassicKeys(options, this.engine, (error, where) => this.reportError(error, where), basePath);
    this.tokens = new TokenProtector(this.keySet.source);
    this.webSockets = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      clientTracking: false,
      maxPayload: options.maxIncomingMessageSize,
    });
    this.notices = new ClassicNotices(this.engine, `classic:${basePath}`, this.connections, {
      closed: () => this.closed,
      markEnded: (connectionId) => this.markEnded(connectionId),
      reportError: (error, where) => this.reportError(error, where),
    });
  }

  /** Waits (a bounded time) until tokens can be made and read, and cursors can carry backplane positions. */
  keys(): Promise<void> {
    return this.keySet.wait();
  }

  /** Listens to the other nodes' instances of this endpoint (once it is mapped: its path is its identity). */
  listenToBackplane(): void {
    this.notices.listen();
    // Moves replay recent rows from memory.
    this.engine?.retainRecentRows();
  }

  private positionCache: { version: number; text: string | undefined } = { version: -1, text: undefined };

  /** The backplane position for cursors (computed once per delivered row, not per envelope). */
  position(): string | undefined {
    const engine = this.engine;
    if (!engine) return undefined;
    const version = engine.positionVersion;
    if (this.positionCache.version !== version) this.positionCache = { version, text: formatPosition(engine) };
    return this.positionCache.text;
  }

  /** The route of a path under the base path: undefined when the path is not ours, null when unknown there. */
  private route(pathname: string): Route | null | undefined {
    // Case-insensitive, as ASP.NET routes are (`/SignalR/negotiate` is `/signalr/negotiate`).
    const path = pathname.toLowerCase();
    if (!path.startsWith(`${this.basePath.toLowerCase()}/`)) return undefined;
    const rest = path.slice(this.basePath.length + 1).replace(/\/$/, '');
    return Object.hasOwn(ROUTES, rest) ? (ROUTES[rest] as Route) : null;
  }

  handleRequest(request: IncomingMessage, response: ServerResponse): boolean {
    const url = parseUrl(request);
    const route = url && this.route(url.pathname);
    if (!url || route === undefined) return false;
    if (answerByOrigin(this.options, request, response, () => respondText(response, 403, 'Origin not allowed.'))) {
      return true;
    }
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
    if (checkOrigin(this.options, request) === 'refused') {
      rejectUpgrade(socket, 403, 'Origin not allowed.');
      return true;
    }
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
    await this.keys();
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
  /** Connections this node holds. */
  get connectionCount(): number {
    return this.connections.size;
  }

  connection(connectionId: string): ClassicConnection | undefined {
    return this.connections.get(connectionId);
  }

  isEnded(connectionId: string): boolean {
    return this.ended.has(connectionId);
  }

  /**
   * The connection's state on this node for a transport request (connect, reconnect, poll), created when missing.
   * With a backplane, a state is (re)built from the backplane position in the client's cursor when this state
   * did not write that cursor (the client comes from another node, or this node lost it), and the other nodes
   * are told that the client is here now. Subscriptions follow `connectionData`; groups come from the token. A
   * `/reconnect` runs the hubs' onReconnected once the subscriptions are in effect.
   */
  open(
    checked: CheckedRequest,
    request: IncomingMessage,
    groupsToken: string | null,
    route: 'connect' | 'reconnect' | 'poll',
    cursor: string | null | undefined,
  ): ClassicConnection {
    if (this.closed || this.ended.has(checked.connectionId)) throw ERRORS.ended();
    const engine = this.engine;
    const from = engine && route !== 'connect' ? parsePosition(cursor, engine) : undefined;
    const existing = this.connections.get(checked.connectionId);
    if (existing) {
      if (from === undefined || existing.delivery.ownsCursor(cursor)) {
        existing.request = requestInfo(request);
        existing.ready = existing.ready
          .then(() => existing.subscribe(checked.hubs))
          .catch((e) => this.failed(existing, e));
        existing.claimedAt = Date.now();
        if (route === 'reconnect') void existing.reconnected();
        return existing;
      }
      // The client has been elsewhere since this state last wrote to it: start over from its cursor.
      existing.retire();
    }
    const created = new Connection(
      checked.connectionId,
      checked.user,
      this.deps.userIdOf(checked.user),
      checked.transport,
      requestInfo(request),
      this,
    );
    // A client reconnecting or polling has most likely started (maybe on another node): its disconnect is
    // reported here. Only assumed: its /start may still come (a long poll runs beside it) and must run onConnected.
    if (route !== 'connect') created.assumeStarted();
    this.connections.set(checked.connectionId, created);
    created.ready = created
      .register(checked.hubs, this.persistent, groupsToken, from)
      .catch((error: unknown) => this.failed(created, error));
    created.claimedAt = Date.now();
    if (engine) this.notices.claim(created);
    if (route === 'reconnect') void created.reconnected();
    this.ensureTimer();
    return created;
  }

  // --- Between nodes ------------------------------------------------------------------------------------------
  /** After this node ran onConnected for a connection it does not hold. */
  noticeStarted(connectionId: string): void {
    this.notices.started(connectionId);
  }

  /** After /abort on this node (`reported`: this node held the connection and ran onDisconnected). */
  noticeAbort(connectionId: string, reported: boolean): void {
    this.notices.abort(connectionId, reported);
  }

  holderWritten(connectionId: string, timeoutMs: number): Promise<void> {
    return this.closed ? Promise.resolve() : this.notices.holderWritten(connectionId, timeoutMs);
  }

  /** The bus refused the connection (a backplane down past its queue): it ends, and the client reconnects later. */
  private failed(connection: ClassicConnection, error: unknown): void {
    this.reportError(error, `subscribing classic connection '${connection.connectionId}'`);
    connection.dispose(error instanceof Error ? error : new Error(String(error)), false);
  }

  /** A connection state for one /send of a connection this node does not hold: hub calls work, nothing is kept. */
  transient(checked: CheckedRequest, request: IncomingMessage): ClassicConnection {
    const user = checked.user;
    const connection = new Connection(
      checked.connectionId,
      user,
      this.deps.userIdOf(user),
      checked.transport,
      requestInfo(request),
      this,
    );
    connection.detached = true;
    return connection;
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
        connection.delivery.tick(now);
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
    this.keySet.close();
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
