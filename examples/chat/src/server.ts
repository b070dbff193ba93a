// Starts one chat node: the page at `/`, the hub at `/chat`; the same hub for classic SignalR 2 clients as `chatHub`
// at `/signalr`, with the tutorial's jQuery page at `/classic`; the live dashboard at `/hubwire` and
// Prometheus metrics at `/metrics` (from this machine only).

import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { allowLoopback, backplaneFromUrl, Hubwire } from 'hubwire';
import { ChatHub } from './chat-hub.js';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const signalrBundle = join(dirname(require.resolve('@microsoft/signalr')), '..', 'browser', 'signalr.min.js');
/** The classic page's scripts, served from node_modules: jQuery 3 and the SignalR 2 jQuery client. */
const classicScripts: Record<string, string> = {
  '/lib/jquery.min.js': join(dirname(require.resolve('jquery')), 'jquery.min.js'),
  '/lib/jquery.signalR.min.js': join(dirname(require.resolve('signalr/package.json')), 'jquery.signalR.min.js'),
};

export interface ChatServerOptions {
  port?: number;
  host?: string;
  /** Shown on the page, so two nodes can be told apart. */
  nodeName?: string;
  /** A backplane URL (postgres://… or sqlite:<file>) shared with other nodes. Default: none (one node). */
  backplane?: string;
}

export interface ChatServer {
  hubwire: Hubwire;
  port: number;
  url: string;
  close(): Promise<void>;
}

export async function startChatServer(options: ChatServerOptions = {}): Promise<ChatServer> {
  const nodeName = options.nodeName ?? `node-${process.pid}`;
  const backplane = options.backplane ? await backplaneFromUrl(options.backplane) : undefined;
  const hubwire = new Hubwire({ allowStatefulReconnects: true, backplane });
  hubwire.mapHub('/chat', ChatHub);
  // The same hub, its groups and its bus, for the jQuery client: `$.connection.chatHub`.
  hubwire.mapClassicHubs('/signalr', { chatHub: '/chat' });
  // The cluster's live dashboard. allowLoopback is for development: a deployed app decides who may see it.
  hubwire.mapDashboard('/hubwire', { authorize: allowLoopback });
  // Prometheus metrics (prom-client's text format), from this machine only too.
  hubwire.mapMetrics('/metrics', { authorize: (request) => allowLoopback(request, undefined) });
  const page = (await readFile(join(here, '..', 'public', 'index.html'), 'utf8')).replaceAll('{{NODE}}', nodeName);
  const classicPage = (await readFile(join(here, '..', 'public', 'classic.html'), 'utf8')).replaceAll(
    '{{NODE}}',
    nodeName,
  );
  const fallback = async (request: IncomingMessage, response: ServerResponse) => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    if (path === '/' || path === '/index.html') {
      response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-cache' });
      response.end(page);
    } else if (path === '/classic' || path === '/classic.html') {
      response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-cache' });
      response.end(classicPage);
    } else if (path === '/lib/signalr.min.js') {
      response.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8' });
      response.end(await readFile(signalrBundle));
    } else if (classicScripts[path]) {
      response.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8' });
      response.end(await readFile(classicScripts[path]));
    } else {
      response.writeHead(404, { 'Content-Type': 'text/plain' });
      response.end('Not found');
    }
  };
  const host = options.host ?? '127.0.0.1';
  const port = await hubwire.listen(options.port ?? 0, host, (request, response) => {
    fallback(request, response).catch(() => {
      if (!response.headersSent) response.writeHead(500);
      response.end();
    });
  });
  return { hubwire, port, url: `http://${host}:${port}/`, close: () => hubwire.close() };
}
