// Every error Hubwire raises on purpose, with a stable code (HW_ERR_*). Documented in docs/errors.md (repository root).

export type HubwireErrorCode =
  | 'HW_ERR_INVALID_MESSAGE'
  | 'HW_ERR_MESSAGE_TOO_LARGE'
  | 'HW_ERR_HANDSHAKE'
  | 'HW_ERR_UNKNOWN_METHOD'
  | 'HW_ERR_ARGUMENT_COUNT'
  | 'HW_ERR_UNAUTHORIZED'
  | 'HW_ERR_CONNECTION_NOT_FOUND'
  | 'HW_ERR_CONNECTION_CLOSED'
  | 'HW_ERR_CLIENT_RESULT_TIMEOUT'
  | 'HW_ERR_CLIENT_RESULT'
  | 'HW_ERR_INVALID_OPTION'
  | 'HW_ERR_BACKPLANE_UNAVAILABLE'
  | 'HW_ERR_SLOW_CLIENT';

// An app may load two copies of Hubwire (its ESM and its CommonJS build, e.g. a CommonJS hub library in an ESM
// app): `instanceof` then checks a brand shared through the global symbol registry, not only the prototype chain.
const KINDS = Symbol.for('hubwire.errorKinds');

function brand(error: Error, kind: string): void {
  const kinds = (error as { [KINDS]?: string[] })[KINDS];
  if (kinds) kinds.push(kind);
  else Object.defineProperty(error, KINDS, { value: [kind], enumerable: false });
}

/** `value instanceof target`, where `own` is the Hubwire class (`target` may be a subclass of it). */
function instanceOf(target: unknown, own: unknown, value: unknown, kind: string): boolean {
  return (
    Function.prototype[Symbol.hasInstance].call(target as () => void, value) || (target === own && isKind(value, kind))
  );
}

function isKind(value: unknown, kind: string): boolean {
  return (
    typeof value === 'object' && value !== null && (value as { [KINDS]?: string[] })[KINDS]?.includes(kind) === true
  );
}

/** Base class of Hubwire's own errors: `code` is stable and documented. */
export class HubwireError extends Error {
  readonly code: HubwireErrorCode;
  constructor(code: HubwireErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HubwireError';
    this.code = code;
    brand(this, 'HubwireError');
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class right of instanceof (maybe a subclass).
    return instanceOf(this, HubwireError, value, 'HubwireError');
  }
}

/**
 * Throw this from a hub method to send its message to the caller.
 * Any other error reaches the client only as a generic message, unless `detailedErrors` is on.
 */
export class HubError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HubError';
    brand(this, 'HubError');
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class right of instanceof (maybe a subclass).
    return instanceOf(this, HubError, value, 'HubError');
  }
}

/** An error the client reported in answer to a client-result invocation. */
export class ClientResultError extends HubwireError {
  constructor(message: string) {
    super('HW_ERR_CLIENT_RESULT', message);
    this.name = 'ClientResultError';
    brand(this, 'ClientResultError');
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class right of instanceof (maybe a subclass).
    return instanceOf(this, ClientResultError, value, 'ClientResultError');
  }
}
