// The Hubwire server: maps hubs to paths and plugs into Node's http.Server, Express, Fastify, or its own listener.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Backplane, ClusterNode } from './backplane/backplane.js';
import { BackplaneBus } from './backplane/backplane-bus.js';
import { LocalBus } from './bus/local-bus.js';
import type { MessageBus } from './bus/message-bus.js';
import type { ClassicServer, ClassicServerDeps } from './classic/classic-server.js';
import { createClassicServer, createPersistentServer } from './classic/mount.js';
import type { ClassicHubMap, ClassicHubsOptions } from './classic/options.js';
import {
  type PersistentConnectionContext,
  type PersistentConnectionHandler,
  PersistentEndpoint,
} from './classic/persistent.js';
import { HttpDispatcher, rejectUpgrade } from './connection/http-dispatcher.js';
import { normalizePath, pathKey, requestPathKey } from './connection/paths.js';
import { type ConnectionHandler, RawEndpoint } from './connection/raw-endpoint.js';
import { clusterLink, crossNodeSetup, DEFAULT_ADOPTION_WINDOW } from './cross-node-setup.js';
import { Dashboard, type DashboardOptions } from './dashboard/dashboard.js';
import { HubwireError } from './errors.js';
import type { HubContext } from './hub/clients.js';
import { HubEndpoint } from './hub/hub-endpoint.js';
import type { HubOptions, ResolvedHubOptions } from './hub/hub-options.js';
import { type HubDefinition, toAuthorizeUser } from './hub/hub-registry.js';
import { MOVES_KEY, StatefulMoves } from './hub/moves/stateful-moves.js';
import { HubwireMetrics } from './metrics/metrics.js';
import { guardHandler } from './metrics/prometheus.js';
import { DEFAULTS, defaultUserIdProvider, type HubwireOptions } from './options.js';
import { Presence } from './presence.js';
import { resolveHubOptions } from './resolve-options.js';

/** Options of a raw connection endpoint (see `mapConnection`). */
export type ConnectionEndpointOptions = Pick<
  HubOptions,
  | 'transports'
  | 'authorize'
  | 'requireAuthenticatedUser'
  | 'allowedOrigins'
  | 'longPollTimeout'
  | 'maxRequestBodySize'
  | 'maxWebSocketFrameSize'
  | 'negotiateRedirect'
>;

export class Hubwire {
  private readonly dispatcher: HttpDispatcher;
  private readonly endpoints = new Map<string, HubEndpoint>();
  private server: Server | undefined;
  private closed = false;
  private readonly backplane: Backplane | undefined;
  private readonly classic: ClassicServer[] = [];
  /** This node's connections, and the cluster's through the node registry. */
  private readonly presence: Presence;
  /** Buses of persistent connection endpoints (closed with the server). */
  private readonly persistentBuses: MessageBus[] = [];
  /** Dashboards (mapDashboard): they guard their page and hub requests, and stop their ticks on close. */
  private readonly dashboards: Dashboard[] = [];
  /** Undefined with `metrics: false`. */
  private readonly metricsOf: HubwireMetrics | undefined;
  /** Plain HTTP routes of this server (the metrics endpoint, the dashboard page), by lower-case path. */
  private readonly routes = new Map<string, (request: IncomingMessage, response: ServerResponse) => void>();

  constructor(private readonly options: HubwireOptions = {}) {
    this.backplane = options.backplane;
    // Starts at once; until the database answers, sends queue (up to the backplane's maxQueueLength).
    this.backplane?.start().catch((error: unknown) => this.reportError(error, 'starting the backplane'));
    this.presence = new Presence(
      {
        connections: () => this.dispatcher.manager.connections(),
        classic: () => this.classic,
        address: () => this.server?.address(),
        hubPaths: () => this.endpoints.keys(),
      },
      this.backplane,
    );
    this.backplane?.setNodeInfo(() => this.presence.describe());
    this.metricsOf = options.metrics === false ? undefined : this.createMetrics(options.metrics);
    const userIdOf = options.userIdProvider ?? defaultUserIdProvider;
    const crossNode =
      this.backplane && !options.stickySessions
        ? crossNodeSetup(this.backplane, options.tokenAdoptionWindow ?? DEFAULT_ADOPTION_WINDOW, (error, where) =>
            this.reportError(error, where),
          )
        : undefined;
    // Stateful reconnect across nodes needs one stream: the numbering of a connection's messages is rebuilt from it.
    this.moves =
      crossNode && this.backplane && this.backplane.store.streamCount === 1
        ? new StatefulMoves(clusterLink(this.backplane, MOVES_KEY), this.backplane, (error, where) =>
            this.reportError(error, where),
          )
        : undefined;
    this.closeCrossNode = () => {
      crossNode?.close();
      this.moves?.close();
    };
    this.dispatcher = new HttpDispatcher({
      authenticate: options.authenticate,
      userIdOf,
      disconnectTimeout: options.disconnectTimeout ?? DEFAULTS.disconnectTimeout,
      tickInterval: options.timerInterval ?? DEFAULTS.timerInterval,
      meter: this.metricsOf?.meter,
      crossNode: crossNode?.options,
      reportError: (error, where) => this.reportError(error, where),
    });
  }

  private readonly closeCrossNode: () => void;
  private readonly moves: StatefulMoves | undefined;

  private createMetrics(options: HubwireOptions['metrics']): HubwireMetrics {
    const backplane = this.backplane;
    const metrics = new HubwireMetrics(
      {
        nodeId: () => backplane?.nodeId ?? 'local',
        connections: () => this.dispatcher.manager.connections(),
        classicConnections: () => {
          const counts: Record<string, number> = {};
          for (const endpoint of this.classic) counts[endpoint.basePath] = endpoint.connectionCount;
          return counts;
        },
        pendingResults: () => {
          let pending = 0;
          for (const endpoint of this.endpoints.values()) pending += endpoint.bus.pendingResults();
          return pending;
        },
        backplane: () => backplane?.stats(),
        nodes: () => backplane?.nodes(),
      },
      options || {},
    );
    backplane?.observeErrors((error, where) => metrics.meter.error(error, `backplane: ${where}`));
    return metrics;
  }

  /**
   * This server's metrics: `snapshot()`, a Prometheus `registry` / `handler()`, and the OpenTelemetry instruments
   * registered at construction. Throws when the server was created with `metrics: false`.
   */
  get metrics(): HubwireMetrics {
    if (!this.metricsOf) {
      throw new HubwireError(
        'HW_ERR_INVALID_OPTION',
        'Metrics are off: this server was created with `metrics: false`.',
      );
    }
    return this.metricsOf;
  }

  /**
   * Serves the Prometheus metrics at `path` (default `/metrics`) on this server. `authorize` decides per request
   * (refused: 403); without it anyone who can reach the server may scrape. To serve them on their own port instead:
   * `http.createServer(hubwire.metrics.handler()).listen(9464)`.
   */
  mapMetrics(
    path = '/metrics',
    options: { authorize?: (request: IncomingMessage) => boolean | Promise<boolean> } = {},
  ): void {
    const handler = guardHandler(this.metrics.handler(), options.authorize, (error, where) =>
      this.reportError(error, where),
    );
    this.addRoute(path, handler);
  }

  /** Serves a plain HTTP handler at exactly `path` (case-insensitive, query ignored) before the hubs. */
  addRoute(path: string, handler: (request: IncomingMessage, response: ServerResponse) => void): void {
    const key = pathKey(normalizePath(path));
    if (this.routes.has(key)) throw new Error(`A route is already mapped at '${path}'.`);
    this.routes.set(key, handler);
  }

  /**
   * Maps a raw connection endpoint (ASP.NET Core's ConnectionHandler) at `path`: no hub protocol; `handler` gets
   * each connection when its transport starts and reads / writes text or bytes on it. Negotiated like a hub, over
   * the same transports; the hub options that concern the connection (transports, authorize,
   * requireAuthenticatedUser, allowedOrigins, longPollTimeout, size limits, negotiateRedirect) apply.
   */
  mapConnection(path: string, handler: ConnectionHandler, options: ConnectionEndpointOptions = {}): void {
    const normalized = normalizePath(path);
    const resolved = this.resolveOptions(options);
    const authorize = toAuthorizeUser(options.authorize);
    const requireUser = resolved.requireAuthenticatedUser;
    const endpoint = new RawEndpoint(
      normalized,
      {
        transports: resolved.transports,
        allowStatefulReconnects: false,
        longPollTimeout: resolved.longPollTimeout,
        maxRequestBodySize: resolved.maxRequestBodySize,
        maxWebSocketFrameSize: resolved.maxWebSocketFrameSize,
        transportMaxBufferSize: resolved.transportMaxBufferSize,
        maxQueuedBytes: resolved.maxQueuedBytes,
        allowedOrigins: resolved.allowedOrigins,
        negotiateRedirect: options.negotiateRedirect,
      },
      handler,
      async (user) => {
        if (requireUser && (user === undefined || user === null)) return false;
        return authorize ? authorize(user, undefined) : true;
      },
      (error, where) => this.reportError(error, where),
    );
    this.dispatcher.addEndpoint(endpoint);
  }

  /** Maps a hub (a Hub subclass or a plain object of methods) at `path`, e.g. `/chat`. */
  mapHub(path: string, hub: HubDefinition, hubOptions: HubOptions = {}): HubContext {
    const normalized = normalizePath(path, 'hub path');
    const resolved = this.resolveOptions(hubOptions);
    const bus = hubOptions.bus ?? this.createBus(normalized, resolved.clientResultTimeout);
    const endpoint = new HubEndpoint(
      normalized,
      hub,
      resolved,
      bus,
      this.options.userIdProvider ?? defaultUserIdProvider,
      (error, where) => this.reportError(error, where),
    );
    endpoint.countConnections = (hubPath) => this.presence.count(hubPath);
    endpoint.meter = this.metricsOf?.meter.hub(normalized);
    endpoint.moves = this.moves;
    this.dispatcher.addEndpoint(endpoint);
    this.endpoints.set(normalized, endpoint);
    return endpoint;
  }

  /**
   * Serves the classic ASP.NET SignalR 2 protocol (the jQuery client and its `/hubs` proxy) at `path`, for hubs
   * already mapped with mapHub: `mapClassicHubs('/signalr', { chatHub: '/chat' })`. Classic and modern clients
   * share the hub, its bus and its groups. See docs/classic.md.
   */
  mapClassicHubs(path: string, hubs: ClassicHubMap, options?: ClassicHubsOptions): void {
    const endpointOf = (hub: string | HubContext): HubEndpoint => {
      const context = typeof hub === 'string' ? this.hub(hub) : hub;
      if (!(context instanceof HubEndpoint) || this.endpoints.get(context.path) !== context) {
        throw new Error('A classic hub must name a hub mapped on this server.');
      }
      return context;
    };
    const classic = createClassicServer(path, hubs, options, endpointOf, this.classicDeps());
    if (this.classic.some((c) => c.basePath === classic.basePath)) {
      throw new Error(`Classic hubs are already mapped at '${classic.basePath}'.`);
    }
    this.classic.push(classic);
    classic.listenToBackplane();
  }

  /**
   * Serves a classic SignalR 2 PersistentConnection at `path` (`$.connection('/echo')` in the jQuery client): no
   * hub protocol; `handler`'s hooks hear connects, received data and disconnects. The returned context sends JSON
   * values to connections, users, groups or everyone, on every node (through the backplane when there is one).
   * See docs/classic.md.
   */
  mapClassicConnection(
    path: string,
    handler: PersistentConnectionHandler,
    options?: ClassicHubsOptions,
  ): PersistentConnectionContext {
    let endpoint: PersistentEndpoint | undefined;
    const classic = createPersistentServer(
      path,
      (basePath) => {
        if (this.classic.some((c) => c.basePath === basePath)) {
          throw new Error(`A classic endpoint is already mapped at '${basePath}'.`);
        }
        const timeout = this.options.clientResultTimeout ?? DEFAULTS.clientResultTimeout;
        // Its own key on the backplane: a hub mapped at the same path keeps its messages apart.
        const bus = this.createBus(`classic-connection:${basePath}`, timeout);
        this.persistentBuses.push(bus);
        endpoint = new PersistentEndpoint(basePath, handler, bus, (error, where) => this.reportError(error, where));
        return endpoint;
      },
      options,
      this.classicDeps(),
    );
    this.classic.push(classic);
    classic.listenToBackplane();
    return endpoint as PersistentEndpoint;
  }

  /**
   * Maps the live dashboard: a page at `path` (e.g. `/hubwire`) and its hub at `${path}/hub`, both behind
   * `options.authorize` (required; `allowLoopback` for development). While anyone watches, every node sends its
   * metrics snapshot to the viewers every `interval` (default 1000 ms). See "Dashboard" in the package README.
   */
  mapDashboard(path: string, options: DashboardOptions): Dashboard {
    const metrics = this.metrics; // throws with `metrics: false`: the dashboard shows them
    const dashboard = new Dashboard(path, options, {
      snapshot: () => metrics.snapshot(),
      nodes: () => this.nodes(),
      authenticate: this.options.authenticate,
      reportError: (error, where) => this.reportError(error, where),
      forwardRequest: (request, response) => this.dispatcher.handleRequest(request, response),
      forwardUpgrade: (request, socket, head) => this.dispatcher.handleUpgrade(request, socket, head),
    });
    dashboard.start(this.mapHub(dashboard.hubPath, dashboard.hubDefinition(), dashboard.hubOptions()));
    this.dashboards.push(dashboard);
    return dashboard;
  }

  /** The bus of an endpoint: over the backplane (its envelopes carry `key`), or in memory without one. */
  private createBus(key: string, clientResultTimeout: number): MessageBus {
    return this.backplane
      ? new BackplaneBus(this.backplane, key, clientResultTimeout)
      : new LocalBus({ clientResultTimeout });
  }

  /** What a classic endpoint takes from this server. */
  private classicDeps(): ClassicServerDeps {
    return {
      authenticate: this.options.authenticate,
      userIdOf: this.options.userIdProvider ?? defaultUserIdProvider,
      reportError: (error, where) => this.reportError(error, where),
      backplane: this.backplane,
      allowedOrigins: this.options.allowedOrigins,
    };
  }

  /** Resolves once the backplane (if any) has installed its schema and reads its streams. */
  async ready(): Promise<void> {
    await this.backplane?.start();
  }

  /** The hub mapped at a path, or the one mapped for a hub definition. */
  hub(pathOrDefinition: string | HubDefinition): HubContext {
    if (typeof pathOrDefinition === 'string') {
      const endpoint = pathOrDefinition.startsWith('/')
        ? this.endpoints.get(normalizePath(pathOrDefinition))
        : undefined;
      if (endpoint) return endpoint;
    } else {
      const matches = [...this.endpoints.values()].filter((e) => e.definition === pathOrDefinition);
      if (matches.length > 1) {
        const paths = matches.map((e) => `'${e.path}'`).join(', ');
        throw new Error(`That hub is mapped at several paths (${paths}): ask for one by its path.`);
      }
      if (matches[0]) return matches[0];
    }
    throw new Error(
      `No hub is mapped for ${typeof pathOrDefinition === 'string' ? `'${pathOrDefinition}'` : 'that definition'}.`,
    );
  }

  private resolveOptions(hubOptions: HubOptions): ResolvedHubOptions {
    return resolveHubOptions(this.options, hubOptions);
  }

  private reportError(error: unknown, where: string): void {
    this.metricsOf?.meter.error(error, where);
    if (this.options.onError) this.options.onError(error, where);
    else console.error(`[hubwire] ${where}:`, error);
  }

  /**
   * Handles a request if it belongs to a mapped hub; returns false otherwise. Use as Express middleware through
   * `middleware()`, or call it first in a plain `request` listener.
   */
  handleRequest(request: IncomingMessage, response: ServerResponse): boolean {
    if (this.routes.size > 0) {
      const route = this.routes.get(requestPathKey(request.url) ?? '');
      if (route) {
        route(request, response);
        return true;
      }
    }
    for (const dashboard of this.dashboards) if (dashboard.handleRequest(request, response)) return true;
    for (const classic of this.classic) if (classic.handleRequest(request, response)) return true;
    return this.dispatcher.handleRequest(request, response);
  }

  /** Handles an `upgrade` if it belongs to a mapped hub; returns false otherwise. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    for (const dashboard of this.dashboards) if (dashboard.handleUpgrade(request, socket, head)) return true;
    for (const classic of this.classic) if (classic.handleUpgrade(request, socket, head)) return true;
    return this.dispatcher.handleUpgrade(request, socket, head);
  }

  /** Express / Connect middleware: hub requests are answered, others go to `next()`. */
  middleware(): (request: IncomingMessage, response: ServerResponse, next: (error?: unknown) => void) => void {
    return (request, response, next) => {
      if (!this.handleRequest(request, response)) next();
    };
  }

  /** Takes over WebSocket upgrades on an existing server (requests still need `middleware()` or `handleRequest`). */
  attach(server: Server): this {
    const listener = (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (this.handleUpgrade(request, socket, head)) return;
      // Leave other paths to the app's own upgrade listeners; answer 404 when there are none.
      if (server.listenerCount('upgrade') === 1) rejectUpgrade(socket, 404, 'Not found');
    };
    server.on('upgrade', listener);
    return this;
  }

  /**
   * Starts a standalone server. `fallback` answers requests outside the hubs (404 by default).
   * Resolves with the bound port.
   */
  async listen(
    port = 0,
    host = '127.0.0.1',
    fallback?: (request: IncomingMessage, response: ServerResponse) => void,
  ): Promise<number> {
    const server = createServer((request, response) => {
      if (this.handleRequest(request, response)) return;
      if (fallback) fallback(request, response);
      else {
        response.writeHead(404, { 'Content-Type': 'text/plain' });
        response.end('Not found');
      }
    });
    this.attach(server);
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return (server.address() as AddressInfo).port;
  }

  /**
   * The nodes of the cluster, from the backplane's node registry (alive, and dead ones not yet aged out; one query;
   * what each says is as fresh as its last heartbeat). Without a backplane: this node alone.
   */
  nodes(): Promise<ClusterNode[]> {
    return this.presence.nodes();
  }

  /** The http.Server that `listen()` started. */
  get httpServer(): Server | undefined {
    return this.server;
  }

  /** Ends every connection and stops the listener (if `listen()` started one). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const dashboard of this.dashboards) dashboard.close();
    this.dispatcher.close();
    for (const classic of this.classic) classic.close();
    for (const endpoint of this.endpoints.values()) await endpoint.bus.close();
    for (const bus of this.persistentBuses) await bus.close();
    await this.backplane?.close();
    this.closeCrossNode();
    this.metricsOf?.close();
    const server = this.server;
    if (server) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    }
  }
}
