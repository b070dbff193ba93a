// Shared by the classic protocol tests: a Hubwire server with the test hub mapped for modern clients at /test and for
// classic clients as `testHub` at /signalr, a page that loads the real jQuery client, raw HTTP helpers, and Chromium.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { type ClassicHubsOptions, type HubOptions, Hubwire } from 'hubwire';
import { type Browser, chromium } from 'playwright-core';
import { createTestHub, newObservations, type Observations } from '../helpers/test-hub.js';

const require = createRequire(import.meta.url);
/** The real jQuery and SignalR 2 jQuery client, from node_modules, at the paths the test pages load them from. */
const scripts: Record<string, string> = {
  '/lib/jquery.js': require.resolve('jquery'),
  '/lib/jquery.signalR.js': join(dirname(require.resolve('signalr/package.json')), 'jquery.signalR.js'),
};

/** Answers a test page (`pages[path]`, HTML) or one of the client scripts; false for any other path. */
export function serveTestPage(path: string, pages: Record<string, string>, response: ServerResponse): boolean {
  const page = pages[path];
  const script = scripts[path];
  if (page !== undefined) {
    response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    response.end(page);
    return true;
  }
  if (script === undefined) return false;
  void readFile(script).then((body) => {
    response.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8' });
    response.end(body);
  });
  return true;
}

/** The test servers' authentication: the user is whoever `?user=` names (jQuery sends `hub.qs` on every request). */
export function userFromQuery(request: IncomingMessage): { id: string } | undefined {
  const user = new URL(request.url ?? '/', 'http://localhost').searchParams.get('user');
  return user ? { id: user } : undefined;
}

export interface ClassicServer {
  hubwire: Hubwire;
  port: number;
  base: string;
  observations: Observations;
  close(): Promise<void>;
}

const PAGE = `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"></head><body>
<script src="/lib/jquery.js"></script>
<script src="/lib/jquery.signalR.js"></script>
<script src="/signalr/hubs"></script>
<script>
  window.received = [];
  window.groupReceived = [];
  var hub = $.connection.testHub;
  hub.client.message = function (text) { received.push(text); };
  hub.client.groupMessage = function (group, text) { groupReceived.push(group + ':' + text); };
  /** Starts the connection (on one transport, or auto) and resolves with the transport's name. */
  window.startClassic = function (transport, qs) {
    if (qs) $.connection.hub.qs = qs;
    return new Promise(function (resolve, reject) {
      $.connection.hub.start(transport ? { transport: transport } : {})
        .done(function () { resolve($.connection.hub.transport.name); })
        .fail(function (e) { reject(new Error(e.message)); });
    });
  };
  /** Calls a hub method; resolves with {result} or {error, source, data}. */
  window.call = function (method) {
    var args = Array.prototype.slice.call(arguments, 1);
    return new Promise(function (resolve) {
      hub.invoke.apply(hub, [method].concat(args))
        .done(function (result) { resolve({ result: result }); })
        .fail(function (e) { resolve({ error: e.message, source: e.source, data: e.data }); });
    });
  };
</script></body></html>`;

/** Starts Hubwire on a free port with the test hub (modern at /test, classic at /signalr). */
export async function startClassicServer(
  classicOptions: ClassicHubsOptions = {},
  hubOptions: HubOptions = {},
): Promise<ClassicServer> {
  const observations = newObservations();
  const hubwire = new Hubwire({
    authenticate: userFromQuery,
    onError: () => {},
  });
  hubwire.mapHub('/test', createTestHub(observations), hubOptions);
  hubwire.mapClassicHubs('/signalr', { TestHub: '/test' }, classicOptions);
  const port = await hubwire.listen(0, '127.0.0.1', (request, response) => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    if (serveTestPage(path, { '/page': PAGE }, response)) return;
    response.writeHead(404);
    response.end();
  });
  return { hubwire, port, base: `http://127.0.0.1:${port}`, observations, close: () => hubwire.close() };
}

export async function launchChromium(): Promise<Browser> {
  assert.ok(existsSync('/usr/bin/chromium'), "the browser tests need Debian's chromium (apt-get install -y chromium)");
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic'],
  });
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One HTTP request; `form` is sent form-encoded (as jQuery does). */
export function http(
  url: string,
  options: { method?: string; form?: Record<string, string>; body?: string | Buffer; timeoutMs?: number } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const body = options.form ? new URLSearchParams(options.form).toString() : options.body;
    const request = httpRequest(
      url,
      {
        method: options.method ?? (body !== undefined ? 'POST' : 'GET'),
        headers: body !== undefined ? { 'Content-Type': 'application/x-www-form-urlencoded; charset=UTF-8' } : {},
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        response.on('error', reject);
      },
    );
    request.setTimeout(options.timeoutMs ?? 10_000, () => request.destroy(new Error(`${url}: timed out`)));
    request.on('error', reject);
    request.end(body);
  });
}

export const HUBS = JSON.stringify([{ name: 'testhub' }]);

export interface Negotiated {
  ConnectionId: string;
  ConnectionToken: string;
  [key: string]: unknown;
}

/** Negotiates as jQuery 2.4.3 does; `user` goes in the query as the test server expects. */
export async function negotiate(base: string, user?: string, hubs = HUBS): Promise<Negotiated> {
  const query = new URLSearchParams({ clientProtocol: '2.1', connectionData: hubs });
  if (user) query.set('user', user);
  const response = await http(`${base}/signalr/negotiate?${query}`);
  assert.equal(response.status, 200, response.body);
  return JSON.parse(response.body) as Negotiated;
}

/** The URL of a classic route for a negotiated connection (the token URI-encoded, as the clients send it). */
export function routeUrl(
  base: string,
  route: string,
  negotiated: Negotiated,
  transport: string,
  extra: Record<string, string> = {},
): string {
  const query = new URLSearchParams({
    transport,
    clientProtocol: '2.1',
    connectionToken: negotiated.ConnectionToken,
    connectionData: HUBS,
    ...extra,
  });
  return `${base}/signalr/${route}?${query}`;
}
