// TokenProtector, the classic protocol's connection and groups tokens: `<base64url text>.<base64url MAC>`, the MAC
// the first 16 bytes of HMAC-SHA256(key, purpose \0 text). Round trips; the purpose separates token kinds; another
// key, any tampering, a non-canonical encoding or a malformed token yields nothing; key sources sign with their
// signing key and accept any verification key (rotation).

import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import type { KeySource } from '../../packages/hubwire/src/backplane/key-ring.ts';
import { CLASSIC_KEYS_PURPOSE, TokenProtector } from '../../packages/hubwire/src/classic/tokens.ts';

const KEY = Buffer.alloc(32, 7);
const OTHER_KEY = Buffer.alloc(32, 8);
const CONNECTION_PURPOSE = 'SignalR.ConnectionToken';
const GROUPS_PURPOSE = 'SignalR.Groups.v1.1';

const mac = (key: Buffer, purpose: string, text: string) =>
  createHmac('sha256', key).update(`${purpose}\0${text}`).digest().subarray(0, 16).toString('base64url');

/** The token with one character replaced by another of the base64url alphabet. */
function flip(token: string, at: number): string {
  const c = token[at] as string;
  return `${token.slice(0, at)}${c === 'A' ? 'B' : 'A'}${token.slice(at + 1)}`;
}

/** A key source whose keys the test changes. */
class Keys implements KeySource {
  constructor(
    public signing: Buffer,
    public verification: Buffer[],
  ) {}
  signingKey(): Buffer {
    return this.signing;
  }
  verificationKeys(): readonly Buffer[] {
    return this.verification;
  }
}

describe('TokenProtector: format and round trips', () => {
  const tokens = new TokenProtector(KEY);

  test('a token is base64url text, a dot, and a 16-byte truncated HMAC-SHA256 over purpose \\0 text', () => {
    const token = tokens.protect('purpose', 'hello');
    const [payload, tag] = token.split('.');
    assert.equal(Buffer.from(payload as string, 'base64url').toString(), 'hello');
    assert.equal(Buffer.from(tag as string, 'base64url').length, 16);
    assert.equal(tag, mac(KEY, 'purpose', 'hello'));
    assert.match(token, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/, 'URL-safe, unpadded');
  });

  test('protect is deterministic and unprotect gives the text back', () => {
    for (const text of ['x', 'conn-1:alice', 'héllo ✓ 𝄞', 'a.b.c', ':', '\0', 'x'.repeat(10_000)]) {
      const token = tokens.protect('p', text);
      assert.equal(tokens.protect('p', text), token);
      assert.equal(tokens.unprotect('p', token), text);
    }
  });

  test('the purpose is part of the MAC: a token of one purpose is nothing under another', () => {
    const token = tokens.protect('one', 'text');
    assert.equal(tokens.unprotect('two', token), undefined);
    assert.equal(tokens.unprotect('One', token), undefined);
    // The separator keeps purpose and text apart: ('ab', 'c') and ('a', 'bc') differ.
    assert.notEqual(tokens.protect('ab', 'c').split('.')[1], tokens.protect('a', 'bc').split('.')[1]);
  });

  test('a token made under another key is refused', () => {
    const token = new TokenProtector(OTHER_KEY).protect('p', 'text');
    assert.equal(tokens.unprotect('p', token), undefined);
    assert.equal(new TokenProtector(OTHER_KEY).unprotect('p', token), 'text');
  });

  test('the classic keys purpose (the KeyRing purpose in the database) is stable', () => {
    assert.equal(CLASSIC_KEYS_PURPOSE, 'hubwire.classic.tokens');
  });
});

describe('TokenProtector: tampering and malformed tokens', () => {
  const tokens = new TokenProtector(KEY);
  const token = tokens.protect('p', 'conn-1:alice');
  const dot = token.indexOf('.');

  test('changing any character of the text or the MAC voids the token', () => {
    for (let at = 0; at < token.length; at++) {
      if (at === dot) continue;
      assert.equal(tokens.unprotect('p', flip(token, at)), undefined, `character ${at}`);
    }
  });

  test('another text under the original MAC is refused', () => {
    const forged = `${Buffer.from('conn-1:admin').toString('base64url')}${token.slice(dot)}`;
    assert.equal(tokens.unprotect('p', forged), undefined);
  });

  test('a MAC cut short, lengthened or missing is refused', () => {
    assert.equal(tokens.unprotect('p', token.slice(0, -1)), undefined);
    assert.equal(tokens.unprotect('p', token.slice(0, -4)), undefined);
    assert.equal(tokens.unprotect('p', `${token}AAAA`), undefined);
    assert.equal(tokens.unprotect('p', token.slice(0, dot + 1)), undefined);
    assert.equal(tokens.unprotect('p', token.slice(0, dot)), undefined);
  });

  test('shapes that are not <text>.<mac> are refused', () => {
    const [payload, tag] = token.split('.') as [string, string];
    for (const bad of [
      '',
      '.',
      `.${tag}`,
      `${payload}.`,
      `${payload}.${tag}.`,
      `${payload}..${tag}`,
      `${payload}.${tag}.${tag}`,
      `.${payload}.${tag}`,
      `${payload}${tag}`,
    ]) {
      assert.equal(tokens.unprotect('p', bad), undefined, JSON.stringify(bad));
    }
  });

  test('only the canonical encoding passes: padding, standard base64 or stray bits are refused', () => {
    // 'conn-1:alice' is 12 bytes: its base64url has no padding; the 16-byte MAC's has 22 characters, the last
    // carrying 4 bits of which only 2 count.
    const [payload, tag] = token.split('.') as [string, string];
    assert.equal(tokens.unprotect('p', `${payload}.${tag}==`), undefined, 'padding');
    // '>>>???' is 'Pj4-Pz8_' in base64url, 'Pj4+Pz8/' in standard base64 (which Node's decoder also reads).
    const urlSafe = tokens.protect('p', '>>>???');
    const [p2, t2] = urlSafe.split('.') as [string, string];
    assert.equal(p2, 'Pj4-Pz8_');
    assert.equal(tokens.unprotect('p', urlSafe), '>>>???');
    const standard = `Pj4+Pz8/.${t2}`;
    assert.equal(Buffer.from('Pj4+Pz8/', 'base64url').toString(), '>>>???');
    assert.equal(tokens.unprotect('p', standard), undefined, 'standard base64 alphabet');
    // The same 16 bytes with different unused trailing bits.
    const last = tag.at(-1) as string;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const index = alphabet.indexOf(last);
    const lookAlike = `${payload}.${tag.slice(0, -1)}${alphabet[index ^ 1]}`;
    assert.deepEqual(Buffer.from(lookAlike.slice(dot + 1), 'base64url'), Buffer.from(tag, 'base64url'));
    assert.equal(tokens.unprotect('p', lookAlike), undefined, 'stray trailing bits');
  });

  test('an empty text cannot be protected into a usable token (every real token starts with a connection id)', () => {
    // protect('') gives '.<mac>', which unprotect refuses as malformed.
    assert.equal(tokens.unprotect('p', tokens.protect('p', '')), undefined);
  });
});

describe('TokenProtector: keys', () => {
  test('a key or a key source, anything else is a TypeError', () => {
    assert.doesNotThrow(() => new TokenProtector(KEY));
    assert.doesNotThrow(() => new TokenProtector(new Keys(KEY, [KEY])));
    for (const bad of [null, undefined, 'secret', {}, { signingKey: () => KEY }, { verificationKeys: () => [KEY] }]) {
      assert.throws(() => new TokenProtector(bad as never), TypeError);
    }
  });

  test('a key source signs with its signing key and accepts every verification key', () => {
    const [k1, k2, k3] = [randomBytes(32), randomBytes(32), randomBytes(32)];
    const keys = new Keys(k1, [k1]);
    const tokens = new TokenProtector(keys);
    const old = tokens.protect('p', 'made under k1');
    assert.equal(old.split('.')[1], mac(k1, 'p', 'made under k1'));
    // Rotation: k2 signs, k1 still verifies.
    keys.signing = k2;
    keys.verification = [k2, k1];
    const fresh = tokens.protect('p', 'made under k2');
    assert.equal(fresh.split('.')[1], mac(k2, 'p', 'made under k2'));
    assert.equal(tokens.unprotect('p', old), 'made under k1');
    assert.equal(tokens.unprotect('p', fresh), 'made under k2');
    // k1 expired: its tokens die; the order of the verification keys does not matter.
    keys.verification = [k3, k2];
    assert.equal(tokens.unprotect('p', old), undefined);
    assert.equal(tokens.unprotect('p', fresh), 'made under k2');
  });

  test('with no verification keys nothing verifies, not even what was just signed', () => {
    const keys = new Keys(KEY, []);
    const tokens = new TokenProtector(keys);
    assert.equal(tokens.unprotect('p', tokens.protect('p', 'text')), undefined);
  });

  test('a fixed key and a key source holding it make the same tokens', () => {
    const source = new TokenProtector(new Keys(KEY, [OTHER_KEY, KEY]));
    const fixed = new TokenProtector(KEY);
    assert.equal(source.connectionToken('c1', 'alice'), fixed.connectionToken('c1', 'alice'));
    assert.deepEqual(fixed.readConnectionToken(source.connectionToken('c1', 'bob')), {
      connectionId: 'c1',
      userName: 'bob',
    });
  });
});

describe('TokenProtector: connection tokens', () => {
  const tokens = new TokenProtector(KEY);

  test('"<connectionId>:<userName>" under the connection purpose', () => {
    const token = tokens.connectionToken('conn-1', 'alice');
    assert.equal(tokens.unprotect(CONNECTION_PURPOSE, token), 'conn-1:alice');
    assert.deepEqual(tokens.readConnectionToken(token), { connectionId: 'conn-1', userName: 'alice' });
  });

  test('anonymous: an empty user name', () => {
    const token = tokens.connectionToken('conn-1', undefined);
    assert.equal(tokens.unprotect(CONNECTION_PURPOSE, token), 'conn-1:');
    assert.deepEqual(tokens.readConnectionToken(token), { connectionId: 'conn-1', userName: '' });
    assert.deepEqual(tokens.readConnectionToken(tokens.connectionToken('conn-1', '')), {
      connectionId: 'conn-1',
      userName: '',
    });
  });

  test('the user name may hold colons and any character; the id ends at the first colon', () => {
    assert.deepEqual(tokens.readConnectionToken(tokens.connectionToken('c', 'DOMAIN:user:x ✓')), {
      connectionId: 'c',
      userName: 'DOMAIN:user:x ✓',
    });
  });

  test('a verified text without a connection id is refused', () => {
    assert.equal(tokens.readConnectionToken(tokens.protect(CONNECTION_PURPOSE, 'no-colon')), undefined);
    assert.equal(tokens.readConnectionToken(tokens.protect(CONNECTION_PURPOSE, ':alice')), undefined);
  });

  test('groups tokens, other purposes, other keys and tampered tokens are no connection token', () => {
    assert.equal(tokens.readConnectionToken(tokens.groupsToken('conn-1', [])), undefined);
    assert.equal(tokens.readConnectionToken(tokens.protect('other', 'conn-1:alice')), undefined);
    assert.equal(tokens.readConnectionToken(new TokenProtector(OTHER_KEY).connectionToken('c', 'u')), undefined);
    assert.equal(tokens.readConnectionToken(flip(tokens.connectionToken('conn-1', 'alice'), 2)), undefined);
    assert.equal(tokens.readConnectionToken('garbage'), undefined);
  });
});

describe('TokenProtector: groups tokens', () => {
  const tokens = new TokenProtector(KEY);

  test('"<connectionId>:" + JSON array under the groups purpose, read back for the same connection', () => {
    const groups = ['ChatHub.room', 'ChatHub.a:b', 'Other.✓'];
    const token = tokens.groupsToken('conn-1', groups);
    assert.equal(tokens.unprotect(GROUPS_PURPOSE, token), `conn-1:${JSON.stringify(groups)}`);
    assert.deepEqual(tokens.readGroupsToken(token, 'conn-1'), groups);
    assert.deepEqual(tokens.readGroupsToken(tokens.groupsToken('conn-1', []), 'conn-1'), []);
  });

  test('the connection id is compared ignoring case (as SignalR 2), and must match', () => {
    const token = tokens.groupsToken('Conn-1', ['H.g']);
    assert.deepEqual(tokens.readGroupsToken(token, 'cONN-1'), ['H.g']);
    assert.deepEqual(tokens.readGroupsToken(token, 'conn-2'), []);
    assert.deepEqual(tokens.readGroupsToken(token, 'conn-10'), []);
    assert.deepEqual(tokens.readGroupsToken(token, 'conn'), []);
  });

  test('no token, or one that does not verify, silently yields no groups', () => {
    for (const bad of [undefined, null, '', 'garbage', flip(tokens.groupsToken('c', ['H.g']), 1)]) {
      assert.deepEqual(tokens.readGroupsToken(bad, 'c'), [], String(bad));
    }
    assert.deepEqual(tokens.readGroupsToken(new TokenProtector(OTHER_KEY).groupsToken('c', ['H.g']), 'c'), []);
    // A connection token names the same connection but is no groups token.
    assert.deepEqual(tokens.readGroupsToken(tokens.connectionToken('c', '["H.g"]'), 'c'), []);
  });

  test('a verified text that is not "<id>:<JSON array>" yields no groups; non-strings are dropped', () => {
    const read = (text: string) => tokens.readGroupsToken(tokens.protect(GROUPS_PURPOSE, text), 'c');
    assert.deepEqual(read('c:not json'), []);
    assert.deepEqual(read('c:{"a":1}'), []);
    assert.deepEqual(read('c:"H.g"'), []);
    assert.deepEqual(read(':["H.g"]'), []);
    assert.deepEqual(read('c'), []);
    assert.deepEqual(read('c:["H.a",1,null,{"x":"H.b"},["H.c"],"H.d"]'), ['H.a', 'H.d']);
  });
});
