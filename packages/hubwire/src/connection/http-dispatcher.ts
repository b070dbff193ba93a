// Routes HTTP requests and upgrades to endpoints: negotiate, the three transports, sends, and DELETE.
// Status codes follow the SignalR transport spec (TransportProtocols.md).

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { ServerMeter } from '../metrics/meter.js';
import { type LongPollingTransport, startLongPolling } from '../transports/long-polling.js';
import { startServerSentEvents } from '../transports/sse.js';
import { attachWebSocket } from '../transports/websocket.js';
import { withTimeout } from '../util/timing.js';
import type { HttpConnection } from './connection.js';
import { ConnectionManager } from './connection-manager.js';
import { answerByOrigin, checkOrigin } from './cors.js';
import { CrossNodeConnections, type CrossNodeOptions, type TokenClaims, type VerifiedToken } from './cross-node.js';
import type { Endpoint } from './endpoint.js';
import { destroySocket, HttpError, parseUrl, readBody, rejectUpgrade, respond } from './http-util.js';
import { buildNegotiateResponse, parseNegotiateVersion } from './negotiate.js';
import { pathKey } from './paths.js';
import { requestInfo } from './request-info.js';

export { rejectUpgrade } from './http-util.js';

/** How long a start waits for its claim to commit (the next request may reach another node only after it). */
const CLAIM_WAIT_MS = 2000;

/** What a transport request does with its connection: start a WebSocket or an event stream, poll, or send / stop. */
type TokenUse = 'websocket' | 'stream' | 'poll' | 'request';

export type Authenticate = (request: IncomingMessage) => unknown | Promise<unknown>;

export interface DispatcherOptions {
  authenticate: Authenticate | undefined;
  /** The user id of an authenticated user: a transport request must carry the negotiating user's id. */
  userIdOf: (user: unknown) => string | undefined;
  disconnectTimeout: number;
  tickInterval: number;
  /** The server's counters (undefined with metrics off). */
  meter?: ServerMeter;
  /** With a backplane and no sticky sessions: tokens every node verifies, and connections started on any node. */
  crossNode?: CrossNodeOptions;
  /** Where failures no client can be told about go (an unexpected error behind a 500, a move refused). */
  reportError?: (error: unknown, where: string) => void;
}

export class HttpDispatcher {
  readonly manager: ConnectionManager;
  private readonly endpoints = new Map<string, Endpoint>();
  private readonly webSocketServers = new Map<Endpoint, WebSocketServer>();
  private readonly posting = new WeakSet<HttpConnection>();

  constructor(private readonly options: DispatcherOptions) {
    this.manager = new ConnectionManager({
      disconnectTimeout: options.disconnectTimeout,
      tickInterval: options.tickInterval,
      meter: options.meter,
    });
    if (options.crossNode) {
      this.crossNode = new CrossNodeConnections(
        options.crossNode,
        (id) => this.manager.byConnectionId(id),
        (kind) => {
          if (options.meter) options.meter.crossNode.served[kind]++;
        },
      );
    }
  }

  private readonly crossNode: CrossNodeConnections | undefined;

  addEndpoint(endpoint: Endpoint): void {
    // Keys in lower case: paths match case-insensitively, as ASP.NET Core's routes do.
    const path = endpoint.path.toLowerCase();
    if (this.endpoints.has(path)) throw new Error(`An endpoint is already mapped at '${endpoint.path}'.`);
    this.endpoints.set(path, endpoint);
    this.webSocketServers.set(
      endpoint,
      new WebSocketServer({
        noServer: true,
        perMessageDeflate: false,
        clientTracking: false,
        maxPayload: endpoint.settings.maxWebSocketFrameSize,
      }),
    );
  }

  /** Finds the endpoint a URL path belongs to, and whether it is the negotiate route. */
  private route(pathname: string): { endpoint: Endpoint; negotiate: boolean } | undefined {
    const path = pathKey(pathname);
    const direct = this.endpoints.get(path);
    if (direct) return { endpoint: direct, negotiate: false };
    if (path.endsWith('/negotiate')) {
      const endpoint = this.endpoints.get(path.slice(0, -'/negotiate'.length) || '/');
      if (endpoint) return { endpoint, negotiate: true };
    }
    return undefined;
  }

  /** Handles a request if it belongs to one of the endpoints; returns false otherwise (call the next handler). */
  handleRequest(request: IncomingMessage, response: ServerResponse): boolean {
    const url = parseUrl(request);
    if (!url) {
      respond(response, 400, 'Bad request target.');
      return true;
    }
    const match = this.route(url.pathname);
    if (!match) return false;
    const refuse = () => respond(response, 403, 'Origin not allowed.');
    if (answerByOrigin(match.endpoint.settings, request, response, refuse)) return true;
    this.dispatch(match.endpoint, match.negotiate, url, request, response).catch((error: unknown) => {
      if (error instanceof HttpError) respond(response, error.status, error.message);
      else {
        this.options.reportError?.(error, `handling ${request.method ?? ''} ${url.pathname}`);
        respond(response, 500, 'Internal server error.');
      }
    });
    return true;
  }

  private async authenticate(endpoint: Endpoint, request: IncomingMessage): Promise<unknown> {
    let user: unknown;
    try {
      user = this.options.authenticate ? await this.options.authenticate(request) : undefined;
    } catch {
      throw new HttpError(401, '');
    }
    if (!(await endpoint.authorizeConnection(user, request))) throw new HttpError(401, '');
    return user;
  }

  private async dispatch(
    endpoint: Endpoint,
    negotiate: boolean,
    url: URL,
    request: IncomingMessage,
    response: ServerResponse,
  ): Promise<void> {
    const method = request.method ?? 'GET';
    if (negotiate) {
      if (method !== 'POST') throw new HttpError(405, 'Negotiate requires POST.');
      const user = await this.authenticate(endpoint, request);
      request.resume();
      const redirect = await endpoint.settings.negotiateRedirect?.(request);
      if (redirect) {
        const body = JSON.stringify({ url: redirect.url, accessToken: redirect.accessToken });
        respond(response, 200, body, 'application/json');
        return;
      }
      const version = parseNegotiateVersion(url.searchParams.get('negotiateVersion'));
      if (typeof version === 'string') {
        respond(response, 200, JSON.stringify({ error: version }), 'application/json');
        return;
      }
      const wantsStateful = url.searchParams.get('useStatefulReconnect') === 'true';
      const stateful = wantsStateful && endpoint.settings.allowStatefulReconnects && version >= 1;
      const connection = this.create(endpoint, version, requestInfo(request), user, stateful);
      const body = buildNegotiateResponse(connection, endpoint.settings.transports);
      respond(response, 200, JSON.stringify(body), 'application/json');
      return;
    }

    const token = url.searchParams.get('id');
    if (!token) throw new HttpError(400, 'Connection ID required');
    const accept = request.headers.accept ?? '';
    const kind = accept.includes('text/event-stream') ? 'ServerSentEvents' : 'LongPolling';
    const use: TokenUse = method === 'GET' ? (kind === 'ServerSentEvents' ? 'stream' : 'poll') : 'request';
    const found = await this.connectionFor(endpoint, token, request, use);
    // Held by another node: its requests are served there.
    if ('held' in found) {
      const { connectionId, path } = found.held.claims;
      const meter = this.options.meter;
      return (this.crossNode as CrossNodeConnections).remote.serveHttp(
        method,
        connectionId,
        path,
        endpoint.settings,
        request,
        response,
        (kind) => {
          if (meter) meter.crossNode.forwarded[kind]++;
        },
      );
    }
    if ('moved' in found) throw new HttpError(409, 'This connection token was already used.'); // WebSockets only
    const connection = found;

    switch (method) {
      case 'GET': {
        if (!endpoint.settings.transports.includes(kind)) throw new HttpError(404, `${kind} is not allowed here.`);
        if (kind === 'ServerSentEvents') {
          if (connection.transportKind === 'ServerSentEvents') {
            throw new HttpError(409, 'Connection already has an event stream.');
          }
          if (connection.transportKind !== undefined) {
            throw new HttpError(400, `Cannot change transports mid-connection (${connection.transportKind} in use).`);
          }
          connection.connectRequest = requestInfo(request);
          // The client sends its handshake as soon as the stream opens, maybe to another node: that node must
          // know this one holds the connection by then, so the claim commits before the stream opens.
          await this.claimStart(connection);
          if (connection.state === 'closed' || connection.transportKind !== undefined) {
            throw new HttpError(409, 'Connection already has an event stream.');
          }
          startServerSentEvents(connection, response);
          this.ensureApplication(endpoint, connection);
          return;
        }
        if (connection.transportKind === undefined) {
          connection.connectRequest = requestInfo(request);
          startLongPolling(connection, endpoint.settings.longPollTimeout);
          // The next poll may reach another node: it must know this one holds the connection by then.
          await this.ensureApplication(endpoint, connection);
        } else if (connection.transportKind !== 'LongPolling') {
          throw new HttpError(400, `Cannot change transports mid-connection (${connection.transportKind} in use).`);
        }
        (connection.transport as LongPollingTransport).poll(request, response);
        return;
      }
      case 'POST': {
        if (connection.transportKind === 'WebSockets')
          throw new HttpError(405, 'POST requests are not allowed for WebSocket connections.');
        if (!connection.application) throw new HttpError(400, 'Start a transport before sending.');
        if (this.posting.has(connection)) throw new HttpError(409, 'Another send request is in progress.');
        this.posting.add(connection);
        try {
          const body = await readBody(request, endpoint.settings.maxRequestBodySize);
          if (connection.state === 'closed') throw new HttpError(404, 'No Connection with that ID');
          // Not `lastSeen`: a long-polling client that sends but never polls is gone all the same.
          connection.noteReceived(body.length);
          const wait = connection.application.onData(body);
          if (wait) await wait;
        } finally {
          this.posting.delete(connection);
        }
        respond(response, 200);
        return;
      }
      case 'DELETE': {
        if (connection.transportKind !== 'LongPolling')
          throw new HttpError(400, 'DELETE is only supported for long polling.');
        request.resume();
        respond(response, 202, '');
        (connection.transport as LongPollingTransport | undefined)?.stop();
        connection.dispose();
        return;
      }
      default:
        throw new HttpError(405, `Method ${method} is not allowed.`);
    }
  }

  /**
   * The connection a transport request names: this node's; or, with connections on any node, one negotiated on
   * another node that this request starts here (`use` a stream or a poll: created from its verified token); or one
   * another node holds (`held`: a poll or a request the dispatcher forwards there). Either way the request must come
   * from the user who negotiated it.
   */
  private async connectionFor(
    endpoint: Endpoint,
    token: string,
    request: IncomingMessage,
    use: TokenUse,
  ): Promise<HttpConnection | { held: VerifiedToken } | { moved: HttpConnection; spent: boolean }> {
    const crossNode = this.crossNode;
    let local = this.manager.get(token);
    if (local && crossNode && local.anyNode && local.transportKind === undefined) {
      // Negotiated here, maybe started elsewhere: read the others' claims first (a claim disposes this copy).
      await crossNode.caughtUp();
      if (local.state === 'closed') local = undefined;
    }
    if (local) {
      if (local.endpointPath !== endpoint.path) throw new HttpError(404, 'No Connection with that ID');
      await this.checkSameUser(endpoint, local, request);
      return local;
    }
    if (!crossNode) throw new HttpError(404, 'No Connection with that ID');
    const refused = this.options.meter?.crossNode.refused;
    let verified = crossNode.read(token);
    if ('status' in verified) {
      if (refused) refused[verified.status === 503 ? 'unavailable' : 'forged']++;
      throw new HttpError(verified.status, verified.message);
    }
    const claims = verified.claims;
    if (claims.path !== endpoint.path.toLowerCase()) {
      if (refused) refused.forged++;
      throw new HttpError(404, 'No Connection with that ID');
    }
    const user = await this.authenticate(endpoint, request);
    if (this.options.userIdOf(user) !== claims.userId) {
      if (refused) refused.user++;
      throw new HttpError(403, 'The connection belongs to another user.');
    }
    if (use !== 'request' && !verified.spent && !verified.expired) {
      await crossNode.caughtUp();
      const again = crossNode.read(token);
      if ('status' in again) throw new HttpError(again.status, again.message);
      verified = again;
      if (!verified.spent) {
        if (this.options.meter) this.options.meter.crossNode.adopted++;
        return this.adoptHere(endpoint, token, claims, user, endpoint.settings.allowStatefulReconnects);
      }
    }
    if (use === 'websocket' && claims.statefulReconnect && endpoint.resumeMoved) {
      // A stateful-reconnect client whose transport broke, reconnecting through another node: it may move here
      // (if a node holds a checkpoint of it; its token may be older than the adoption window by then).
      return { moved: this.adoptHere(endpoint, token, claims, user, true), spent: verified.spent };
    }
    if (use === 'websocket' || use === 'stream') {
      if (refused) refused[verified.spent ? 'spent' : 'expired']++;
      if (verified.spent) throw new HttpError(409, 'This connection token was already used.');
      throw new HttpError(404, 'No Connection with that ID (its token expired before the connection started).');
    }
    return { held: verified };
  }

  /** A connection another node negotiated, created here from its verified token (stateful reconnect if `allowStateful`). */
  private adoptHere(
    endpoint: Endpoint,
    token: string,
    claims: TokenClaims,
    user: unknown,
    allowStateful: boolean,
  ): HttpConnection {
    const connection = this.manager.adopt(claims.connectionId, token, endpoint.path, claims.negotiateVersion, user);
    connection.anyNode = true;
    connection.statefulReconnect = claims.statefulReconnect && allowStateful;
    this.applyLimits(endpoint, connection);
    return connection;
  }

  /** A transport request must come from the user who negotiated the connection. */
  private async checkSameUser(endpoint: Endpoint, connection: HttpConnection, request: IncomingMessage): Promise<void> {
    if (!this.options.authenticate) return;
    const user = await this.authenticate(endpoint, request);
    if (this.options.userIdOf(user) !== this.options.userIdOf(connection.user))
      throw new HttpError(403, 'The connection belongs to another user.');
  }

  private create(
    endpoint: Endpoint,
    version: number,
    negotiateRequest: ReturnType<typeof requestInfo> | undefined,
    user: unknown,
    statefulReconnect = false,
  ): HttpConnection {
    const crossNode = this.crossNode;
    let signed = false;
    const makeToken = crossNode
      ? (connectionId: string) => {
          const token = crossNode.issue({
            connectionId,
            userId: this.options.userIdOf(user),
            path: endpoint.path.toLowerCase(),
            negotiateVersion: version,
            statefulReconnect,
            issuedAt: Date.now(),
          });
          signed = token !== undefined;
          return token;
        }
      : undefined;
    const connection = this.manager.create(endpoint.path, version, negotiateRequest, user, makeToken);
    connection.anyNode = signed;
    connection.statefulReconnect = statefulReconnect;
    this.applyLimits(endpoint, connection);
    return connection;
  }

  private applyLimits(endpoint: Endpoint, connection: HttpConnection): void {
    connection.limits = {
      pauseBytes: endpoint.settings.transportMaxBufferSize,
      maxBytes: endpoint.settings.maxQueuedBytes,
    };
  }

  /** Creates the connection's application when its transport starts; resolves once other nodes can know it is here. */
  private ensureApplication(endpoint: Endpoint, connection: HttpConnection): Promise<void> {
    if (connection.application) return Promise.resolve();
    connection.application = endpoint.createApplication(connection);
    // Its token is spent: other nodes refuse it for another start, and forward its requests here. (A token only this
    // node can read needs no claim.) Waited for at most CLAIM_WAIT_MS: a slow database delays, never blocks, a start.
    return this.claimStart(connection);
  }

  /** Tells the other nodes this one holds the connection (once); resolves when committed, at most CLAIM_WAIT_MS. */
  private claimStart(connection: HttpConnection): Promise<void> {
    if (!this.crossNode || !connection.anyNode) return Promise.resolve();
    return withTimeout(this.crossNode.claim(connection), CLAIM_WAIT_MS, undefined);
  }

  /** Handles an upgrade if it belongs to one of the endpoints; returns false otherwise. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const url = parseUrl(request);
    if (!url) {
      rejectUpgrade(socket, 400, 'Bad request target.');
      return true;
    }
    const match = this.route(url.pathname);
    if (!match || match.negotiate) return false;
    socket.on('error', destroySocket);
    this.upgrade(match.endpoint, url, request, socket, head).catch((error: unknown) => {
      if (error instanceof HttpError) rejectUpgrade(socket, error.status, error.message);
      else {
        this.options.reportError?.(error, `upgrading ${url.pathname} to a WebSocket`);
        rejectUpgrade(socket, 500, 'Internal server error.');
      }
    });
    return true;
  }

  private async upgrade(
    endpoint: Endpoint,
    url: URL,
    request: IncomingMessage,
    socket: Duplex,
    head: Buffer,
  ): Promise<void> {
    if (!endpoint.settings.transports.includes('WebSockets'))
      throw new HttpError(404, 'WebSockets is not allowed here.');
    if (checkOrigin(endpoint.settings, request) === 'refused') throw new HttpError(403, 'Origin not allowed.');
    const token = url.searchParams.get('id');
    let connection: HttpConnection | undefined;
    if (!token) {
      // skipNegotiation: the socket creates a version-0 connection of its own.
      const user = await this.authenticate(endpoint, request);
      connection = this.create(endpoint, 0, undefined, user);
    } else {
      const found = await this.connectionFor(endpoint, token, request, 'websocket');
      if ('held' in found) throw new HttpError(409, 'This connection token was already used.');
      connection = 'moved' in found ? await this.resumeMoved(endpoint, found.moved, found.spent) : found;
      if (connection.transportKind !== undefined && connection.transportKind !== 'WebSockets') {
        throw new HttpError(400, `Cannot change transports mid-connection (${connection.transportKind} in use).`);
      }
      if (connection.transportKind === 'WebSockets' && !connection.statefulReconnect) {
        throw new HttpError(409, 'Connection already has a WebSocket.');
      }
    }
    const target = connection;
    (this.webSocketServers.get(endpoint) as WebSocketServer).handleUpgrade(request, socket, head, (ws) => {
      // ws has its own socket error handling from here on.
      socket.off('error', destroySocket);
      if (target.state === 'closed') {
        ws.close(1000);
        return;
      }
      const resuming = target.application !== undefined;
      target.connectRequest = requestInfo(request);
      attachWebSocket(target, ws, socket);
      if (resuming) target.application?.onTransportResumed?.();
      else this.ensureApplication(endpoint, target);
    });
  }

  /** The connection another node held continues here (stateful reconnect), or the client is refused (409). */
  private async resumeMoved(endpoint: Endpoint, connection: HttpConnection, spent: boolean): Promise<HttpConnection> {
    let application: Awaited<ReturnType<NonNullable<Endpoint['resumeMoved']>>>;
    try {
      application = await endpoint.resumeMoved?.(connection);
    } catch (error) {
      connection.dispose();
      throw error;
    }
    if (!application) {
      connection.dispose();
      if (this.options.meter) this.options.meter.crossNode.refused[spent ? 'spent' : 'expired']++;
      if (spent) {
        // A stateful client whose connection lived elsewhere lost it: worth knowing (retention, restarts).
        this.options.reportError?.(
          new Error(
            `Connection '${connection.connectionId}' could not continue on this node after its client reconnected (no checkpoint of it here); the client starts over.`,
          ),
          'stateful reconnect across nodes',
        );
        throw new HttpError(409, 'This connection token was already used.');
      }
      throw new HttpError(404, 'No Connection with that ID (its token expired before the connection started).');
    }
    connection.application = application;
    if (this.options.meter) this.options.meter.crossNode.moved++;
    // Other nodes forward nothing for a WebSocket; the claim tells them the token is spent here too.
    void this.claimStart(connection);
    return connection;
  }

  close(): void {
    this.crossNode?.remote.close();
    this.manager.closeAll();
  }
}
