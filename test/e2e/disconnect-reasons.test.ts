// What onDisconnected hears when Hubwire closes a connection for a bad message: the same text the client's Close
// message carries, as a HubwireError with its documented code (HW_ERR_INVALID_MESSAGE, HW_ERR_MESSAGE_TOO_LARGE),
// so server code can tell a broken or hostile client from a network drop.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Hub, Hubwire } from 'hubwire';
import WebSocket from 'ws';
import { waitFor } from '../helpers/wait.js';

const RS = '\x1e';
const reasons = new Map<string, (Error & { code?: string }) | undefined>();

class ReasonHub extends Hub {
  override onDisconnected(error: Error | undefined): void {
    reasons.set(this.context.connectionId, error);
  }
  whoAmI(): string {
    return this.context.connectionId;
  }
}

let hubwire: Hubwire;
let url = '';

before(async () => {
  hubwire = new Hubwire({ onError: () => {}, maximumReceiveMessageSize: 1024 });
  hubwire.mapHub('/reasons', ReasonHub);
  url = `ws://127.0.0.1:${await hubwire.listen(0)}/reasons`;
});

after(() => hubwire.close());

/** A raw JSON hub connection (skip negotiation) that sends `payload` once it knows its connection id. */
async function sendBad(payload: string): Promise<{ id: string; close: string }> {
  const socket = new WebSocket(url);
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  const frames: string[] = [];
  socket.on('message', (data) => frames.push(...String(data).split(RS).filter(Boolean)));
  socket.send(`{"protocol":"json","version":1}${RS}`);
  socket.send(`{"type":1,"invocationId":"1","target":"whoAmI","arguments":[]}${RS}`);
  await waitFor(() => frames.some((frame) => frame.includes('"invocationId":"1"')), 5000, 'the id');
  const id = (JSON.parse(frames.find((frame) => frame.includes('"invocationId":"1"')) as string) as { result: string })
    .result;
  socket.send(payload);
  await waitFor(() => frames.some((frame) => frame.startsWith('{"type":7')), 5000, 'the Close message');
  socket.terminate();
  return { id, close: frames.find((frame) => frame.startsWith('{"type":7')) as string };
}

describe('the reason onDisconnected hears for a bad message', () => {
  test('malformed JSON: HW_ERR_INVALID_MESSAGE, with the text the client was sent', async () => {
    const { id, close } = await sendBad(`{"type":1,"target":${RS}`);
    await waitFor(() => reasons.has(id), 5000, 'onDisconnected');
    const reason = reasons.get(id);
    assert.equal(reason?.code, 'HW_ERR_INVALID_MESSAGE');
    assert.equal(JSON.parse(close).error, reason?.message);
  });

  test('a message over maximumReceiveMessageSize: HW_ERR_MESSAGE_TOO_LARGE', async () => {
    const { id } = await sendBad(`{"type":1,"target":"whoAmI","arguments":["${'x'.repeat(2000)}"]}${RS}`);
    await waitFor(() => reasons.has(id), 5000, 'onDisconnected');
    assert.equal(reasons.get(id)?.code, 'HW_ERR_MESSAGE_TOO_LARGE');
  });

  test('a client that stops cleanly: no error', async () => {
    const socket = new WebSocket(url);
    await new Promise((resolve) => socket.once('open', resolve));
    const frames: string[] = [];
    socket.on('message', (data) => frames.push(...String(data).split(RS).filter(Boolean)));
    socket.send(
      `{"protocol":"json","version":1}${RS}{"type":1,"invocationId":"1","target":"whoAmI","arguments":[]}${RS}`,
    );
    await waitFor(() => frames.some((frame) => frame.includes('"result"')), 5000, 'the id');
    const id = (JSON.parse(frames.find((frame) => frame.includes('"result"')) as string) as { result: string }).result;
    socket.send(`{"type":7}${RS}`);
    await waitFor(() => reasons.has(id), 5000, 'onDisconnected');
    assert.equal(reasons.get(id), undefined);
    socket.close();
  });
});
