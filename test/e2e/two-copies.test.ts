// An app may load two copies of Hubwire: its ESM and its CommonJS builds (a CommonJS hub library inside an ESM app).
// Hubs extending one copy's Hub then run on the other copy's server, and its errors are recognised by instanceof.
// The second copy here is a copy of the sources in a temporary folder (node loads it as a module of its own).

import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import * as signalR from '@microsoft/signalr';
import { ClientResultError, HubError, Hubwire, HubwireError } from 'hubwire';

type HubwireModule = typeof import('hubwire');

let other: HubwireModule;
let hubwire: Hubwire;
let url = '';
let copy = '';

before(async () => {
  copy = mkdtempSync(join(tmpdir(), 'hubwire-copy-'));
  cpSync(new URL('../../packages/hubwire/src', import.meta.url), join(copy, 'src'), { recursive: true });
  // Its dependencies (ws, msgpackr) resolve from the repository's node_modules.
  symlinkSync(new URL('../../node_modules', import.meta.url).pathname, join(copy, 'node_modules'));
  other = (await import(pathToFileURL(join(copy, 'src', 'index.ts')).href)) as HubwireModule;
  assert.notEqual(other.Hub, (await import('hubwire')).Hub, 'a second copy of the module');

  class OtherCopyHub extends other.Hub {
    whoAmI(): string {
      return this.context.connectionId;
    }
    refuse(): void {
      throw new other.HubError('refused by a hub of the other copy');
    }
  }
  hubwire = new Hubwire({ onError: () => {} });
  hubwire.mapHub('/other', OtherCopyHub);
  const port = await hubwire.listen(0, '127.0.0.1');
  url = `http://127.0.0.1:${port}/other`;
});

after(async () => {
  await hubwire?.close();
  if (copy) rmSync(copy, { recursive: true, force: true });
});

describe('two copies of Hubwire in one process', () => {
  test("a hub extending the other copy's Hub runs, and only its own methods are callable", async () => {
    const connection = new signalR.HubConnectionBuilder()
      .withUrl(url, { transport: signalR.HttpTransportType.WebSockets, skipNegotiation: true })
      .configureLogging(signalR.LogLevel.None)
      .build();
    await connection.start();
    try {
      assert.match(await connection.invoke<string>('whoAmI'), /^[\w-]{16,}$/);
      // The other copy's HubError reaches the caller with its text, as this copy's would.
      await assert.rejects(connection.invoke('refuse'), /refused by a hub of the other copy/);
      // Hub's own members (of either copy) are not hub methods.
      await assert.rejects(connection.invoke('context'), /Unknown hub method 'context'/);
      await assert.rejects(connection.invoke('constructor'), /Unknown hub method 'constructor'/);
    } finally {
      await connection.stop();
    }
  });

  test("errors of either copy are instances of both copies' classes, and of nothing else", () => {
    assert.ok(new other.HubError('x') instanceof HubError);
    assert.ok(new HubError('x') instanceof other.HubError);
    const fromOther = new other.ClientResultError('no');
    assert.ok(fromOther instanceof ClientResultError);
    assert.ok(fromOther instanceof HubwireError);
    assert.ok(fromOther instanceof Error);
    assert.ok(new other.HubwireError('HW_ERR_SLOW_CLIENT', 'slow') instanceof HubwireError);
    assert.equal(new other.HubwireError('HW_ERR_SLOW_CLIENT', 'slow') instanceof ClientResultError, false);
    assert.equal(new other.HubError('x') instanceof HubwireError, false);
    assert.equal(new Error('plain') instanceof HubError, false);
    assert.equal(({ message: 'lookalike' } as unknown) instanceof HubError, false);
    // A user's subclass keeps ordinary instanceof semantics.
    class MyError extends HubError {}
    assert.ok(new MyError('mine') instanceof MyError);
    assert.equal(new HubError('not mine') instanceof MyError, false);
  });
});
