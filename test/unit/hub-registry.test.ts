// Hub method discovery: which methods clients may call, looked up case-insensitively (as ASP.NET does), and how
// many arguments each accepts (countParameters reads the declared parameters from the function's source).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Hub } from '../../packages/hubwire/src/hub/hub.ts';
import { countParameters, HubRegistry } from '../../packages/hubwire/src/hub/hub-registry.ts';

type Fn = (...args: unknown[]) => unknown;
const asFn = (f: unknown) => f as Fn;
/** A function compiled from source text, so the test controls exactly what `toString()` returns. */
const compile = (source: string) => new Function(`return (${source});`)() as Fn;

describe('countParameters', () => {
  const cases: [string, Fn, number][] = [
    ['no parameters', asFn(() => 0), 0],
    ['one', asFn((a: unknown) => a), 1],
    ['two', asFn((a: unknown, b: unknown) => [a, b]), 2],
    ['function expression', compile('function (a, b, c) { return [a, b, c]; }'), 3],
    ['a default', asFn((a: unknown, b = 1) => [a, b]), 2],
    ['defaults with commas and brackets inside', asFn((a = [1, 2], b = { x: 1, y: [3, 4] }) => [a, b]), 2],
    ['a default calling a function', asFn((a = Math.max(1, 2), b = 3) => [a, b]), 2],
    ['defaults holding quotes, commas and parens', compile(`function (a = ',)', b = "(,", c = \`,)\`) {}`), 3],
    ['an escaped quote in a default', compile(`function (a = 'it\\'s, (x', b) {}`), 2],
    ['destructured object and array', asFn(({ a, b }: { a: 1; b: 2 }, [c, d]: number[]) => [a, b, c, d]), 2],
    ['nested destructuring with defaults', asFn(({ a = 1, b: { c } = { c: 2 } } = {}) => [a, c]), 1],
    ['a trailing comma', compile('function (a, b,) {}'), 2],
    ['an arrow function default', compile('function (a, cb = (x, y) => x + y) {}'), 2],
    ['whitespace and newlines', compile('function (\n  a,\n\n  b\n) {}'), 2],
    ['rest only', asFn((...rest: unknown[]) => rest), Number.POSITIVE_INFINITY],
    ['a rest after others', asFn((a: unknown, ...rest: unknown[]) => [a, rest]), Number.POSITIVE_INFINITY],
    ['a destructured rest', compile('function (a, ...[b, c]) {}'), Number.POSITIVE_INFINITY],
    ['a single unparenthesised arrow parameter', compile('x => x'), 1],
    ['an async arrow', compile('async (a, b) => a'), 2],
  ];
  for (const [name, fn, expected] of cases) {
    test(name, () => assert.equal(countParameters(fn), expected));
  }

  test('class methods, async methods, generators and async generators', () => {
    class C {
      plain(a: unknown, b: unknown) {
        return [a, b];
      }
      async later(a: unknown) {
        return a;
      }
      *gen(a: unknown, b: unknown, c: unknown) {
        yield [a, b, c];
      }
      async *stream(n: number, step = 1) {
        yield n + step;
      }
      none() {
        return 0;
      }
    }
    assert.equal(countParameters(asFn(C.prototype.plain)), 2);
    assert.equal(countParameters(asFn(C.prototype.later)), 1);
    assert.equal(countParameters(asFn(C.prototype.gen)), 3);
    assert.equal(countParameters(asFn(C.prototype.stream)), 2);
    assert.equal(countParameters(asFn(C.prototype.none)), 0);
  });

  test('a parameter-less method whose body contains calls with commas', () => {
    const hub = {
      now() {
        return Math.max(1, 2, 3);
      },
    };
    assert.equal(countParameters(asFn(hub.now)), 0);
  });

  // An unparenthesised arrow parameter: the first `(` in the source belongs to the body, not to the parameters.
  test('a single unparenthesised arrow parameter whose body calls a function with several arguments', () => {
    assert.equal(countParameters(compile('x => Math.max(x, 1, 2)')), 1);
    assert.equal(countParameters(compile('async x => Math.max(x, 1)')), 1);
  });

  // Comments are part of Function.prototype.toString() for code that is not transpiled.
  test('commas inside comments in the parameter list are not parameters', () => {
    assert.equal(countParameters(compile('function (a /* , b */) {}')), 1);
    assert.equal(countParameters(compile('function (a, // first, second\n b) {}')), 2);
  });
});

describe('HubRegistry', () => {
  class BaseHub extends Hub {
    shared(): string {
      return 'base';
    }
    overridden(..._args: unknown[]): string {
      return 'base';
    }
  }
  class TestHub extends BaseHub {
    echo(value: unknown): unknown {
      return value;
    }
    add(a: number, b: number): number {
      return a + b;
    }
    greet(name: string, greeting = 'hello'): string {
      return `${greeting} ${name}`;
    }
    log(...lines: string[]): number {
      return lines.length;
    }
    override overridden(_a: unknown, _b: unknown): string {
      return 'derived';
    }
    _helper(): void {}
    override onConnected(): void {}
    override onDisconnected(): void {}
    get computed(): number {
      throw new Error('a getter must not be called while registering');
    }
    static create(): void {}
  }

  test('finds public methods case-insensitively, keeping their declared name', () => {
    const registry = new HubRegistry(TestHub);
    for (const target of ['echo', 'ECHO', 'Echo', 'eChO']) {
      const method = registry.find(target);
      assert.ok(method, target);
      assert.equal(method.name, 'echo');
      assert.equal(method.fn, TestHub.prototype.echo);
    }
  });

  test('argument counts: exact, with defaults, with rest', () => {
    const registry = new HubRegistry(TestHub);
    const counts = (name: string) => {
      const method = registry.find(name);
      assert.ok(method, name);
      return [method.minArgs, method.maxArgs];
    };
    assert.deepEqual(counts('echo'), [1, 1]);
    assert.deepEqual(counts('add'), [2, 2]);
    assert.deepEqual(counts('greet'), [1, 2]);
    assert.deepEqual(counts('log'), [0, Number.POSITIVE_INFINITY]);
    assert.deepEqual(counts('shared'), [0, 0]);
  });

  test('inherited methods are callable; the most derived definition wins', () => {
    const registry = new HubRegistry(TestHub);
    assert.equal(registry.find('shared')?.fn, BaseHub.prototype.shared);
    const overridden = registry.find('OVERRIDDEN');
    assert.equal(overridden?.fn, TestHub.prototype.overridden);
    assert.equal(overridden?.maxArgs, 2);
  });

  test('lifetime methods, the constructor, _private methods, getters and statics are not callable', () => {
    const registry = new HubRegistry(TestHub);
    for (const target of [
      'constructor',
      'onConnected',
      'onconnected',
      'ONDISCONNECTED',
      '_helper',
      'computed',
      'create',
    ]) {
      assert.equal(registry.find(target), undefined, target);
    }
  });

  test('nothing from Object.prototype or the Hub base class is callable', () => {
    const registry = new HubRegistry(TestHub);
    for (const target of [
      'toString',
      'hasOwnProperty',
      'valueOf',
      '__proto__',
      '__defineGetter__',
      'isPrototypeOf',
      'context',
      'clients',
      'groups',
      'signal',
    ]) {
      assert.equal(registry.find(target), undefined, target);
    }
  });

  test('names() lists the callable methods once each', () => {
    const names = new HubRegistry(TestHub).names().sort();
    assert.deepEqual(names, ['add', 'echo', 'greet', 'log', 'overridden', 'shared']);
  });

  test('unknown targets, including the empty string', () => {
    const registry = new HubRegistry(TestHub);
    assert.equal(registry.find('nope'), undefined);
    assert.equal(registry.find(''), undefined);
    assert.equal(registry.find('echo '), undefined);
  });

  test('a plain-object hub: its own functions only', () => {
    const definition: Record<string, unknown> = {
      send(text: string, room?: string) {
        return [text, room];
      },
      sum: (a: number, b: number) => a + b,
      bound: function (this: unknown, a: unknown, b: unknown) {
        return [this, a, b];
      }.bind(null),
      value: 42,
      label: 'x',
      _internal() {},
      onConnected() {},
    };
    const registry = new HubRegistry(definition);
    assert.deepEqual(registry.names().sort(), ['bound', 'send', 'sum']);
    assert.deepEqual([registry.find('SEND')?.minArgs, registry.find('send')?.maxArgs], [2, 2]);
    assert.deepEqual([registry.find('sum')?.minArgs, registry.find('sum')?.maxArgs], [2, 2]);
    // A bound function's source is not available: its length still counts.
    assert.deepEqual([registry.find('bound')?.minArgs, registry.find('bound')?.maxArgs], [2, 2]);
    assert.equal(registry.find('value'), undefined);
  });

  test('per-method authorization is attached to its method', () => {
    const authorize = () => false;
    const registry = new HubRegistry(TestHub, { add: { authorize } });
    assert.equal(registry.find('ADD')?.authorize, authorize);
    assert.equal(registry.find('echo')?.authorize, undefined);
  });

  test('options for a method the hub does not have are refused', () => {
    assert.throws(() => new HubRegistry(TestHub, { nothere: {} }), /nothere/);
    assert.throws(() => new HubRegistry(TestHub, { onConnected: {} }), /onConnected/);
  });

  // Targets match case-insensitively, and the options check accepts a differently-cased key, so the
  // authorization hook must then apply (or the options be refused), never be dropped silently.
  test('method options with a differently-cased name are applied or refused, never silently dropped', () => {
    const authorize = () => false;
    let registry: HubRegistry;
    try {
      registry = new HubRegistry(TestHub, { ADD: { authorize } });
    } catch {
      return; // refusing the ambiguous key is acceptable
    }
    assert.equal(registry.find('add')?.authorize, authorize, 'the authorization hook was silently ignored');
  });
});
