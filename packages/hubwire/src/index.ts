// Hubwire's public API.

export {
  type Acknowledge,
  Backplane,
  type BackplaneOptions,
  type BackplaneStats,
  type ClusterNode,
  type StreamState,
  type StreamStatus,
} from './backplane/backplane.js';
export { BackplaneBus } from './backplane/backplane-bus.js';
export type { AppendResult, BackplaneStore, StoredKey, StoredRow } from './backplane/backplane-store.js';
export { type BackplanePackage, backplaneFromUrl, type StoreUrlOptions } from './backplane/from-url.js';
export {
  KeyRing,
  type KeyRingOptions,
  type KeySource,
  type KeyStore,
  MAX_KEY_ID_LENGTH,
  MAX_KEY_PURPOSE_LENGTH,
  MAX_KEY_SECRET_BYTES,
  supportsKeys,
  validateKeyPurpose,
  validateKeyTime,
  validateStoredKey,
} from './backplane/key-ring.js';
export { MemoryDatabase, MemoryStore } from './backplane/memory-store.js';
export {
  MAX_NODE_ID_LENGTH,
  MAX_NODE_INFO_BYTES,
  type NodeRecord,
  type NodeStore,
  supportsNodes,
  validateNodeAge,
  validateNodeId,
  validateNodeInfo,
} from './backplane/node-registry.js';
export { MAX_TABLE_COUNT, parseStoredId, validateTableCount } from './backplane/store-support.js';
export type { Envelope } from './bus/envelope.js';
export { LocalBus } from './bus/local-bus.js';
export type {
  Audience,
  BusConnection,
  GroupMember,
  InvokeOptions,
  MessageBus,
  PresenceQueryOptions,
} from './bus/message-bus.js';
export { classicProgress, classicState } from './classic/classic-hub.js';
export type {
  ClassicHubMap,
  ClassicHubsOptions,
  ClassicTransport,
  RejoinContext,
  RejoinGroups,
} from './classic/options.js';
export type {
  PersistentConnection,
  PersistentConnectionContext,
  PersistentConnectionHandler,
} from './classic/persistent.js';
export { getAccessToken, type RequestInfo } from './connection/request-info.js';
export {
  allowLoopback,
  type Dashboard,
  type DashboardAuthorize,
  type DashboardNode,
  type DashboardOptions,
} from './dashboard/dashboard.js';
export { ClientResultError, HubError, HubwireError, type HubwireErrorCode } from './errors.js';
export type { ArgumentSchema } from './hub/argument-schema.js';
export type {
  ClientMethods,
  ClientProxy,
  GroupManager,
  HubCallerClients,
  HubClients,
  HubContext,
  SingleClientProxy,
} from './hub/clients.js';
export type { HubFilter, HubInvocationContext, HubLifetimeContext } from './hub/filters.js';
export { defineHub, Hub, type HubCallerContext, type HubInstanceState, type HubObject } from './hub/hub.js';
export type { HubOptions } from './hub/hub-options.js';
export type { AuthorizationPolicy, AuthorizeUser, HubDefinition, HubMethodOptions } from './hub/hub-registry.js';
export { type ConnectionStatus, TRANSPORT_NAMES } from './metrics/meter.js';
export { HubwireMetrics, type MetricsOptions } from './metrics/metrics.js';
export { METER_NAME } from './metrics/otel.js';
export type { PrometheusOptions } from './metrics/prometheus.js';
export type {
  BackplaneSnapshot,
  NodeMetricsSnapshot,
  RecentError,
  StreamSnapshot,
} from './metrics/snapshot.js';
export { DEFAULTS, type HubwireOptions } from './options.js';
export type { HubProtocol, MessageDecoder, TransferFormat } from './protocol/hub-protocol.js';
export { jsonHubProtocol } from './protocol/json-protocol.js';
export type * from './protocol/messages.js';
export { MessageType } from './protocol/messages.js';
export { messagePackHubProtocol } from './protocol/msgpack-protocol.js';
export { SerializedMessage } from './protocol/serialized-message.js';
export { Hubwire } from './server.js';
export { type BackplaneStatus, formatStatus, readStatus, type StatusNode } from './status.js';
export type { TransportKind } from './transports/transport.js';
export { VERSION } from './version.js';

// The backplane's earlier names (before 0.x settled on one noun), kept so existing code goes on compiling.
import { Backplane, type BackplaneOptions, type BackplaneStats } from './backplane/backplane.js';
import { BackplaneBus } from './backplane/backplane-bus.js';
/** @deprecated Renamed `Backplane`. */
export const ScaleoutEngine = Backplane;
/** @deprecated Renamed `Backplane`. */
export type ScaleoutEngine = Backplane;
/** @deprecated Renamed `BackplaneOptions`. */
export type ScaleoutOptions = BackplaneOptions;
/** @deprecated Renamed `BackplaneStats`. */
export type ScaleoutStats = BackplaneStats;
/** @deprecated Renamed `BackplaneBus`. */
export const ScaleoutBus = BackplaneBus;
/** @deprecated Renamed `BackplaneBus`. */
export type ScaleoutBus = BackplaneBus;
