// The routes of the classic protocol under its base path: negotiate, connect, reconnect, poll, start, send, abort,
// ping and the proxy script, for the four transports (see PROTOCOL-SIGNALR2.md §1–§3).

import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { clientErrorText } from '../hub/hub-invoker.js';
import type { ClassicConnection } from './classic-connection.js';
import { respondJson } from './classic-delivery.js';
import type { CheckedRequest, ClassicServer, Route } from './classic-server.js';
import { encodeEnvelope, encodeHubResult } from './envelope.js';
import { generateHubsProxy } from './hubs-proxy.js';
import { ClassicHttpError, ERRORS, parseInvocation, readForm, respondText } from './requests.js';
import { EventStream, ForeverFrameStream, WebSocketStream } from './transports.js';

const STARTED = '{"Response":"started"}';
const PONG = '{"Response":"pong"}';
/** WebSocket invocations waiting their turn before the socket stops reading. */
const MAX_QUEUED_FRAMES = 64;

const scripts = new WeakMap<ClassicServer, string>();

export async function routeRequest(
  server: ClassicServer,
  route: Route,
  url: URL,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  if (url.searchParams.has('callback')) throw ERRORS.jsonp();
  if (route === 'hubs') {
    request.resume();
    if (server.persistent) throw new ClassicHttpError(404, 'Not found.');
    let script = scripts.get(server);
    if (script === undefined) {
      script = generateHubsProxy([...server.hubs.values()], server.basePath);
      scripts.set(server, script);
    }
    response.writeHead(200, {
      'Content-Type': 'application/javascript; charset=UTF-8',
      'Content-Length': Buffer.byteLength(script),
      'Cache-Control': 'no-cache',
    });
    response.end(script);
    return;
  }
  if (route === 'ping') {
    request.resume();
    respondJson(response, PONG);
    return;
  }
  if (route === 'negotiate') {
    request.resume();
    await negotiate(server, url, request, response);
    return;
  }
  const checked = await server.check(url, request);
  switch (route) {
    case 'connect':
    case 'reconnect':
    case 'poll':
      await openTransport(server, route, checked, request, response);
      return;
    case 'start':
      request.resume();
      await start(server, checked, request, response);
      return;
    case 'send':
      await send(server, checked, request, response);
      return;
    case 'abort': {
      request.resume();
      const connection = server.connection(checked.connectionId);
      if (connection) connection.dispose(undefined, true);
      else server.markEnded(checked.connectionId);
      // Other nodes: a holder reports the disconnect (unless this node did), and late requests hear it ended.
      server.noticeAbort(checked.connectionId, connection !== undefined);
      respondText(response, 200);
      return;
    }
  }
}

async function negotiate(server: ClassicServer, url: URL, request: IncomingMessage, response: ServerResponse) {
  await server.keys();
  const user = await server.authenticate(request);
  await server.resolveHubs(url, user, request);
  const connectionId = randomUUID();
  const options = server.options;
  const seconds = (ms: number) => ms / 1000;
  const body = {
    Url: server.basePath,
    ConnectionToken: server.tokens.connectionToken(connectionId, server.deps.userIdOf(user)),
    ConnectionId: connectionId,
    KeepAliveTimeout: options.keepAlive === null ? null : seconds(options.keepAlive * 2),
    DisconnectTimeout: seconds(options.disconnectTimeout),
    ConnectionTimeout: seconds(options.connectionTimeout),
    TryWebSockets: options.transports.includes('webSockets'),
    ProtocolVersion: protocolVersion(url.searchParams.get('clientProtocol')),
    TransportConnectTimeout: seconds(options.transportConnectTimeout),
    LongPollDelay: seconds(options.longPollDelay),
  };
  respondJson(response, JSON.stringify(body));
}

/**
 * SignalR 2.4 clamps the client's version into [1.2, 2.0] and echoes it; jQuery 2.4.3 accepts only 1.5, 2.0 and
 * 2.1, so 2.1 is answered as 2.0.
 */
export function protocolVersion(clientProtocol: string | null): string {
  const version = Number.parseFloat(clientProtocol ?? '');
  if (!(version >= 1.2)) return '1.2';
  return Math.min(version, 2).toFixed(1);
}

/** connect / reconnect / poll over HTTP: Server-Sent Events, foreverFrame and long polling. */
async function openTransport(
  server: ClassicServer,
  route: 'connect' | 'reconnect' | 'poll',
  checked: CheckedRequest,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const query = checked.url.searchParams;
  const transport = checked.transport;
  if (transport === 'webSockets') throw ERRORS.notWebSocket();
  if (route === 'poll' && transport !== 'longPolling') {
    throw new ClassicHttpError(400, 'Protocol error: /poll is used by long polling only.');
  }
  if (transport === 'longPolling') {
    // jQuery posts messageId and groupsToken in the form body; take the query's when absent.
    const form = await readForm(request, server.options.maxIncomingMessageSize);
    const messageId = form.get('messageId') ?? query.get('messageId');
    const groupsToken = form.get('groupsToken') ?? query.get('groupsToken');
    if (route !== 'connect' && server.isEnded(checked.connectionId)) {
      // A stopped connection polling on: the `E` field stops the client.
      respondJson(response, encodeEnvelope('', [], { error: 'The connection has ended.' }));
      return;
    }
    const connection = server.open(checked, request, groupsToken, route, messageId);
    if (route === 'connect') connection.delivery.connectLongPolling(response);
    else connection.delivery.longPoll(response, messageId);
    return;
  }
  request.resume();
  let frameId = 0;
  if (transport === 'foreverFrame') {
    const text = query.get('frameId') ?? '';
    frameId = Number(text);
    if (!/^\d{1,9}$/.test(text))
      throw new ClassicHttpError(400, 'Protocol error: frameId must be an unsigned integer.');
  }
  const connection = server.open(checked, request, query.get('groupsToken'), route, query.get('messageId'));
  const stream = transport === 'foreverFrame' ? new ForeverFrameStream(response, frameId) : new EventStream(response);
  response.on('close', () => connection.delivery.detachStream(stream));
  connection.delivery.attachStream(stream, query.get('messageId'), route === 'connect');
}

async function start(
  server: ClassicServer,
  checked: CheckedRequest,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  if (server.isEnded(checked.connectionId)) throw ERRORS.ended();
  let connection = server.connection(checked.connectionId);
  if (!connection) {
    if (!server.engine) {
      throw new ClassicHttpError(400, 'Protocol error: the connection has no transport on this server.');
    }
    // The transport is on another node: onConnected runs here, and that node reports the disconnect later.
    connection = server.transient(checked, request);
    connection.bindDetached(checked.hubs, server.persistent);
  }
  const held = server.connection(checked.connectionId) === connection;
  try {
    await connection.start();
    if (!held) server.noticeStarted(checked.connectionId);
  } catch (error) {
    const detailed = [...connection.bindings.values()].some((b) => b.hub.endpoint.options.enableDetailedErrors);
    const text = clientErrorText('Connection closed with an error.', error, detailed);
    connection.dispose(error instanceof Error ? error : new Error(String(error)), false);
    throw new ClassicHttpError(500, text);
  }
  respondJson(response, STARTED);
}

/** Runs one invocation (the text of `data`, or a WebSocket frame); resolves with the hub result JSON, or undefined. */
async function invoke(
  server: ClassicServer,
  connection: ClassicConnection,
  checked: CheckedRequest,
  request: IncomingMessage,
  text: string,
): Promise<string | ClassicHttpError> {
  const invocation = parseInvocation(text);
  if ('error' in invocation) {
    if (invocation.id === undefined) return new ClassicHttpError(400, invocation.error);
    return encodeHubResult({ id: invocation.id, error: invocation.error });
  }
  const hub = server.hubs.get(invocation.hub.toLowerCase());
  if (!hub) return encodeHubResult({ id: invocation.id, error: `'${invocation.hub}' Hub could not be resolved.` });
  if (!checked.hubs.includes(hub) && !(await hub.endpoint.authorizeConnection(checked.user, request))) {
    return encodeHubResult({ id: invocation.id, error: `The user is not authorized to use hub '${invocation.hub}'.` });
  }
  return connection.invoke(invocation, hub);
}

async function send(
  server: ClassicServer,
  checked: CheckedRequest,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const form = await readForm(request, server.options.maxIncomingMessageSize);
  const data = form.get('data');
  if (data === null) throw new ClassicHttpError(400, "Protocol error: the body has no 'data' field.");
  if (server.isEnded(checked.connectionId)) throw ERRORS.ended();
  const connection = server.connection(checked.connectionId) ?? server.transient(checked, request);
  if (server.persistent) {
    // SignalR 2's PersistentConnection answers /send with an empty body.
    await connection.receive(data, server.persistent);
    respondText(response, 200);
    return;
  }
  const result = await invoke(server, connection, checked, request, data);
  if (result instanceof ClassicHttpError) throw result;
  respondJson(response, result);
}

/** WebSocket connect / reconnect: after the checks, the socket becomes the connection's stream. */
export async function routeUpgrade(
  server: ClassicServer,
  route: Route | null,
  url: URL,
  request: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  accepted: () => void,
): Promise<void> {
  if (route !== 'connect' && route !== 'reconnect') {
    throw new ClassicHttpError(400, 'Protocol error: only /connect and /reconnect accept WebSockets.');
  }
  const checked = await server.check(url, request);
  if (checked.transport !== 'webSockets') throw ERRORS.unknownTransport();
  if (server.isEnded(checked.connectionId)) throw ERRORS.ended();
  server.webSockets.handleUpgrade(request, socket, head, (ws) => {
    accepted();
    let connection: ClassicConnection;
    try {
      connection = server.open(
        checked,
        request,
        url.searchParams.get('groupsToken'),
        route,
        url.searchParams.get('messageId'),
      );
    } catch {
      ws.close(1000);
      return;
    }
    const stream = new WebSocketStream(ws);
    ws.on('error', () => {
      // 'close' follows.
    });
    ws.on('close', () => connection.delivery.detachStream(stream));
    receiveFrames(server, connection, checked, request, ws);
    connection.delivery.attachStream(stream, url.searchParams.get('messageId'), route === 'connect');
  });
}

/** Each text frame is one invocation; results go back on the connection's WebSocket, in order. */
function receiveFrames(
  server: ClassicServer,
  connection: ClassicConnection,
  checked: CheckedRequest,
  request: IncomingMessage,
  ws: WebSocket,
): void {
  let queued = 0;
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) return; // the protocol is text only
    queued++;
    if (queued >= MAX_QUEUED_FRAMES) ws.pause();
    const text = data.toString('utf8');
    const persistent = server.persistent;
    (persistent
      ? connection.receive(text, persistent).then(() => undefined)
      : invoke(server, connection, checked, request, text)
    )
      .then((result) => {
        // A frame without an id cannot be answered: there is nothing the client would match it to.
        if (typeof result === 'string') connection.delivery.writeResult(result);
      })
      .catch((error: unknown) => server.reportError(error, 'classic WebSocket invocation'))
      .finally(() => {
        queued--;
        if (queued < MAX_QUEUED_FRAMES && ws.isPaused) ws.resume();
      });
  });
}
