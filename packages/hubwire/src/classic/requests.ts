// Reading classic requests: the status codes and texts of SignalR 2's errors, form bodies under a size limit,
// `connectionData`, and hub invocations (`{"H","M","A","I","S"}`) checked for shape before anything runs.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ClassicInvocation } from './classic-hub.js';

/** A request refused with a status and a plain-text reason (SignalR 2's wording where it has one). */
export class ClassicHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export const ERRORS = {
  unknownTransport: () => new ClassicHttpError(400, 'Protocol error: Unknown transport.'),
  missingToken: () => new ClassicHttpError(400, 'Protocol error: Missing connection token.'),
  badToken: () => new ClassicHttpError(400, 'The ConnectionId is in the incorrect format.'),
  userChanged: () =>
    new ClassicHttpError(
      403,
      'Unrecognized user identity. The user identity cannot change during an active SignalR connection.',
    ),
  notWebSocket: () => new ClassicHttpError(400, 'Not a valid web socket request.'),
  jsonp: () => new ClassicHttpError(403, 'Forbidden: JSONP requests are not enabled.'),
  tooLarge: (limit: number) =>
    new ClassicHttpError(413, `The request body exceeds the maximum size of ${limit} bytes.`),
  ended: () => new ClassicHttpError(400, 'The connection has ended.'),
};

/** Writes a plain-text reply (never throws; a reply already under way is just ended). */
export function respondText(response: ServerResponse, status: number, body = ''): void {
  if (response.headersSent) {
    if (!response.writableEnded) response.end();
    return;
  }
  response.writeHead(status, {
    'Content-Type': 'text/plain; charset=UTF-8',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-cache',
  });
  response.end(body);
}

/** Reads a form-encoded body (`data=…`, `messageId=…&groupsToken=…`), refusing more than `limit` bytes. */
export function readForm(request: IncomingMessage, limit: number): Promise<URLSearchParams> {
  return new Promise((resolve, reject) => {
    if (Number(request.headers['content-length']) > limit) {
      request.resume();
      reject(ERRORS.tooLarge(limit));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    request.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > limit) {
        failed = true;
        reject(ERRORS.tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => {
      if (!failed) resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
    });
    request.on('error', (error) => {
      failed = true;
      reject(error);
    });
  });
}

/** The hub names of `connectionData` (`[{"name":"chathub"}]`), lowercased; a malformed list is refused. */
export function parseConnectionData(text: string | null): string[] {
  if (!text) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ClassicHttpError(400, 'Protocol error: connectionData is not valid JSON.');
  }
  if (!Array.isArray(parsed)) throw new ClassicHttpError(400, 'Protocol error: connectionData must be an array.');
  const names: string[] = [];
  for (const item of parsed) {
    const name = (item as { name?: unknown } | null)?.name;
    if (typeof name !== 'string' || name === '') {
      throw new ClassicHttpError(400, 'Protocol error: each entry of connectionData needs a hub name.');
    }
    const lower = name.toLowerCase();
    if (names.includes(lower)) throw new ClassicHttpError(400, `Duplicate hub names found ('${name}').`);
    names.push(lower);
  }
  return names;
}

/** Caller state larger than this (as JSON) is refused, as SignalR 2 does. */
const MAX_STATE_CHARS = 4096;

/**
 * Checks the shape of a hub invocation. Returns the invocation, or an error text plus the invocation id when one
 * could be read (so the client's promise can be rejected).
 */
export function parseInvocation(text: string): ClassicInvocation | { error: string; id: string | undefined } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { error: 'Protocol error: the hub invocation is not valid JSON.', id: undefined };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { error: 'Protocol error: a hub invocation must be a JSON object.', id: undefined };
  }
  const o = value as Record<string, unknown>;
  const id = typeof o.I === 'number' || typeof o.I === 'string' ? String(o.I) : undefined;
  const fail = (error: string) => ({ error, id });
  if (id === undefined || id.length > 64) return fail('Protocol error: the hub invocation needs an id (I).');
  if (typeof o.H !== 'string' || o.H === '') return fail('Protocol error: the hub invocation needs a hub name (H).');
  if (typeof o.M !== 'string' || o.M === '') return fail('Protocol error: the hub invocation needs a method name (M).');
  if (o.A !== undefined && !Array.isArray(o.A)) return fail('Protocol error: the arguments (A) must be an array.');
  let state: Record<string, unknown> | undefined;
  if (o.S !== undefined && o.S !== null) {
    if (typeof o.S !== 'object' || Array.isArray(o.S)) return fail('Protocol error: the state (S) must be an object.');
    let stateText: string;
    try {
      stateText = JSON.stringify(o.S);
    } catch {
      // Nested too deeply for the stack (the body may be well under its size limit).
      return fail('Protocol error: the state (S) is nested too deeply.');
    }
    if (stateText.length > MAX_STATE_CHARS) {
      return fail(`The state of the hub proxy exceeds ${MAX_STATE_CHARS} characters.`);
    }
    state = o.S as Record<string, unknown>;
  }
  return { hub: o.H, method: o.M, args: (o.A as unknown[] | undefined) ?? [], id, state };
}
