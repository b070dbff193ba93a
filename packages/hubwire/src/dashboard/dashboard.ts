// The live dashboard (`hubwire.mapDashboard(path, { authorize })`): a page at `path` and an internal hub at
// `${path}/hub`, both behind the app's `authorize` hook. While the cluster has viewers, every node sends its metrics
// snapshot to the hub's clients every `interval` (through the backplane when there is one, so a page on any node
// sees every node); the page asks the hub for the node registry every few seconds. Unwatched, a node sends nothing.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ClusterNode } from '../backplane/node-heartbeat.js';
import { rejectUpgrade } from '../connection/http-dispatcher.js';
import { normalizePath, requestPathKey } from '../connection/paths.js';
import type { HubContext } from '../hub/clients.js';
import type { HubInstanceState } from '../hub/hub.js';
import type { HubOptions } from '../hub/hub-options.js';
import type { HubDefinition } from '../hub/hub-registry.js';
import type { NodeMetricsSnapshot } from '../metrics/snapshot.js';
import { dashboardPage } from './page.js';

/**
 * Decides whether a request may use the dashboard (the page and every request of its hub): `user` is what the
 * server's `authenticate` returned for it (undefined without one). Throwing refuses (and reports the error).
 */
export type DashboardAuthorize = (request: IncomingMessage, user: unknown) => boolean | Promise<boolean>;

export interface DashboardOptions {
  /** Required: who may see the dashboard. `allowLoopback` is the development choice. */
  authorize: DashboardAuthorize;
  /** How often each node sends its snapshot while someone watches (ms). Default 1000. */
  interval?: number;
  /**
   * How often a node without viewers of its own reads the node registry to learn whether another node has some
   * (ms). Default 5000, the registry's default heartbeat: what it reads is no fresher than that.
   */
  viewerCheckInterval?: number;
}

/** What the dashboard reads from the server, and how it hands a hub request on once authorized. */
export interface DashboardSources {
  snapshot(): NodeMetricsSnapshot;
  nodes(): Promise<ClusterNode[]>;
  authenticate: ((request: IncomingMessage) => unknown) | undefined;
  reportError(error: unknown, where: string): void;
  forwardRequest(request: IncomingMessage, response: ServerResponse): boolean;
  forwardUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): boolean;
}

/** A node of the registry as the page gets it (`invoke('nodes')`): times in epoch ms, ages by the serving node. */
export interface DashboardNode {
  id: string;
  info: Record<string, unknown>;
  startedAt: number;
  heartbeatAt: number;
  heartbeatAge: number;
  alive: boolean;
  /** The node serving this page. */
  self: boolean;
}

function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice('::ffff:'.length) : address;
  return address === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

function isLoopbackHost(host: string | undefined): boolean {
  if (!host) return false;
  let hostname: string;
  try {
    hostname = new URL(`http://${host}`).hostname;
  } catch {
    return false;
  }
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

/**
 * For development only: allows requests from this machine (a loopback peer address, addressed to a loopback host
 * name, not relayed by a proxy). Refuses everything behind a reverse proxy on the same host (Forwarded /
 * X-Forwarded-For headers) and pages reached through another host name (DNS rebinding).
 */
export const allowLoopback: DashboardAuthorize = (request) =>
  isLoopbackAddress(request.socket.remoteAddress) &&
  isLoopbackHost(request.headers.host) &&
  request.headers.forwarded === undefined &&
  request.headers['x-forwarded-for'] === undefined;

function respond(response: ServerResponse, status: number, body: string): void {
  if (response.headersSent) {
    if (!response.writableEnded) response.end();
    return;
  }
  response.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
  });
  response.end(body);
}

type Refusal = { status: number; message: string };

export class Dashboard {
  readonly path: string;
  readonly hubPath: string;
  private readonly interval: number;
  private readonly viewerCheckInterval: number;
  private readonly page: { html: string; csp: string };
  private hub: HubContext | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** This node's viewers (connection ids), counted by the hub's lifetime hooks. */
  private readonly viewers = new Set<string>();
  private remoteViewers = false;
  private checkedAt = 0;
  private ticking = false;
  private failing = false;
  private closed = false;

  constructor(
    path: string,
    private readonly options: DashboardOptions,
    private readonly sources: DashboardSources,
  ) {
    if (typeof options?.authorize !== 'function') {
      throw new TypeError(
        "mapDashboard needs an 'authorize' function (e.g. allowLoopback, for development): the dashboard is never open to everyone.",
      );
    }
    this.path = normalizePath(path, 'dashboard path');
    this.hubPath = `${this.path === '/' ? '' : this.path}/hub`;
    this.interval = options.interval ?? 1000;
    this.viewerCheckInterval = options.viewerCheckInterval ?? 5000;
    for (const key of ['interval', 'viewerCheckInterval'] as const) {
      if (!(this[key] >= 10)) throw new TypeError(`Dashboard option '${key}' must be at least 10 ms.`);
    }
    this.page = dashboardPage({ hubPath: this.hubPath, interval: this.interval });
  }

  /** The internal hub: `nodes()` for the page, lifetime hooks that count this node's viewers. */
  hubDefinition(): HubDefinition {
    const dashboard = this;
    return {
      onConnected(this: HubInstanceState) {
        dashboard.viewers.add(this.context.connectionId);
        // The first paint need not wait for the next tick: this node's snapshot now, the others' on their ticks.
        if (!dashboard.closed) return this.clients.caller.send('snapshot', dashboard.sources.snapshot());
      },
      onDisconnected(this: HubInstanceState) {
        dashboard.viewers.delete(this.context.connectionId);
      },
      nodes: () => this.registry(),
    };
  }

  hubOptions(): HubOptions {
    return { callable: ['nodes'] };
  }

  /** Starts the ticks (the server calls it once the hub is mapped). */
  start(hub: HubContext): void {
    this.hub = hub;
    this.timer = setInterval(() => void this.tick(), this.interval);
    this.timer.unref();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
  }

  private async registry(): Promise<DashboardNode[]> {
    const now = Date.now();
    return (await this.sources.nodes()).map((node) => ({
      id: node.id,
      info: node.info,
      startedAt: node.startedAt.getTime(),
      heartbeatAt: node.heartbeatAt.getTime(),
      heartbeatAge: Math.max(0, now - node.heartbeatAt.getTime()),
      alive: node.alive,
      self: node.self,
    }));
  }

  /** Whether anyone on the cluster watches: this node's viewers now, the others' as the registry last said. */
  private async watched(): Promise<boolean> {
    if (this.viewers.size > 0 || !this.hub) return this.viewers.size > 0;
    const now = Date.now();
    if (now - this.checkedAt >= this.viewerCheckInterval) {
      this.checkedAt = now;
      this.remoteViewers = (await this.hub.connectionCount()) > 0;
    }
    return this.remoteViewers;
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.closed || !this.hub) return;
    this.ticking = true;
    try {
      if (!(await this.watched()) || this.closed) return;
      const snapshot = this.sources.snapshot();
      // While the database is unreachable a snapshot would only queue behind the app's own messages.
      if (snapshot.backplane?.streams.some((s) => s.state === 'buffering')) return;
      await this.hub.clients.all.send('snapshot', snapshot);
      this.failing = false;
    } catch (error) {
      // Once per failing spell, not every tick.
      if (!this.failing && !this.closed) this.sources.reportError(error, 'the dashboard snapshot');
      this.failing = true;
    } finally {
      this.ticking = false;
    }
  }

  /** Which part of the dashboard a request is for, matched as the dispatcher routes (case-insensitively). */
  private classify(request: IncomingMessage): 'page' | 'hub' | undefined {
    const path = requestPathKey(request.url);
    if (path === undefined) return undefined;
    if (path === this.path.toLowerCase()) return 'page';
    const hub = this.hubPath.toLowerCase();
    if (path === hub || path === `${hub}/negotiate`) return 'hub';
    return undefined;
  }

  /** Undefined when the request may go on; else why not. */
  private async check(request: IncomingMessage, kind: 'page' | 'hub'): Promise<Refusal | undefined> {
    const origin = request.headers.origin;
    if (kind === 'hub' && origin !== undefined) {
      let sameOrigin = false;
      try {
        sameOrigin = new URL(origin).host === request.headers.host;
      } catch {}
      if (!sameOrigin) return { status: 403, message: 'The Hubwire dashboard refuses cross-origin requests.' };
    }
    let user: unknown;
    try {
      user = this.sources.authenticate ? await this.sources.authenticate(request) : undefined;
    } catch {
      return { status: 401, message: 'Authentication failed.' };
    }
    let allowed = false;
    try {
      allowed = (await this.options.authorize(request, user)) === true;
    } catch (error) {
      this.sources.reportError(error, "the dashboard's authorize");
    }
    if (!allowed) {
      return { status: 403, message: "Forbidden: the Hubwire dashboard's authorize hook refused this request." };
    }
    return undefined;
  }

  handleRequest(request: IncomingMessage, response: ServerResponse): boolean {
    const kind = this.classify(request);
    if (!kind) return false;
    this.check(request, kind)
      .then((refusal) => {
        if (refusal) respond(response, refusal.status, refusal.message);
        else if (kind === 'page') this.servePage(request, response);
        else if (!this.sources.forwardRequest(request, response)) respond(response, 404, 'Not found');
      })
      .catch((error: unknown) => {
        this.sources.reportError(error, 'a dashboard request');
        respond(response, 500, 'Internal server error.');
      });
    return true;
  }

  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    if (this.classify(request) !== 'hub') return false;
    const onError = () => socket.destroy();
    socket.on('error', onError);
    this.check(request, 'hub')
      .then((refusal) => {
        socket.off('error', onError);
        if (refusal) rejectUpgrade(socket, refusal.status, refusal.message);
        else if (!this.sources.forwardUpgrade(request, socket, head)) rejectUpgrade(socket, 404, 'Not found');
      })
      .catch((error: unknown) => {
        this.sources.reportError(error, 'a dashboard upgrade');
        rejectUpgrade(socket, 500, 'Internal server error.');
      });
    return true;
  }

  private servePage(request: IncomingMessage, response: ServerResponse): void {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('Allow', 'GET, HEAD');
      respond(response, 405, 'The dashboard page answers GET.');
      return;
    }
    response.writeHead(200, {
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Length': Buffer.byteLength(this.page.html),
      'Cache-Control': 'no-store',
      'Content-Security-Policy': this.page.csp,
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
    });
    response.end(request.method === 'HEAD' ? undefined : this.page.html);
  }
}
