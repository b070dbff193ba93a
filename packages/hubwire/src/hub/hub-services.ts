// What a connection (modern or classic) and a call need from the hub they belong to. HubEndpoint implements it;
// connections and the invoker see only this, so the endpoint that creates them is not a dependency of theirs.

import type { MessageBus } from '../bus/message-bus.js';
import type { HubMeter } from '../metrics/meter.js';
import type { HubProtocol } from '../protocol/hub-protocol.js';
import type { GroupManager } from './clients.js';
import type { HubInstanceState } from './hub.js';
import type { ResolvedHubOptions } from './hub-options.js';
import type { HubRegistry } from './hub-registry.js';
import type { StatefulMoves } from './moves/stateful-moves.js';

export interface HubServices {
  readonly path: string;
  readonly options: ResolvedHubOptions;
  readonly bus: MessageBus;
  readonly registry: HubRegistry;
  readonly groups: GroupManager;
  /** Stateful reconnect across nodes (undefined without a backplane that supports it, or with sticky sessions). */
  readonly moves: StatefulMoves | undefined;
  /** The hub's counters (undefined with metrics off). */
  readonly meter: HubMeter | undefined;
  /** The hub protocols clients may choose, by name. */
  readonly protocols: ReadonlyMap<string, HubProtocol>;
  /** Whether the hub (or a filter) has an onConnected / onDisconnected to run. */
  readonly runsOnConnected: boolean;
  readonly runsOnDisconnected: boolean;
  userIdOf(user: unknown): string | undefined;
  reportError(error: unknown, where: string): void;
  /** A hub instance for one call or lifetime event. */
  createHubInstance(state: HubInstanceState<unknown>): object;
}
