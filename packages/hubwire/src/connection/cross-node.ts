// Connections that may use any node (no sticky sessions): negotiate answers with a connection token every node can
// verify (signed with a key set the nodes share through the backplane), so a transport request that reaches another
// node is taken there: the connection is created from the token's claims ("adopted"). A token is bound to the user
// who negotiated, to its endpoint, and to one connection: every node that starts a transport for it tells the others
// (a claim through the backplane), and a token already claimed, expired, forged or presented by another user is
// refused on every node. What a connection's transport requests do after it started is the transports' business:
// a WebSocket is one request, so it lives where it landed.

import type { KeySource } from '../util/token-protector.js';
import { TokenProtector } from '../util/token-protector.js';
import type { HttpConnection } from './connection.js';
import { type RemoteKind, RemoteRequests } from './remote-requests.js';

/** The purpose of the HMAC of connection tokens, and of the key set they are signed with. */
export const CONNECTION_TOKEN_PURPOSE = 'hubwire.connection-token';
export const CONNECTION_KEYS_PURPOSE = 'hubwire.connection-tokens';

/** The key the nodes' claims travel under on the backplane. */
export const CLAIMS_KEY = 'hubwire:connections';

/** At most this many ids are remembered in each set of recent ones (the oldest go first). */
const MAX_REMEMBERED = 200_000;

/** What a connection token says (signed: a node trusts it once the MAC verifies). */
export interface TokenClaims {
  connectionId: string;
  /** The negotiating user's id (undefined: anonymous). */
  userId: string | undefined;
  /** The endpoint's path, lower case. */
  path: string;
  negotiateVersion: number;
  statefulReconnect: boolean;
  /** When negotiate issued it (ms since the epoch, the issuing node's clock). */
  issuedAt: number;
}

/** How the nodes tell each other (the server wires it to the backplane). */
export interface ClusterLink {
  readonly nodeId: string;
  /** Resolves once the message is accepted (it is written in this node's order). */
  publish(data: unknown): Promise<void>;
  /** Resolves once the message is committed: any node that reads up to the stream heads from now on sees it. */
  publishCommitted(data: unknown): Promise<void>;
  /** Resolves true once this node has read everything committed before the call (false after `timeoutMs`). */
  barrier(timeoutMs: number): Promise<boolean>;
  /** The nodes the registry holds for alive (a cached read, at most a second old); undefined when unknown. */
  aliveNodes(): Promise<ReadonlySet<string> | undefined>;
  listen(handler: (data: unknown) => void): void;
}

/** A token that verified: its claims, whether a connection already started with it, and whether it is too old to. */
export interface VerifiedToken {
  claims: TokenClaims;
  /** A transport started with it (on this node or, as far as this node has read, on another). */
  spent: boolean;
  /** Older than the adoption window: it cannot start a connection on a node that did not issue it. */
  expired: boolean;
}

export interface CrossNodeOptions {
  keys: KeySource;
  link: ClusterLink;
  /** A token may start a connection on another node for this long after negotiate (ms). */
  adoptionWindow: number;
  reportError(error: unknown, where: string): void;
}

/** Why a token was refused: an HTTP status and a message for the client. */
export interface Refusal {
  status: number;
  message: string;
}

/** Ids remembered for `ttlMs`, at most MAX_REMEMBERED; the expired (and, past the cap, the oldest) go as ids come. */
class RecentIds {
  /** Id → when it was added; insertion order is time order. */
  private readonly added = new Map<string, number>();

  constructor(private readonly ttlMs: number) {}

  add(id: string): void {
    const now = Date.now();
    this.added.delete(id);
    this.added.set(id, now);
    for (const [old, at] of this.added) {
      if (now - at < this.ttlMs && this.added.size <= MAX_REMEMBERED) break;
      this.added.delete(old);
    }
  }

  has(id: string): boolean {
    return this.added.has(id);
  }
}

export class CrossNodeConnections {
  private readonly protector: TokenProtector;
  /** Requests of connections held by another node, forwarded there; and the others' requests for ours. */
  readonly remote: RemoteRequests;
  /** Connection ids whose token was used (here or elsewhere), within the adoption window. */
  private readonly claims: RecentIds;
  /** Connections this node held that ended (for twice the window): it answers their requests 404 at once. */
  private readonly ended: RecentIds;

  constructor(
    private readonly options: CrossNodeOptions,
    /** This node's connection with an id, if it has one (a claim elsewhere ends a local one never started). */
    private readonly local: (connectionId: string) => HttpConnection | undefined,
    /** Counts the forwarded requests this node serves for others (metrics). */
    served: (kind: RemoteKind) => void = () => {},
  ) {
    this.protector = new TokenProtector(options.keys);
    this.claims = new RecentIds(options.adoptionWindow);
    this.ended = new RecentIds(options.adoptionWindow * 2);
    this.remote = new RemoteRequests(
      options.link,
      {
        connection: (connectionId, path) => {
          const connection = local(connectionId);
          return connection && connection.endpointPath.toLowerCase() === path ? connection : undefined;
        },
        endedHere: (connectionId) => this.ended.has(connectionId),
        served,
      },
      options.reportError,
    );
    options.link.listen((data) => {
      if (!this.remote.receive(data)) this.receive(data);
    });
  }

  /** A signed token for a new connection; undefined while the shared keys are not loaded (the token stays local). */
  issue(claims: TokenClaims): string | undefined {
    const payload = JSON.stringify([
      1,
      claims.connectionId,
      claims.userId ?? null,
      claims.path,
      claims.negotiateVersion,
      claims.statefulReconnect ? 1 : 0,
      claims.issuedAt,
    ]);
    try {
      return this.protector.protect(CONNECTION_TOKEN_PURPOSE, payload);
    } catch {
      return undefined; // the shared keys are not loaded (database unreachable): a token of this node alone
    }
  }

  /** A token this node can verify, or a refusal (forged: 404; keys not loaded: 503). */
  read(token: string, now = Date.now()): VerifiedToken | Refusal {
    let text: string | undefined;
    try {
      text = this.protector.unprotect(CONNECTION_TOKEN_PURPOSE, token);
    } catch {
      return { status: 503, message: 'Connection tokens cannot be verified yet: the backplane is unreachable.' };
    }
    const claims = text === undefined ? undefined : parseClaims(text);
    if (!claims) return { status: 404, message: 'No Connection with that ID' };
    return {
      claims,
      spent: this.claims.has(claims.connectionId),
      expired: now - claims.issuedAt > this.options.adoptionWindow,
    };
  }

  /**
   * Waits until this node has read every claim committed so far (before adopting a connection: see claim()); at
   * most 2 s, and not at all while the database cannot be read (then claims cannot be committed either).
   */
  async caughtUp(): Promise<void> {
    try {
      await this.options.link.barrier(2000);
    } catch {
      // the stream heads cannot be read: go on with what this node has read
    }
  }

  /**
   * A transport started for `connection` on this node: the others refuse its token for another start, and forward
   * its requests here. Resolves once the claim is committed: a node that catches up (caughtUp) before adopting a
   * connection sees it, so a client's next request, sent after this one's answer, never starts a second copy.
   */
  claim(connection: HttpConnection): Promise<void> {
    if (connection.negotiateVersion < 1) return Promise.resolve(); // version 0 has no token
    const claimed = this.claiming.get(connection);
    if (claimed) return claimed;
    const done = this.publishClaim(connection);
    this.claiming.set(connection, done);
    return done;
  }

  /** The claims this node made, by connection: a connection is claimed once. */
  private readonly claiming = new WeakMap<HttpConnection, Promise<void>>();

  private publishClaim(connection: HttpConnection): Promise<void> {
    const node = this.options.link.nodeId;
    this.claims.add(connection.connectionId);
    connection.onClose(() => this.ended.add(connection.connectionId));
    return this.options.link
      .publishCommitted({ op: 'claim', id: connection.connectionId, node })
      .catch((error: unknown) => {
        this.options.reportError(
          error,
          `telling other nodes that connection '${connection.connectionId}' started here`,
        );
      });
  }

  private receive(data: unknown): void {
    const claim = data as { op?: unknown; id?: unknown; node?: unknown } | null;
    if (claim?.op !== 'claim' || typeof claim.id !== 'string' || typeof claim.node !== 'string') return;
    if (claim.node === this.options.link.nodeId) return;
    this.claims.add(claim.id);
    // Negotiated here, started elsewhere: the local connection will never start.
    const local = this.local(claim.id);
    if (local && local.state === 'new' && local.transportKind === undefined) local.dispose();
  }
}

function parseClaims(text: string): TokenClaims | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!Array.isArray(value) || value.length !== 7 || value[0] !== 1) return undefined;
  const [, connectionId, userId, path, version, stateful, issuedAt] = value as unknown[];
  if (typeof connectionId !== 'string' || typeof path !== 'string') return undefined;
  if (userId !== null && typeof userId !== 'string') return undefined;
  if (typeof version !== 'number' || typeof issuedAt !== 'number' || (stateful !== 0 && stateful !== 1)) {
    return undefined;
  }
  return {
    connectionId,
    userId: userId ?? undefined,
    path,
    negotiateVersion: version,
    statefulReconnect: stateful === 1,
    issuedAt,
  };
}
