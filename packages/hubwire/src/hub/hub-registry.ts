// Finds a hub's callable methods (case-insensitively, as ASP.NET does) and how many arguments each takes.

import { type ArgumentSchema, isArgumentSchema } from './argument-schema.js';
import { HUB_BASE, Hub, type HubCallerContext } from './hub.js';

export type AuthorizeUser = (user: unknown, context: HubCallerContext | undefined) => boolean | Promise<boolean>;

/**
 * Who may connect or call: a predicate on the user, or `{ roles }`: an authenticated user with at least one of
 * the roles (read from the user's `roles` array or `role` string).
 */
export type AuthorizationPolicy = AuthorizeUser | { roles: readonly string[] };

/** Turns a policy into a predicate. */
export function toAuthorizeUser(policy: AuthorizationPolicy | undefined): AuthorizeUser | undefined {
  if (policy === undefined || typeof policy === 'function') return policy;
  const wanted = new Set(policy.roles);
  return (user) => {
    if (typeof user !== 'object' || user === null) return false;
    // Tokens carry one role as a string or several as an array, under `roles` or `role`.
    const { roles, role } = user as { roles?: unknown; role?: unknown };
    const held = [roles, role].flatMap((value) => (Array.isArray(value) ? value : [value]));
    return held.some((r) => typeof r === 'string' && wanted.has(r));
  };
}

export interface HubMethod {
  readonly name: string;
  readonly fn: (...args: unknown[]) => unknown;
  /** Arguments without defaults (Function.length). */
  readonly minArgs: number;
  /** Declared parameters; Infinity with a rest parameter. */
  readonly maxArgs: number;
  readonly authorize: AuthorizeUser | undefined;
  /** Schemas of the arguments, in order (HubMethodOptions.parameters). */
  readonly parameters: readonly ArgumentSchema[] | undefined;
}

/** A hub class (subclass of Hub) or a plain object of methods. */
// biome-ignore lint/suspicious/noExplicitAny: hub classes have arbitrary client interfaces.
export type HubDefinition = (abstract new () => Hub<any>) | Record<string, unknown>;

const LIFETIME_METHODS = new Set(['constructor', 'onConnected', 'onReconnected', 'onDisconnected']);

/** Counts the declared parameters of a function from its source (defaults and rest included). */
export function countParameters(fn: (...args: unknown[]) => unknown): number {
  const source = Function.prototype.toString.call(fn);
  const open = source.indexOf('(');
  const arrow = source.indexOf('=>');
  // `x => ...`: one parameter without brackets (the first bracket belongs to the body).
  if (arrow !== -1 && (open === -1 || open > arrow)) return 1;
  if (open === -1) return fn.length;
  let depth = 0;
  let count = 0;
  let sawToken = false;
  let quote: string | undefined;
  let previous = '';
  for (let i = open; i < source.length; i++) {
    const ch = source[i] as string;
    if (!quote && i > open && !/\s/.test(source[i - 1] as string)) previous = source[i - 1] as string;
    if (quote) {
      if (ch === '\\') i++;
      else if (ch === quote) quote = undefined;
      continue;
    }
    // Comments (outside strings): `url = 'http://x'` is a string, not a comment.
    if (ch === '/' && source[i + 1] === '/') {
      const end = source.indexOf('\n', i);
      if (end === -1) break;
      i = end;
    } else if (ch === '/' && source[i + 1] === '*') {
      const end = source.indexOf('*/', i + 2);
      if (end === -1) break;
      i = end + 1;
    } else if (ch === '/' && /[=(,:[!&|?{};]/.test(previous)) {
      // A regular expression literal (a default value): skip it, brackets and all.
      let inClass = false;
      for (i++; i < source.length; i++) {
        const c = source[i] as string;
        if (c === '\\') i++;
        else if (c === '[') inClass = true;
        else if (c === ']') inClass = false;
        else if (c === '/' && !inClass) break;
      }
      sawToken = true;
    } else if (ch === '"' || ch === "'" || ch === '`') {
      quote = ch;
      sawToken = true;
    } else if (ch === '(' || ch === '[' || ch === '{') {
      depth++;
      if (depth > 1) sawToken = true;
    } else if (ch === ')' || ch === ']' || ch === '}') {
      depth--;
      if (depth === 0) return sawToken ? count + 1 : count;
    } else if (ch === ',' && depth === 1) {
      count++;
      sawToken = false;
    } else if (depth === 1 && ch === '.' && source.startsWith('...', i)) {
      return Number.POSITIVE_INFINITY;
    } else if (depth >= 1 && !/\s/.test(ch)) sawToken = true;
  }
  return fn.length;
}

export interface HubMethodOptions {
  /** Who may call this method; refused invocations fail with an authorization error. */
  authorize?: AuthorizationPolicy;
  /**
   * Schemas of the method's arguments, in order, as Standard Schemas (zod, valibot, arktype, ...): an invocation
   * whose arguments do not pass fails with the schema's message and the method never runs; what a schema returns
   * (a parsed or transformed value) is what the method gets.
   */
  parameters?: readonly ArgumentSchema[];
}

export class HubRegistry {
  private readonly methods = new Map<string, HubMethod>();

  /**
   * `callable`: when given, the only methods clients may call (names as declared); every other method of the
   * definition stays server-side. Without it, every method whose name does not start with `_` is callable.
   */
  constructor(
    definition: HubDefinition,
    methodOptions: Record<string, HubMethodOptions> = {},
    callable?: readonly string[],
  ) {
    const allowed = callable && new Set(callable.map((name) => name.toLowerCase()));
    const optionsByName = new Map<string, HubMethodOptions>();
    for (const [name, options] of Object.entries(methodOptions)) optionsByName.set(name.toLowerCase(), options);
    const sources: object[] = [];
    if (typeof definition === 'function') {
      // Up to Hub (of whichever copy of Hubwire the class extends: see HUB_BASE), or Object for a plain class.
      const isHubBase = (proto: object) => Object.hasOwn(proto.constructor ?? {}, HUB_BASE);
      for (
        let proto = definition.prototype;
        proto && proto !== Hub.prototype && proto !== Object.prototype && !isHubBase(proto);
      ) {
        sources.push(proto);
        proto = Object.getPrototypeOf(proto);
      }
    } else {
      sources.push(definition);
    }
    for (const source of sources) {
      for (const name of Object.getOwnPropertyNames(source)) {
        if (LIFETIME_METHODS.has(name) || name.startsWith('_')) continue;
        if (allowed && !allowed.has(name.toLowerCase())) continue;
        const descriptor = Object.getOwnPropertyDescriptor(source, name);
        if (!descriptor || typeof descriptor.value !== 'function') continue;
        const key = name.toLowerCase();
        if (this.methods.has(key)) continue; // the most derived class wins
        const fn = descriptor.value as (...args: unknown[]) => unknown;
        const declared = countParameters(fn);
        this.methods.set(key, {
          name,
          fn,
          minArgs: fn.length,
          maxArgs: Math.max(declared, fn.length),
          authorize: toAuthorizeUser(optionsByName.get(key)?.authorize),
          parameters: optionsByName.get(key)?.parameters,
        });
      }
    }
    for (const name of callable ?? []) {
      if (!this.methods.has(name.toLowerCase())) {
        throw new Error(`'callable' names '${name}', which is not a method of the hub (nor a lifetime or _ method).`);
      }
    }
    for (const [name, options] of Object.entries(methodOptions)) {
      if (!this.methods.has(name.toLowerCase())) {
        throw new Error(
          `Method options were given for '${name}', which is not a method of the hub (or not in callable).`,
        );
      }
      const parameters = options.parameters;
      if (parameters === undefined) continue;
      if (!Array.isArray(parameters) || !parameters.every(isArgumentSchema)) {
        throw new TypeError(`'parameters' of '${name}' must be an array of Standard Schemas (zod, valibot, ...).`);
      }
    }
  }

  find(target: string): HubMethod | undefined {
    return this.methods.get(target.toLowerCase());
  }

  names(): string[] {
    return [...this.methods.values()].map((m) => m.name);
  }
}
