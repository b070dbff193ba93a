// A snapshot of an HTTP request that hub code may read (negotiate and connect requests).

import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';

export interface RequestInfo {
  readonly method: string;
  /** The path and query as received. */
  readonly url: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
}

export function requestInfo(req: IncomingMessage, url: URL): RequestInfo {
  return {
    method: req.method ?? 'GET',
    url: req.url ?? '/',
    path: url.pathname,
    query: url.searchParams,
    headers: req.headers,
    remoteAddress: req.socket.remoteAddress,
    remotePort: req.socket.remotePort,
  };
}

/** The bearer token of a request: the Authorization header, else `access_token` in the query (WebSockets, SSE). */
export function getAccessToken(req: { headers: IncomingHttpHeaders; url?: string }): string | undefined {
  const header = req.headers.authorization;
  if (typeof header === 'string' && /^bearer /i.test(header)) return header.slice(7).trim() || undefined;
  const url = req.url ?? '';
  const q = url.indexOf('?');
  if (q === -1) return undefined;
  return new URLSearchParams(url.slice(q + 1)).get('access_token') ?? undefined;
}
