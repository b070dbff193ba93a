// What clients may call, and with what (issue 12): TypeScript's `private` does not exist at run time, so a hub says
// which methods are callable with `callable`; argument schemas (Standard Schema: zod, valibot, ...) check what a
// client sent before a method runs, and a bad argument is a clear completion error.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type * as signalR from '@microsoft/signalr';
import { type ArgumentSchema, Hub, Hubwire } from 'hubwire';
import { startClient } from '../helpers/clients.js';

let ran: string[] = [];

class GuardedHub extends Hub {
  send(name: string, message: string): string {
    ran.push(`send:${name}`);
    return `${name}: ${message}`;
  }
  joinGroup(group: string): string {
    ran.push(`join:${group}`);
    return group;
  }
  /** TypeScript-private: still a property of the prototype at run time. */
  private resetEverything(): string {
    ran.push('reset');
    return 'reset';
  }
  #secret(): string {
    return 'secret';
  }
  useHelpers(): string {
    return `${this.resetEverything()} ${this.#secret()}`;
  }
}

/** A Standard Schema by hand (what zod's z.string().max(n) is to Hubwire). */
function shortString(max: number): ArgumentSchema {
  return {
    '~standard': {
      version: 1,
      vendor: 'test',
      validate: (value) =>
        typeof value !== 'string'
          ? { issues: [{ message: `expected a string, got ${value === null ? 'null' : typeof value}` }] }
          : value.length > max
            ? { issues: [{ message: `at most ${max} characters` }] }
            : { value: value.trim() },
    },
  };
}

/** An asynchronous one, with a path in its issue. */
const asyncName: ArgumentSchema = {
  '~standard': {
    version: 1,
    vendor: 'test',
    validate: async (value) =>
      typeof value === 'string' && value !== '' ? { value } : { issues: [{ message: 'required', path: ['name'] }] },
  },
};

let hubwire: Hubwire;
let base = '';
const clients: signalR.HubConnection[] = [];

before(async () => {
  hubwire = new Hubwire({ onError: () => {} });
  hubwire.mapHub('/open', GuardedHub);
  hubwire.mapHub('/guarded', GuardedHub, {
    callable: ['send', 'joinGroup', 'useHelpers'],
    methods: {
      send: { parameters: [asyncName, shortString(20)] },
      joinGroup: { parameters: [shortString(8)] },
    },
  });
  base = `http://127.0.0.1:${await hubwire.listen(0, '127.0.0.1')}`;
});
after(async () => {
  await Promise.all(clients.map((client) => client.stop().catch(() => {})));
  await hubwire.close();
});

async function client(path: string): Promise<signalR.HubConnection> {
  const connection = await startClient(`${base}${path}`);
  clients.push(connection);
  return connection;
}

describe('what clients may call, and with what', () => {
  test('without `callable`, a TypeScript-private method is callable (as the docs warn); #private is not', async () => {
    const open = await client('/open');
    assert.equal(await open.invoke('resetEverything'), 'reset');
    await assert.rejects(open.invoke('#secret'), /Unknown hub method/);
  });

  test('with `callable`, only the listed methods are; the others stay server-side', async () => {
    ran = [];
    const guarded = await client('/guarded');
    await assert.rejects(guarded.invoke('resetEverything'), /Unknown hub method 'resetEverything'/);
    assert.equal(await guarded.invoke('useHelpers'), 'reset secret', 'hub code still calls its helpers');
    assert.deepEqual(ran, ['reset']);
    assert.throws(() => hubwire.mapHub('/typo', GuardedHub, { callable: ['sned'] }), /'sned', which is not a method/);
  });

  test('argument schemas: bad arguments fail with the schema message and the method never runs', async () => {
    ran = [];
    const guarded = await client('/guarded');
    await assert.rejects(guarded.invoke('joinGroup', { $where: 1 }), /argument 1 is not valid: expected a string/);
    await assert.rejects(guarded.invoke('joinGroup', 'much-too-long'), /argument 1 is not valid: at most 8/);
    await assert.rejects(guarded.invoke('send', '', 'hi'), /argument 1 is not valid at name: required/);
    await assert.rejects(guarded.invoke('send', 'ada', null), /argument 2 is not valid: expected a string, got null/);
    assert.deepEqual(ran, [], 'no method ran');
    // What the schema returns is what the method gets (here: trimmed).
    assert.equal(await guarded.invoke('joinGroup', '  room '), 'room');
    assert.equal(await guarded.invoke('send', 'ada', ' hello '), 'ada: hello');
    assert.deepEqual(ran, ['join:room', 'send:ada']);
    // The count is still checked first.
    await assert.rejects(guarded.invoke('joinGroup'), /provides 0 argument\(s\) but target expects 1/);
  });

  test('parameters must be Standard Schemas', () => {
    assert.throws(
      () =>
        hubwire.mapHub('/bad-schema', GuardedHub, {
          methods: { joinGroup: { parameters: [(value: unknown) => value] as unknown as ArgumentSchema[] } },
        }),
      /must be an array of Standard Schemas/,
    );
  });
});
