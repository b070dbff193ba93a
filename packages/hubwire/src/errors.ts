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

/** Base class of Hubwire's own errors: `code` is stable and documented. */
export class HubwireError extends Error {
  readonly code: HubwireErrorCode;
  constructor(code: HubwireErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HubwireError';
    this.code = code;
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
  }
}

/** An error the client reported in answer to a client-result invocation. */
export class ClientResultError extends HubwireError {
  constructor(message: string) {
    super('HW_ERR_CLIENT_RESULT', message);
    this.name = 'ClientResultError';
  }
}
