// Raw connections (`mapConnection`): negotiated like a hub, with text and binary payloads over every transport, a
// server-side close, a handler that throws, and endpoint options; through the official client's HttpConnection.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Hubwire } from 'hubwire';
import { delay } from '../../helpers/clients.js';
import { startRawClient } from '../../helpers/http.js';
import { type SurfaceServer, startSurfaceServer, T } from '../../helpers/surface-server.js';
import { waitFor, withTimeout } from '../../helpers/wait.js';

const HTTP_TRANSPORTS = ['WebSockets', 'ServerSentEvents', 'LongPolling'] as const;

/** The ids of the raw connections whose onClose ran on the server. */
const rawClosed = new Set<string>();

let server: SurfaceServer;
before(async () => {
  server = await startSurfaceServer((hubwire) => {
    // Raw connections: text echoes with a JSON greeting (one line per send), bytes echo reversed.
    hubwire.mapConnection('/raw-text', (connection) => {
      connection.onClose(() => rawClosed.add(connection.connectionId));
      connection.send(
        `${JSON.stringify({
          hello: connection.connectionId,
          transport: connection.transport,
          user: connection.user ?? null,
          path: connection.request?.path,
          tag: connection.request?.query.get('tag'),
          negotiateMethod: connection.negotiateRequest?.method ?? null,
        })}\n`,
      );
      connection.onData((data) => {
        const text = data.toString('utf8');
        if (text === 'bye') connection.close();
        else connection.send(`echo:${text}\n`);
      });
    });
    hubwire.mapConnection('/raw-binary', (connection) => {
      connection.onClose(() => rawClosed.add(connection.connectionId));
      connection.send(Uint8Array.of(0, 1, 0x1e, 0xff));
      connection.onData((data) => {
        if (data.length === 1 && data[0] === 0) connection.close();
        else connection.send(Buffer.from(data).reverse());
      });
    });
    hubwire.mapConnection(
      '/raw-members',
      (connection) => connection.send(`user:${(connection.user as { id: string }).id}\n`),
      { requireAuthenticatedUser: true },
    );
    hubwire.mapConnection('/raw-no-ws', (connection) => connection.send(`via:${connection.transport}\n`), {
      transports: ['ServerSentEvents', 'LongPolling'],
    });
  });
});
after(async () => {
  await server.hubwire.close();
});

describe('raw connections (mapConnection), negotiated like a hub', () => {
  const formats = [
    ...HTTP_TRANSPORTS.map((transport) => ({ transport, format: 'Text' as const })),
    { transport: 'WebSockets' as const, format: 'Binary' as const },
    { transport: 'LongPolling' as const, format: 'Binary' as const },
  ];
  for (const { transport, format } of formats) {
    test(`${transport} + ${format}: greeting, echo, client stop, server close`, T, async () => {
      if (format === 'Text') {
        const raw = await startRawClient(`${server.base}/raw-text?tag=t1`, transport, 'Text');
        const id = raw.connection.connectionId as string;
        try {
          await waitFor(() => raw.text().includes('\n'), 5000, 'the greeting');
          const greeting = JSON.parse(raw.text().split('\n')[0] as string);
          assert.deepEqual(greeting, {
            hello: raw.connection.connectionId,
            transport,
            user: null,
            path: '/raw-text',
            tag: 't1',
            negotiateMethod: 'POST',
          });
          const lines = ['héllo ✓', 'second', 'x'.repeat(20_000)];
          for (const line of lines) {
            await raw.connection.send(line);
            await waitFor(() => raw.text().endsWith(`echo:${line}\n`), 5000, `the echo of a ${line.length}-char line`);
          }
          assert.deepEqual(
            raw.text().split('\n').slice(1, -1),
            lines.map((l) => `echo:${l}`),
          );
        } finally {
          await raw.connection.stop();
        }
        await waitFor(() => rawClosed.has(id), 5000, 'onClose on the server');
        assert.equal(await withTimeout(raw.closed, 5000, 'the client close'), undefined);

        // The server ends a connection: the client hears it.
        const closing = await startRawClient(`${server.base}/raw-text`, transport, 'Text');
        await waitFor(() => closing.text().includes('\n'), 5000, 'the greeting');
        await closing.connection.send('bye');
        const error = await withTimeout(closing.closed, 5000, 'the server-initiated close');
        assert.equal(error, undefined, `a clean close (got ${error})`);
        return;
      }
      const raw = await startRawClient(`${server.base}/raw-binary`, transport, 'Binary');
      const id = raw.connection.connectionId as string;
      try {
        await waitFor(() => raw.bytes().length >= 4, 5000, 'the binary greeting');
        assert.deepEqual([...raw.bytes()], [0, 1, 0x1e, 0xff]);
        assert.ok(
          raw.received.every((r) => typeof r !== 'string'),
          'binary payloads arrive as ArrayBuffer',
        );
        const payloads = [Uint8Array.of(1, 2, 3, 0xfe, 0xff), Uint8Array.from({ length: 70_000 }, (_, i) => i % 251)];
        let expected = 4;
        for (const payload of payloads) {
          await raw.connection.send(payload.slice().buffer);
          expected += payload.length;
          await waitFor(() => raw.bytes().length >= expected, 5000, `the echo of ${payload.length} bytes`);
          assert.deepEqual(
            Buffer.from(raw.bytes().subarray(expected - payload.length, expected)),
            Buffer.from(payload).reverse(),
          );
        }
      } finally {
        await raw.connection.stop();
      }
      await waitFor(() => rawClosed.has(id), 5000, 'onClose on the server');
      const closing = await startRawClient(`${server.base}/raw-binary`, transport, 'Binary');
      await waitFor(() => closing.bytes().length >= 4, 5000, 'the binary greeting');
      await closing.connection.send(Uint8Array.of(0).buffer);
      assert.equal(await withTimeout(closing.closed, 5000, 'the server-initiated close'), undefined);
    });
  }

  for (const transport of HTTP_TRANSPORTS) {
    const sse = transport === 'ServerSentEvents';
    test(`${transport} + Text: line breaks in raw text (CRLF, LF) survive`, T, async () => {
      const raw = await startRawClient(`${server.base}/raw-text`, transport, 'Text');
      try {
        await waitFor(() => raw.text().includes('\n'), 5000, 'the greeting');
        const greeting = raw.text();
        await raw.connection.send('a\r\nb\nc');
        await waitFor(() => raw.text().length > greeting.length && raw.text().endsWith('\n'), 5000, 'the echo');
        await delay(50);
        // SSE cannot carry a CR: like ASP.NET Core, a CRLF may become LF there, but nothing else may change.
        const expected = sse ? 'echo:a\nb\nc\n' : 'echo:a\r\nb\nc\n';
        assert.equal(raw.text().slice(greeting.length), expected);
        assert.equal(raw.received.length, 2, 'one message per send');
      } finally {
        await raw.connection.stop();
      }
    });
  }

  test('a connection handler that throws: the connection ends, the error goes to onError', T, async () => {
    const errors: string[] = [];
    const hubwire = new Hubwire({ onError: (error, where) => errors.push(`${where}: ${(error as Error).message}`) });
    hubwire.mapConnection('/throws', () => {
      throw new Error('handler failed');
    });
    const base = `http://127.0.0.1:${await hubwire.listen(0)}`;
    try {
      // Not over SSE: the official client throws an uncaught error when an event stream ends while it is still
      // starting (HttpConnection._stopConnection in the connecting state), a client bug outside Hubwire.
      for (const transport of ['WebSockets', 'LongPolling'] as const) {
        const raw = await startRawClient(`${base}/throws`, transport, 'Text');
        await withTimeout(raw.closed, 5000, 'the connection ending');
      }
      assert.equal(errors.length, 2);
      assert.match(errors[0] as string, /the connection handler at '\/throws': handler failed/);
    } finally {
      await hubwire.close();
    }
  });

  test('Server-Sent Events cannot carry Binary: the client refuses it', T, async () => {
    await assert.rejects(startRawClient(`${server.base}/raw-binary`, 'ServerSentEvents', 'Binary'), /Binary|available/);
  });

  test('endpoint options apply: requireAuthenticatedUser (401 without a token), transports', T, async () => {
    for (const transport of HTTP_TRANSPORTS) {
      await assert.rejects(startRawClient(`${server.base}/raw-members`, transport, 'Text'), /401/);
      const raw = await startRawClient(`${server.base}/raw-members`, transport, 'Text', { token: 'carol' });
      await waitFor(() => raw.text().includes('\n'), 5000, 'the greeting');
      assert.equal(raw.text(), 'user:carol\n');
      await raw.connection.stop();
    }
    await assert.rejects(startRawClient(`${server.base}/raw-no-ws`, 'WebSockets', 'Text'), /available transports/);
    const raw = await startRawClient(`${server.base}/raw-no-ws`, 'ServerSentEvents', 'Text');
    await waitFor(() => raw.text().includes('\n'), 5000, 'the greeting');
    assert.equal(raw.text(), 'via:ServerSentEvents\n');
    await raw.connection.stop();
  });
});
