// Cross-origin access to an endpoint: CORS with credentials for HTTP requests (negotiate, SSE, long polling,
// sends) and the Origin check of WebSocket upgrades (browsers apply no CORS to WebSockets).

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EndpointSettings } from './endpoint.js';

/** Headers the official browser client sends, which a preflight must allow. */
const ALLOWED_HEADERS = 'Authorization, Content-Type, X-Requested-With, X-SignalR-User-Agent';

export type OriginVerdict = 'same-origin' | 'allowed' | 'refused' | 'unchecked';

/**
 * Checks an `allowedOrigins` option. CORS here is always with credentials (the official client sends cookies and
 * the Authorization header), so `'*'` is refused, as ASP.NET Core refuses AllowAnyOrigin with AllowCredentials: it
 * would let every web site make requests as the user. List the origins, or pass a predicate (which may return true
 * for every origin, if that is really meant). Entries must be origins (`https://app.example.com`, no path).
 */
export function validateAllowedOrigins(value: unknown, option = 'allowedOrigins'): void {
  if (value === undefined || typeof value === 'function') return;
  if (!Array.isArray(value)) throw new TypeError(`Option '${option}' must be an array of origins or a predicate.`);
  for (const entry of value) {
    if (entry === '*') {
      throw new TypeError(
        `Option '${option}' cannot contain '*': cross-origin requests here carry credentials (cookies, the Authorization header), and allowing every origin with credentials lets any web site act as your users. List the origins, or pass a predicate such as (origin) => origin.endsWith('.example.com').`,
      );
    }
    if (typeof entry !== 'string' || !/^[a-z][a-z0-9+.-]*:\/\/[^/?#\s]+$/i.test(entry)) {
      throw new TypeError(
        `Option '${option}' has '${String(entry)}', which is not an origin (scheme://host[:port], no path or trailing slash).`,
      );
    }
  }
}

/** Whether a request's Origin may use the endpoint. */
export function checkOrigin(
  settings: Pick<EndpointSettings, 'allowedOrigins'>,
  request: IncomingMessage,
): OriginVerdict {
  const allowed = settings.allowedOrigins;
  const origin = request.headers.origin;
  if (allowed === undefined || origin === undefined) return 'unchecked';
  const host = request.headers.host;
  if (host && (origin === `http://${host}` || origin === `https://${host}`)) return 'same-origin';
  const ok = typeof allowed === 'function' ? allowed(origin) : allowed.includes(origin);
  return ok ? 'allowed' : 'refused';
}

/**
 * Applies an endpoint's origin policy to an HTTP request: a refused origin is answered by `refuse` (403), an allowed
 * preflight is answered here, an allowed request gets the CORS headers. True when the request has been answered.
 */
export function answerByOrigin(
  settings: Pick<EndpointSettings, 'allowedOrigins'>,
  request: IncomingMessage,
  response: ServerResponse,
  refuse: () => void,
): boolean {
  const origin = checkOrigin(settings, request);
  if (origin === 'refused') {
    request.resume();
    refuse();
    return true;
  }
  if (origin !== 'allowed') return false;
  if (request.method === 'OPTIONS') {
    request.resume();
    answerPreflight(request, response);
    return true;
  }
  applyCors(request, response);
  return false;
}

/** Adds the CORS response headers for an allowed cross-origin request. */
export function applyCors(request: IncomingMessage, response: ServerResponse): void {
  // With credentials the origin is echoed (never `*`), and caches must key on it.
  response.setHeader('Access-Control-Allow-Origin', request.headers.origin as string);
  response.setHeader('Access-Control-Allow-Credentials', 'true');
  response.setHeader('Vary', 'Origin');
}

/** Answers a preflight (OPTIONS) for an allowed origin. */
export function answerPreflight(request: IncomingMessage, response: ServerResponse): void {
  applyCors(request, response);
  const requested = request.headers['access-control-request-headers'];
  response.writeHead(204, {
    'Access-Control-Allow-Methods': 'GET, POST, DELETE, OPTIONS',
    'Access-Control-Allow-Headers': typeof requested === 'string' && requested ? requested : ALLOWED_HEADERS,
    'Access-Control-Max-Age': '600',
    'Content-Length': 0,
  });
  response.end();
}
