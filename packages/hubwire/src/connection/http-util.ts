// The HTTP pieces the dispatcher uses: its error type (a status and a message for the client), plain answers, refusing
// an upgrade on the raw socket, parsing a request's URL, and reading a body up to a limit.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function respond(
  response: ServerResponse,
  status: number,
  body = '',
  contentType = 'text/plain; charset=utf-8',
): void {
  if (response.headersSent) {
    if (!response.writableEnded) response.end();
    return;
  }
  response.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
  response.end(body);
}

export function rejectUpgrade(socket: Duplex, status: number, message: string): void {
  const reason = {
    400: 'Bad Request',
    401: 'Unauthorized',
    403: 'Forbidden',
    404: 'Not Found',
    409: 'Conflict',
    500: 'Internal Server Error',
  }[status];
  if (socket.writable) {
    socket.end(
      `HTTP/1.1 ${status} ${reason ?? 'Error'}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(message)}\r\n\r\n${message}`,
    );
  }
  socket.destroy();
}

export function destroySocket(this: Duplex): void {
  this.destroy();
}

/** The request's URL, or undefined when its request target cannot be parsed (answered 400, never thrown). */
export function parseUrl(request: IncomingMessage): URL | undefined {
  try {
    return new URL(request.url ?? '/', 'http://localhost');
  } catch {
    return undefined;
  }
}

export function readBody(request: IncomingMessage, limit: number): Promise<Buffer> {
  // A body parser mounted before Hubwire (express.text(), ...) already read the stream: use what it parsed.
  if (request.readableEnded) {
    const parsed = (request as IncomingMessage & { body?: unknown }).body;
    if (Buffer.isBuffer(parsed)) return Promise.resolve(parsed);
    if (typeof parsed === 'string') return Promise.resolve(Buffer.from(parsed, 'utf8'));
    return Promise.reject(
      new HttpError(400, 'The request body was consumed by an earlier middleware: mount Hubwire before body parsers.'),
    );
  }
  return new Promise((resolve, reject) => {
    const declared = Number(request.headers['content-length']);
    if (declared > limit) {
      reject(new HttpError(413, `The request body exceeds the maximum size of ${limit} bytes.`));
      request.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new HttpError(413, `The request body exceeds the maximum size of ${limit} bytes.`));
        request.removeAllListeners('data');
        request.resume();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)));
    request.on('error', reject);
  });
}
