// Wire-level helpers of the classic tests: a streaming HTTP reader (Server-Sent Events, foreverFrame) and a
// WebSocket client that collects frames, both with waits that fail with what they saw.

import { get, type IncomingMessage } from 'node:http';
import WebSocket from 'ws';

export interface Stream {
  response: IncomingMessage;
  text(): string;
  /** Waits until the body so far matches `pattern`; returns the match. */
  waitFor(pattern: RegExp, ms?: number): Promise<RegExpMatchArray>;
  close(): void;
}

export function openStream(url: string): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const request = get(url, (response) => {
      let body = '';
      const listeners = new Set<() => void>();
      response.on('data', (chunk: Buffer) => {
        body += chunk.toString();
        for (const listener of [...listeners]) listener();
      });
      response.on('error', () => {});
      resolve({
        response,
        text: () => body,
        close: () => request.destroy(),
        waitFor: (pattern, ms = 5000) =>
          new Promise((done, fail) => {
            const check = () => {
              const match = body.match(pattern);
              if (!match) return false;
              listeners.delete(check);
              clearTimeout(timer);
              done(match);
              return true;
            };
            const timer = setTimeout(() => {
              listeners.delete(check);
              fail(new Error(`no ${pattern} within ${ms} ms; got:\n${body}`));
            }, ms);
            if (!check()) listeners.add(check);
          }),
      });
    });
    request.on('error', reject);
  });
}

export interface FrameSocket {
  socket: WebSocket;
  frames: string[];
  /** Waits for a frame (after the first `from` frames) that `accept` accepts; returns it parsed. */
  next(
    accept?: (frame: Record<string, unknown>) => boolean,
    from?: number,
    ms?: number,
  ): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

export function openSocket(url: string): Promise<FrameSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    const frames: string[] = [];
    const listeners = new Set<() => void>();
    socket.on('message', (data: Buffer) => {
      frames.push(data.toString());
      for (const listener of [...listeners]) listener();
    });
    socket.once('unexpected-response', (_request, response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      response.on('end', () => reject(Object.assign(new Error(body), { status: response.statusCode })));
    });
    socket.once('error', reject);
    socket.once('open', () =>
      resolve({
        socket,
        frames,
        next: (accept = () => true, from = 0, ms = 5000) =>
          new Promise((done, fail) => {
            const check = () => {
              for (const frame of frames.slice(from)) {
                const parsed = JSON.parse(frame) as Record<string, unknown>;
                if (!accept(parsed)) continue;
                listeners.delete(check);
                clearTimeout(timer);
                done(parsed);
                return true;
              }
              return false;
            };
            const timer = setTimeout(() => {
              listeners.delete(check);
              fail(new Error(`no matching frame within ${ms} ms; got ${JSON.stringify(frames)}`));
            }, ms);
            if (!check()) listeners.add(check);
          }),
        close: () =>
          new Promise<void>((done) => {
            if (socket.readyState === WebSocket.CLOSED) return done();
            socket.once('close', () => done());
            socket.close();
          }),
      }),
    );
  });
}

/** The URL of a classic route for WebSockets (ws:). */
export function wsUrl(httpUrl: string): string {
  return httpUrl.replace(/^http:/, 'ws:');
}
