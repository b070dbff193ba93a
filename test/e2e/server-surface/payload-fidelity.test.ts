// Payload fidelity: bytes, dates and big integers in results, sends, stream items and client results reach each hub
// protocol as ASP.NET Core encodes them, with the official @microsoft/signalr client over every transport × protocol.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { collect, MATRIX, readStream } from '../../helpers/clients.js';
import { rawJsonInvoke } from '../../helpers/http.js';
import { clientPool, type SurfaceServer, startSurfaceServer, T } from '../../helpers/surface-server.js';
import { FIXED_DATE, TestHub } from '../../helpers/test-hub.js';

let server: SurfaceServer;
before(async () => {
  server = await startSurfaceServer((hubwire) => {
    hubwire.mapHub('/surface', TestHub);
  });
});
after(async () => {
  await server.hubwire.close();
});

describe('payloads keep their types on the wire, as ASP.NET Core sends bytes and dates', () => {
  const connect = clientPool(() => server.base);

  for (const { transport, protocol } of MATRIX) {
    test(`${transport} + ${protocol}: results, sends, stream items, client results`, T, async () => {
      const client = await connect('/surface', { transport, protocol });
      const payloads = collect<unknown[]>(client, 'payload');
      const result = (await client.invoke('payload')) as Record<string, unknown>;
      await client.invoke('sendPayloadToCaller');
      const [sent] = await payloads.waitFor(1);
      const streamed = await readStream(client.stream('payloadStream'));
      if (protocol === 'json') {
        assert.deepEqual(result, {
          buffer: 'AQID/w==',
          uint8: 'BAUG',
          arrayBuffer: 'Bwg=',
          sliced: 'Cgs=',
          empty: '',
          date: '2024-02-29T12:34:56.789Z',
          safeBig: 2 ** 40,
          list: ['aGk=', '2024-02-29T12:34:56.789Z'],
          text: 'plain',
        });
        assert.deepEqual(sent, ['AQID', '2024-02-29T12:34:56.789Z']);
        assert.deepEqual(streamed, ['Kg==', '2024-02-29T12:34:56.789Z']);
        assert.equal(await client.invoke('hugeBigInt'), (2n ** 70n).toString(), 'an unsafe bigint is a string');
        // A JSON client sends dates as ISO strings: the hub gets the string.
        assert.deepEqual(await client.invoke('describe', FIXED_DATE), {
          type: 'string',
          isBytes: false,
          isDate: false,
          bytes: null,
          iso: null,
        });
        return;
      }
      // MessagePack: bin for bytes, the timestamp extension for dates.
      const bytes = (value: unknown) => {
        assert.ok(value instanceof Uint8Array, `expected bytes, got ${Object.prototype.toString.call(value)}`);
        return [...value];
      };
      assert.deepEqual(bytes(result.buffer), [1, 2, 3, 255]);
      assert.deepEqual(bytes(result.uint8), [4, 5, 6]);
      assert.deepEqual(bytes(result.arrayBuffer), [7, 8]);
      assert.deepEqual(bytes(result.sliced), [10, 11]);
      assert.deepEqual(bytes(result.empty), []);
      assert.ok(result.date instanceof Date, 'a date decodes to Date');
      assert.equal((result.date as Date).toISOString(), FIXED_DATE.toISOString());
      assert.equal(result.safeBig, 2 ** 40);
      const list = result.list as unknown[];
      assert.deepEqual(bytes(list[0]), [...Buffer.from('hi')]);
      assert.equal((list[1] as Date).toISOString(), FIXED_DATE.toISOString());
      assert.deepEqual(bytes((sent as unknown[])[0]), [1, 2, 3]);
      assert.equal(((sent as unknown[])[1] as Date).toISOString(), FIXED_DATE.toISOString());
      assert.deepEqual(bytes(streamed[0]), [42]);
      assert.equal((streamed[1] as Date).toISOString(), FIXED_DATE.toISOString());
      // Bytes and dates sent by the client arrive as bytes and dates, and go back unchanged.
      assert.deepEqual(await client.invoke('describe', Uint8Array.of(5, 6, 7)), {
        type: 'object',
        isBytes: true,
        isDate: false,
        bytes: [5, 6, 7],
        iso: null,
      });
      assert.deepEqual(await client.invoke('describe', FIXED_DATE), {
        type: 'object',
        isBytes: false,
        isDate: true,
        bytes: null,
        iso: FIXED_DATE.toISOString(),
      });
      const echoed = (await client.invoke('echo', { b: Uint8Array.of(1, 0, 255), d: FIXED_DATE })) as {
        b: unknown;
        d: Date;
      };
      assert.deepEqual(bytes(echoed.b), [1, 0, 255]);
      assert.equal(echoed.d.toISOString(), FIXED_DATE.toISOString());
      // A client result with bytes reaches the hub as bytes.
      client.on('bytes', () => Uint8Array.of(9, 8, 7));
      assert.deepEqual(await client.invoke('askCallerForBytes'), {
        type: 'object',
        isBytes: true,
        isDate: false,
        bytes: [9, 8, 7],
        iso: null,
      });
      // A bigint beyond 64 bits: a string as in JSON, or at least a clear invocation error (never a dead connection).
      try {
        assert.equal(await client.invoke('hugeBigInt'), (2n ** 70n).toString());
      } catch (error) {
        assert.match((error as Error).message, /The server could not serialize the result/);
      }
      assert.equal(await client.invoke('echo', 'alive'), 'alive');
    });
  }

  test(
    'JSON on the wire, as a .NET or Java client reads it: base64 bytes, ISO dates, safe bigints as numbers',
    T,
    async () => {
      const raw = await rawJsonInvoke(`${server.base}/surface`, 'payload');
      assert.equal(
        raw,
        '{"type":3,"invocationId":"1","result":{"buffer":"AQID/w==","uint8":"BAUG","arrayBuffer":"Bwg=","sliced":"Cgs=",' +
          '"empty":"","date":"2024-02-29T12:34:56.789Z","safeBig":1099511627776,"list":["aGk=","2024-02-29T12:34:56.789Z"],' +
          '"text":"plain"}}',
      );
    },
  );

  test(
    'JSON: an Int64 beyond 2^53 is written as an exact number (System.Text.Json reads a string into a long only on request)',
    T,
    async () => {
      const raw = await rawJsonInvoke(`${server.base}/surface`, 'int64');
      assert.equal(raw, '{"type":3,"invocationId":"1","result":9007199254740993}');
    },
  );

  test(
    'sends from outside a hub use the same encoding (JSON and MessagePack clients of one broadcast)',
    T,
    async () => {
      const json = await connect('/surface', { transport: 'WebSockets', protocol: 'json' });
      const msgpack = await connect('/surface', { transport: 'WebSockets', protocol: 'messagepack' });
      const jsonIn = collect<unknown[]>(json, 'payload');
      const msgpackIn = collect<unknown[]>(msgpack, 'payload');
      const ids = [await json.invoke<string>('getConnectionId'), await msgpack.invoke<string>('getConnectionId')];
      await server.hubwire.hub(TestHub).clients.clients(ids).send('payload', Buffer.from('bytes'), FIXED_DATE);
      assert.deepEqual((await jsonIn.waitFor(1))[0], ['Ynl0ZXM=', '2024-02-29T12:34:56.789Z']);
      const [bytes, date] = (await msgpackIn.waitFor(1))[0] as [Uint8Array, Date];
      assert.equal(Buffer.from(bytes).toString(), 'bytes');
      assert.equal(date.toISOString(), FIXED_DATE.toISOString());
    },
  );
});
