// KeyRing on the in-process MemoryStore with an injected clock: the first key made once under concurrency,
// rotation, activation, overlap and expiry, database outages; and classic tokens signed and verified through rings.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { afterEach, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { KeyRing, type KeyRingOptions, type KeyStore, MemoryDatabase, MemoryStore, supportsKeys } from 'hubwire';
import { CLASSIC_KEYS_PURPOSE, TokenProtector } from '../../packages/hubwire/src/classic/tokens.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const DAY = 86_400_000;
/** The defaults, spelt out for the arithmetic of the tests. */
const ROTATE = 7 * DAY;
const EXPIRE = 14 * DAY;
const REFRESH = MINUTE;
const ACTIVATE = 3 * MINUTE;
const T0 = Date.UTC(2030, 0, 1);

class Clock {
  constructor(public t = T0) {}
  readonly now = () => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

const rings: KeyRing[] = [];
afterEach(() => {
  for (const ring of rings.splice(0)) ring.close();
});

async function load(store: KeyStore, clock: Clock, options: Partial<KeyRingOptions> = {}): Promise<KeyRing> {
  const ring = await KeyRing.load(store, { purpose: 'tokens', now: clock.now, ...options });
  rings.push(ring);
  return ring;
}

const hex = (keys: readonly Buffer[]) => keys.map((key) => key.toString('hex'));

describe('KeyRing', () => {
  test('8 rings loading at once on an empty store make one key, and all sign with it', async () => {
    const database = new MemoryDatabase();
    const clock = new Clock();
    const loaded = await Promise.all(Array.from({ length: 8 }, () => load(new MemoryStore(database), clock)));
    const stored = await new MemoryStore(database).readKeys('tokens');
    assert.equal(stored.length, 1);
    assert.equal(stored[0]!.createdAt, T0);
    for (const ring of loaded) {
      assert.ok(ring.signingKey().equals(stored[0]!.secret), 'the first key signs at once');
      assert.deepEqual(hex(ring.verificationKeys()), hex([stored[0]!.secret]));
    }
    // Loading again reads the same key.
    const later = await load(new MemoryStore(database), clock);
    assert.ok(later.signingKey().equals(stored[0]!.secret));
    assert.equal((await new MemoryStore(database).readKeys('tokens')).length, 1);
  });

  test('rotation: one new key when the newest is rotateAfterMs old, even with many rings refreshing at once', async () => {
    const database = new MemoryDatabase();
    const clock = new Clock();
    const store = new MemoryStore(database);
    const ringsOnStore = await Promise.all(Array.from({ length: 5 }, () => load(new MemoryStore(database), clock)));
    clock.advance(ROTATE - 1);
    await Promise.all(ringsOnStore.map((ring) => ring.refresh()));
    assert.equal((await store.readKeys('tokens')).length, 1, 'not due yet');
    clock.advance(1);
    await Promise.all(ringsOnStore.map((ring) => ring.refresh()));
    const keys = await store.readKeys('tokens');
    assert.deepEqual(
      keys.map((key) => key.createdAt),
      [T0 + ROTATE, T0],
    );
    for (const ring of ringsOnStore) {
      assert.deepEqual(
        ring.describe().map((key) => key.state),
        ['pending', 'signing'],
      );
    }
    // Refreshing again adds nothing until the new key is due in turn.
    clock.advance(ROTATE - 1);
    await Promise.all(ringsOnStore.map((ring) => ring.refresh()));
    assert.equal((await store.readKeys('tokens')).length, 2);
  });

  test('a new key verifies at once but signs only after activateAfterMs, on every ring alike', async () => {
    const database = new MemoryDatabase();
    const clock = new Clock();
    const a = await load(new MemoryStore(database), clock);
    const b = await load(new MemoryStore(database), clock);
    const first = a.signingKey();
    clock.advance(ROTATE);
    await a.refresh(); // a adds the new key
    await b.refresh(); // b reads it
    const [second] = await new MemoryStore(database).readKeys('tokens');
    assert.ok(second && !second.secret.equals(first));
    for (const ring of [a, b]) {
      assert.ok(ring.signingKey().equals(first), 'the old key still signs');
      assert.deepEqual(hex(ring.verificationKeys()), hex([second.secret, first]), 'both verify');
    }
    clock.advance(ACTIVATE - 1);
    assert.ok(a.signingKey().equals(first) && b.signingKey().equals(first));
    clock.advance(1);
    assert.ok(a.signingKey().equals(second.secret) && b.signingKey().equals(second.secret), 'switched');
    assert.deepEqual(
      a.describe().map((key) => key.state),
      ['signing', 'verifying'],
    );
    assert.deepEqual(hex(b.verificationKeys()), hex([second.secret, first]), 'the old key still verifies');
  });

  test('an old key verifies during the overlap and not after expiry; it is then deleted from the store', async () => {
    const database = new MemoryDatabase();
    const store = new MemoryStore(database);
    const clock = new Clock();
    // Keys verify for 10 days: the next rotation (7 days after the second key) stays out of the way.
    const expire = 10 * DAY;
    const ring = await load(store, clock, { expireAfterMs: expire });
    const first = ring.signingKey();
    clock.advance(ROTATE);
    await ring.refresh();
    const second = (await store.readKeys('tokens'))[0]!.secret;
    clock.t = T0 + expire - 1;
    await ring.refresh();
    assert.deepEqual(hex(ring.verificationKeys()), hex([second, first]));
    assert.equal((await store.readKeys('tokens')).length, 2);
    clock.t = T0 + expire;
    assert.deepEqual(hex(ring.verificationKeys()), hex([second]), 'expired at the ring at once');
    assert.ok(ring.signingKey().equals(second));
    await ring.refresh();
    assert.deepEqual(hex((await store.readKeys('tokens')).map((key) => key.secret)), hex([second]), 'deleted');
    // Long after: the newest keys never expire, and the signing key always verifies.
    clock.advance(100 * DAY);
    await ring.refresh();
    assert.equal((await store.readKeys('tokens')).length, 2, 'a new key, and the one it replaces');
    assert.ok(ring.signingKey().equals(second), 'the new key is not active yet');
    assert.ok(ring.verificationKeys().some((key) => key.equals(ring.signingKey())));
  });

  test('a late rotation (no refresh for long) keeps the old key signing until the new one is active, then overlaps', async () => {
    const database = new MemoryDatabase();
    const store = new MemoryStore(database);
    const clock = new Clock();
    const ring = await load(store, clock);
    const first = ring.signingKey();
    clock.advance(EXPIRE + 5 * DAY); // the first key is past expireAfterMs, but it is the newest: it never expired
    assert.ok(ring.signingKey().equals(first));
    assert.deepEqual(hex(ring.verificationKeys()), hex([first]));
    await ring.refresh();
    const keys = await store.readKeys('tokens');
    assert.equal(keys.length, 2, 'the old key is kept');
    const rotatedAt = clock.t;
    assert.ok(ring.signingKey().equals(first), 'the new key is not active yet');
    clock.advance(ACTIVATE);
    assert.ok(ring.signingKey().equals(keys[0]!.secret));
    // The old key verifies for expireAfterMs - rotateAfterMs after its successor was made.
    clock.t = rotatedAt + EXPIRE - ROTATE - 1;
    assert.equal(ring.verificationKeys().length, 2);
    clock.t = rotatedAt + EXPIRE - ROTATE;
    assert.equal(ring.verificationKeys().length, 1);
  });

  test('while the store fails, the ring keeps its keys and reports through onError; it catches up after', async () => {
    const database = new MemoryDatabase();
    const store = new MemoryStore(database);
    const clock = new Clock();
    const errors: Error[] = [];
    // Real refreshes every 20 ms; the rotation times are on the injected clock.
    const ring = await load(store, clock, {
      refreshMs: 20,
      activateAfterMs: 40,
      rotateAfterMs: 10 * SECOND,
      expireAfterMs: 30 * SECOND,
      onError: (error) => errors.push(error),
    });
    const first = ring.signingKey();
    database.down = true;
    await assert.rejects(ring.refresh(), /ECONNREFUSED/);
    await delay(100);
    assert.ok(errors.length >= 2, `periodic refreshes reported their failures (${errors.length})`);
    assert.match(errors[0]!.message, /ECONNREFUSED/);
    clock.advance(40 * SECOND); // rotation and expiry would both be due
    assert.ok(ring.signingKey().equals(first), 'still signs with the last key');
    assert.deepEqual(hex(ring.verificationKeys()), hex([first]));
    database.down = false;
    const reported = errors.length;
    await delay(100);
    assert.equal(errors.length, reported, 'no failures once the store is back');
    const keys = await store.readKeys('tokens');
    assert.equal(keys.length, 2, 'the periodic refresh rotated');
    assert.deepEqual(hex(ring.verificationKeys()), hex(keys.map((key) => key.secret)));
    // A throwing onError does not stop the refreshes.
    const throwing = await load(store, clock, {
      refreshMs: 20,
      activateAfterMs: 40,
      rotateAfterMs: 10 * SECOND,
      expireAfterMs: 30 * SECOND,
      onError: () => {
        throw new Error('logger down');
      },
    });
    database.down = true;
    await delay(60);
    database.down = false;
    assert.ok(throwing.verificationKeys().length > 0);
  });

  test('the periodic refresh picks up keys added by other nodes; close() stops it', async () => {
    const database = new MemoryDatabase();
    const clock = new Clock();
    let reads = 0;
    const counting = new MemoryStore(database);
    const readKeys = counting.readKeys.bind(counting);
    counting.readKeys = (purpose) => {
      reads++;
      return readKeys(purpose);
    };
    const options = { refreshMs: 20, activateAfterMs: 40, rotateAfterMs: 10 * SECOND, expireAfterMs: 30 * SECOND };
    const watcher = await load(counting, clock, options);
    const rotator = await load(new MemoryStore(database), clock, options);
    clock.advance(10 * SECOND);
    await rotator.refresh();
    const deadline = Date.now() + 2000;
    while (watcher.verificationKeys().length < 2) {
      assert.ok(Date.now() < deadline, 'the watcher read the new key');
      await delay(5);
    }
    watcher.close();
    watcher.close();
    const count = reads;
    await delay(80);
    assert.equal(reads, count, 'no refresh after close()');
    assert.equal(watcher.verificationKeys().length, 2, 'a closed ring still verifies with its last keys');
  });

  test('load rejects when the store cannot be read or keeps no keys; options are checked', async () => {
    const database = new MemoryDatabase();
    database.down = true;
    const clock = new Clock();
    await assert.rejects(load(new MemoryStore(database), clock), /ECONNREFUSED/);
    database.down = false;
    const keyless = { kind: 'keyless', readKeys: undefined } as unknown as KeyStore;
    assert.equal(supportsKeys(keyless), false);
    assert.equal(supportsKeys(new MemoryStore()), true);
    await assert.rejects(KeyRing.load(keyless, { purpose: 'p' }), /keyless store does not keep keys/);
    const store = new MemoryStore(database);
    for (const bad of [
      { purpose: 'has space' },
      { purpose: '' },
      { refreshMs: 0 },
      { refreshMs: 60_000, activateAfterMs: 119_999 },
      { rotateAfterMs: ACTIVATE },
      { expireAfterMs: ROTATE + ACTIVATE },
      { rotateAfterMs: Number.NaN },
      { secretBytes: 8 },
    ] as Partial<KeyRingOptions>[]) {
      await assert.rejects(
        load(store, clock, bad),
        (error: Error) => error instanceof RangeError || error instanceof TypeError,
      );
    }
    assert.equal((await store.readKeys('tokens')).length, 0, 'nothing was added by a refused ring');
    const ring = await load(store, clock, { secretBytes: 64 });
    assert.equal(ring.signingKey().length, 64);
    assert.equal(ring.rotateAfterMs, ROTATE);
    assert.equal(ring.expireAfterMs, EXPIRE);
    assert.equal(ring.refreshMs, REFRESH);
    assert.equal(ring.activateAfterMs, ACTIVATE);
  });

  test('purposes are separate key sets', async () => {
    const database = new MemoryDatabase();
    const clock = new Clock();
    const a = await load(new MemoryStore(database), clock, { purpose: 'a' });
    const b = await load(new MemoryStore(database), clock, { purpose: 'b' });
    assert.ok(!a.signingKey().equals(b.signingKey()));
  });
});

describe('TokenProtector with a key ring', () => {
  test('a token signed through ring A verifies through ring B on the same store; rotation keeps old tokens valid', async () => {
    const database = new MemoryDatabase();
    const clock = new Clock();
    const ringA = await load(new MemoryStore(database), clock, { purpose: CLASSIC_KEYS_PURPOSE });
    const ringB = await load(new MemoryStore(database), clock, { purpose: CLASSIC_KEYS_PURPOSE });
    const a = new TokenProtector(ringA);
    const b = new TokenProtector(ringB);
    const old = a.connectionToken('conn-1', 'ann');
    const oldGroups = a.groupsToken('conn-1', ['Chat.room']);
    assert.deepEqual(b.readConnectionToken(old), { connectionId: 'conn-1', userName: 'ann' });
    assert.deepEqual(b.readGroupsToken(oldGroups, 'conn-1'), ['Chat.room']);
    // A ring on another store (another cluster) does not accept them.
    const stranger = new TokenProtector(await load(new MemoryStore(new MemoryDatabase()), clock));
    assert.equal(stranger.readConnectionToken(old), undefined);
    assert.deepEqual(stranger.readGroupsToken(oldGroups, 'conn-1'), []);

    // Rotation: B adds the key; A reads it at its next refresh, before anyone signs with it.
    clock.advance(ROTATE);
    await ringB.refresh();
    await ringA.refresh();
    assert.equal(a.connectionToken('conn-2', ''), b.connectionToken('conn-2', ''), 'both still sign with the old key');
    clock.advance(ACTIVATE);
    const fresh = a.connectionToken('conn-2', '');
    const oldKey = ringA.verificationKeys()[1]!;
    assert.notEqual(fresh, new TokenProtector(oldKey).connectionToken('conn-2', ''), 'signed with the new key');
    assert.deepEqual(b.readConnectionToken(fresh), { connectionId: 'conn-2', userName: '' });
    assert.deepEqual(b.readConnectionToken(old), { connectionId: 'conn-1', userName: 'ann' }, 'old tokens verify');
    assert.deepEqual(a.readGroupsToken(oldGroups, 'CONN-1'), ['Chat.room']);

    // Past the old key's expiry only the new tokens verify.
    clock.t = T0 + EXPIRE;
    await ringA.refresh();
    await ringB.refresh();
    assert.equal(a.readConnectionToken(old), undefined);
    assert.equal(b.readConnectionToken(old), undefined);
    assert.deepEqual(b.readGroupsToken(oldGroups, 'conn-1'), []);
    assert.deepEqual(a.readConnectionToken(fresh), { connectionId: 'conn-2', userName: '' });
  });

  test('the token format of one key is unchanged, and a key source with that key makes the same tokens', () => {
    const key = Buffer.from('a shared key of at least 16 bytes');
    const single = new TokenProtector(key);
    const token = single.connectionToken('abc', 'ann');
    const payload = Buffer.from('abc:ann');
    const mac = createHmac('sha256', key)
      .update('SignalR.ConnectionToken')
      .update('\0')
      .update(payload)
      .digest()
      .subarray(0, 16);
    assert.equal(token, `${payload.toString('base64url')}.${mac.toString('base64url')}`);
    const source = new TokenProtector({ signingKey: () => key, verificationKeys: () => [key] });
    assert.equal(source.connectionToken('abc', 'ann'), token);
    assert.deepEqual(source.readConnectionToken(token), { connectionId: 'abc', userName: 'ann' });
    // A token verifies when any verification key made it, and not when none did.
    const other = Buffer.from('another key of at least 16 bytes');
    const many = new TokenProtector({ signingKey: () => other, verificationKeys: () => [other, key] });
    assert.deepEqual(many.readConnectionToken(token), { connectionId: 'abc', userName: 'ann' });
    const none = new TokenProtector({ signingKey: () => other, verificationKeys: () => [other] });
    assert.equal(none.readConnectionToken(token), undefined);
    assert.throws(() => new TokenProtector('not a key' as unknown as Buffer), TypeError);
  });
});
