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
  /** The Cookie header, parsed (values URI-decoded). */
  readonly cookies: Readonly<Record<string, string>>;
}

/** Keeps only what hub code may read; the query is parsed on first use. */
class CapturedRequest implements RequestInfo {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  private parsed: URL | undefined;
  private parsedCookies: Record<string, string> | undefined;

  constructor(req: IncomingMessage) {
    this.method = req.method ?? 'GET';
    this.url = req.url ?? '/';
    this.headers = req.headers;
    this.remoteAddress = req.socket.remoteAddress;
    this.remotePort = req.socket.remotePort;
  }

  private get parsedUrl(): URL {
    if (!this.parsed) this.parsed = new URL(this.url, 'http://localhost');
    return this.parsed;
  }
  get path(): string {
    return this.parsedUrl.pathname;
  }
  get query(): URLSearchParams {
    return this.parsedUrl.searchParams;
  }
  get cookies(): Readonly<Record<string, string>> {
    if (!this.parsedCookies) this.parsedCookies = parseCookies(this.headers.cookie);
    return this.parsedCookies;
  }
}

function parseCookies(header: string | undefined): Record<string, string> {
  const cookies: Record<string, string> = Object.create(null);
  if (!header) return cookies;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    try {
      cookies[name] = decodeURIComponent(value);
    } catch {
      cookies[name] = value;
    }
  }
  return cookies;
}

export function requestInfo(req: IncomingMessage): RequestInfo {
  return new CapturedRequest(req);
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
